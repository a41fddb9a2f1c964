"""`anarq chat` end to end: a real node, two identities in their own wallets, an E2E room."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.cli import anarq
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow


def test_direct_end_to_end_room_send_and_read(tmp_path: Path) -> None:
    node = NodeProcess(
        free_port(), {"ANARQ_DATA_DIR": str(tmp_path / "data")}, tmp_path / "node.log"
    )
    alice_home, bob_home = tmp_path / "alice", tmp_path / "bob"
    try:
        url = ("--url", node.url)
        assert anarq(alice_home, "id", "create", "--name", "alice", *url).returncode == 0
        created = anarq(bob_home, "id", "create", "--name", "bob", *url, "--json")
        bob_did = json.loads(created.stdout)["did"]
        made = anarq(alice_home, "chat", "create", "--direct", bob_did, *url, "--json")
        assert made.returncode == 0, made.stderr
        room = json.loads(made.stdout)
        assert room["e2e"] and room["key_ready"]
        sent = anarq(alice_home, "chat", "send", room["id"], "meet at nine", *url, "--json")
        assert sent.returncode == 0, sent.stderr
        read = anarq(bob_home, "chat", "history", room["id"], *url, "--json")
        assert read.returncode == 0, read.stderr
        assert [e["text"] for e in json.loads(read.stdout) if e["kind"] == "message"] == [
            "meet at nine"
        ]
        assert b"meet at nine" not in b"".join(
            p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file()
        )
    finally:
        node.stop()
