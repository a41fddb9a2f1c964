"""`anarq mail` end to end: a real node, two identities in their own wallets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.cli import anarq
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow


def test_send_read_with_receipt_proof_and_search(tmp_path: Path) -> None:
    node = NodeProcess(
        free_port(), {"ANARQ_DATA_DIR": str(tmp_path / "data")}, tmp_path / "node.log"
    )
    alice_home, bob_home = tmp_path / "alice", tmp_path / "bob"
    try:
        url = ("--url", node.url)
        made = anarq(alice_home, "id", "create", "--name", "alice", *url, "--json")
        assert made.returncode == 0, made.stderr
        alice_did = json.loads(made.stdout)["did"]
        created = anarq(bob_home, "id", "create", "--name", "bob", *url, "--json")
        bob_did = json.loads(created.stdout)["did"]
        attachment = tmp_path / "plan.txt"
        attachment.write_text("the plan")

        sent = anarq(
            alice_home, "mail", "send", "--to", bob_did, "--subject", "quarterly plan",
            "--body", "see the attached plan", "--attach", str(attachment), *url, "--json",
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        message_id = json.loads(sent.stdout)["id"]

        read = anarq(bob_home, "mail", "read", message_id, "--receipt", *url, "--json")
        assert read.returncode == 0, read.stderr
        opened = json.loads(read.stdout)
        assert opened["message"]["subject"] == "quarterly plan"
        assert opened["signature"] == "valid" and opened["info"]["folder"] == "requests"
        [ref] = opened["message"]["attachments"]
        got = tmp_path / "got.txt"
        fetched = anarq(bob_home, "drive", "get", ref["file_id"], "-o", str(got), *url)
        assert fetched.returncode == 0, fetched.stderr
        assert got.read_text() == "the plan"

        proof = anarq(alice_home, "mail", "proof", message_id, *url, "--json")
        assert proof.returncode == 0, proof.stderr + proof.stdout
        checked = json.loads(proof.stdout)["checked"]
        assert {c["kind"] for c in checked} == {"delivery", "read"}
        assert all(c["signature"] == "valid" and c["included"] for c in checked)

        found = anarq(
            bob_home, "mail", "search", "QUARTERLY", "--folder", "requests", *url, "--json"
        )
        assert found.returncode == 0, found.stderr
        assert [m["id"] for m in json.loads(found.stdout)] == [message_id]

        # Postage: bob asks 0.1 PI of strangers; alice pays it and reaches his inbox.
        asked = anarq(bob_home, "mail", "postage", "set", "--amount", "0.1", *url)
        assert asked.returncode == 0, asked.stderr
        shown = anarq(alice_home, "mail", "postage", "show", bob_did, *url)
        assert "asks 0.1 PI" in " ".join(shown.stdout.split()), shown.stdout
        token = ("--token", (tmp_path / "data" / "operator.token").read_text().strip())
        minted = anarq(
            alice_home, "wallet", "mint", "--operator", *token, "--to", alice_did,
            "--amount", "1", "--asset", "PI", *url,
        )  # fmt: skip
        assert minted.returncode == 0, minted.stderr
        paid = anarq(
            alice_home, "mail", "send", "--to", bob_did, "--subject", "worth it", "--body",
            "hello", "--postage-max", "0.2", *url, "--json",
        )  # fmt: skip
        assert paid.returncode == 0, paid.stderr
        inbox = anarq(bob_home, "mail", "inbox", *url, "--json")
        assert [m["id"] for m in json.loads(inbox.stdout)["messages"]] == [
            json.loads(paid.stdout)["id"]
        ]
    finally:
        node.stop()
