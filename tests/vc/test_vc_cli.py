"""`anarq vc` end to end on a real node: the node attests, a person issues with their own
key, the holder presents, anyone verifies from a file (online and offline), and revokes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.support.cli import anarq
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow


def test_issue_hold_present_verify_and_revoke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    node = NodeProcess(free_port(), {"ANARQ_DATA_DIR": str(data)}, tmp_path / "node.log")
    alice_home, bob_home, anyone = tmp_path / "alice", tmp_path / "bob", tmp_path / "anyone"
    try:
        url = ("--url", node.url)
        anarq(alice_home, "id", "create", "--name", "alice", *url)
        bob = json.loads(anarq(bob_home, "id", "create", "--name", "bob", *url, "--json").stdout)

        attested = anarq(bob_home, "vc", "issue", "--kind", "did-control", *url, "--json")
        assert attested.returncode == 0, attested.stderr
        assert json.loads(attested.stdout)["credentialSubject"]["controls"] == bob["did"]

        issued = anarq(
            alice_home, "vc", "issue", "--to", bob["did"], "--type", "PlumberLicence",
            "--claim", "licence=GAS-1234", "--expires", "52w", *url, "--json",
        )  # fmt: skip
        assert issued.returncode == 0, issued.stderr
        licence = json.loads(issued.stdout)
        assert licence["credentialSubject"] == {"id": bob["did"], "licence": "GAS-1234"}

        listed = anarq(bob_home, "vc", "ls", *url, "--json")
        assert len(json.loads(listed.stdout)) == 2
        saved = tmp_path / "licence.json"
        shown = anarq(bob_home, "vc", "show", licence["id"], "-o", str(saved), *url)
        assert shown.returncode == 0 and json.loads(saved.read_text())["id"] == licence["id"]

        checked = anarq(anyone, "vc", "verify", str(saved))
        assert checked.returncode == 0 and "verified" in checked.stdout, checked.stdout
        offline = anarq(anyone, "vc", "verify", str(saved), "--offline", "--json")
        assert offline.returncode == 0
        assert json.loads(offline.stdout)["status"] == "unchecked"

        asked = anarq(alice_home, "vc", "challenge", "--domain", "shop.example", *url, "--json")
        assert asked.returncode == 0, asked.stderr
        challenge = json.loads(asked.stdout)
        presentation = tmp_path / "vp.json"
        presented = anarq(
            bob_home, "vc", "present", licence["id"], "--challenge", challenge["challenge"],
            "--domain", "shop.example", "-o", str(presentation), *url,
        )  # fmt: skip
        assert presented.returncode == 0, presented.stderr
        vp = anarq(
            anyone, "vc", "verify", str(presentation), "--challenge", challenge["challenge"],
            "--domain", "shop.example", "--json",
        )  # fmt: skip
        assert vp.returncode == 0 and json.loads(vp.stdout)["holder"] == bob["did"], vp.stdout
        wrong = anarq(anyone, "vc", "verify", str(presentation), "--challenge", "x" * 20)
        assert wrong.returncode == 1 and "NOT verified" in wrong.stdout

        revoked = anarq(alice_home, "vc", "revoke", licence["id"], *url)
        assert revoked.returncode == 0, revoked.stderr
        after = anarq(anyone, "vc", "verify", str(saved), "--json")
        assert after.returncode == 1 and json.loads(after.stdout)["status"] == "revoked"
        list_file = tmp_path / "list.json"
        list_file.write_text(httpx.get(licence["credentialStatus"]["statusListCredential"]).text)
        from_file = anarq(
            anyone,
            "vc",
            "verify",
            str(saved),
            "--offline",
            "--status-list",
            str(list_file),
            "--json",
        )
        assert json.loads(from_file.stdout)["status"] == "revoked"
        neither = anarq(bob_home, "vc", "issue", *url)
        assert neither.returncode != 0 and "--kind" in neither.stderr
    finally:
        node.stop()
