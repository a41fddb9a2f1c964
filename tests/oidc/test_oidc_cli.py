"""`anarq oidc` end to end: a real node; a developer registers an app, a person approves a
sign-in from the terminal, the app exchanges the code, the person withdraws consent."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.conftest import free_port
from tests.support.cli import anarq
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow

CALLBACK = "http://127.0.0.1:8765/callback"


def test_register_approve_exchange_and_withdraw(tmp_path: Path) -> None:
    data = tmp_path / "data"
    node = NodeProcess(free_port(), {"ANARQ_DATA_DIR": str(data)}, tmp_path / "node.log")
    dev_home, alice_home = tmp_path / "dev", tmp_path / "alice"
    try:
        url = ("--url", node.url)
        anarq(dev_home, "id", "create", "--name", "dev", *url)
        anarq(alice_home, "id", "create", "--name", "alice", *url)
        added = anarq(
            dev_home, "oidc", "client", "add", "--name", "Notes", "--redirect-uri", CALLBACK,
            *url, "--json",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        client = json.loads(added.stdout)
        listed = anarq(dev_home, "oidc", "client", "ls", *url)
        assert listed.returncode == 0 and "Notes" in listed.stdout, listed.stdout

        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        query = {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": CALLBACK,
            "scope": "openid profile",
            "state": "st",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
        authorization_url = f"{node.url}/oidc/authorize?{urlencode(query)}"
        approved = anarq(alice_home, "oidc", "authorize", authorization_url, "--yes", *url)
        assert approved.returncode == 0, approved.stderr
        assert "asks to sign you in" in approved.stdout
        back = approved.stdout.strip().splitlines()[-1]
        assert back.startswith(CALLBACK)
        code = parse_qs(urlsplit(back).query)["code"][0]

        tokens = httpx.post(
            f"{node.url}/oidc/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CALLBACK,
                "code_verifier": verifier,
            },
            auth=(client["client_id"], client["client_secret"]),
        )
        assert tokens.status_code == 200, tokens.text
        bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
        assert httpx.get(f"{node.url}/oidc/userinfo", headers=bearer).json()["name"] == "alice"

        consents = anarq(alice_home, "oidc", "consents", *url, "--json")
        assert [c["client_id"] for c in json.loads(consents.stdout)] == [client["client_id"]]
        withdrawn = anarq(alice_home, "oidc", "withdraw", client["client_id"], *url)
        assert withdrawn.returncode == 0, withdrawn.stderr
        assert httpx.get(f"{node.url}/oidc/userinfo", headers=bearer).status_code == 401

        refused = anarq(alice_home, "oidc", "authorize", authorization_url, "--deny", *url)
        assert refused.returncode == 0 and "error=access_denied" in refused.stdout
        bad = anarq(alice_home, "oidc", "authorize", f"{node.url}/elsewhere?x=1", *url)
        assert bad.returncode != 0 and "/oidc/authorize" in bad.stderr
        keys = anarq(alice_home, "oidc", "keys", "ls", *url)
        assert keys.returncode == 0 and "OKP" in keys.stdout
    finally:
        node.stop()
