"""`anarq id` end to end: a real node, a real keystore on disk, signed requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.cli import anarq
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow


def test_create_register_show_export_import(tmp_path: Path) -> None:
    node = NodeProcess(
        free_port(), {"ANARQ_DATA_DIR": str(tmp_path / "data")}, tmp_path / "node.log"
    )
    home = tmp_path / "home"
    try:
        created = anarq(home, "id", "create", "--name", "alice", "--url", node.url, "--json")
        assert created.returncode == 0, created.stderr
        alice = json.loads(created.stdout)
        assert alice["did"].startswith("did:key:z6Mk") and alice["hybrid"] is True
        keystore = Path(alice["file"])
        assert keystore.stat().st_mode & 0o077 == 0, "the keystore is private to its owner"
        assert "correct horse" not in keystore.read_text()

        listed = json.loads(anarq(home, "id", "list", "--json").stdout)
        assert listed == [{"name": "alice", "did": alice["did"], "active": True}]
        shown = json.loads(anarq(home, "id", "show", "--url", node.url, "--json").stdout)
        assert shown["registered"] is True

        exported = anarq(home, "id", "export", "alice", "-o", str(tmp_path / "alice.id"))
        assert exported.returncode == 0, exported.stderr
        elsewhere = tmp_path / "laptop"
        wrong = anarq(elsewhere, "id", "import", str(tmp_path / "alice.id"), passphrase="wrong")
        assert wrong.returncode == 1
        assert "Traceback" not in wrong.stderr
        assert anarq(elsewhere, "id", "list", "--json").stdout.strip() == "[]"
        imported = anarq(elsewhere, "id", "import", str(tmp_path / "alice.id"))
        assert imported.returncode == 0, imported.stderr
        again = json.loads(anarq(elsewhere, "id", "list", "--json").stdout)
        assert again[0]["did"] == alice["did"]

        club = anarq(
            home,
            "id",
            "sub",
            "create",
            "--type",
            "DAO",
            "--name",
            "club",
            "--url",
            node.url,
            "--json",
        )
        assert club.returncode == 0, club.stderr
        ghost = anarq(
            home,
            "id",
            "sub",
            "create",
            "--type",
            "AID",
            "--name",
            "ghost",
            "--url",
            node.url,
            "--json",
        )
        assert ghost.returncode == 0, ghost.stderr
        assert json.loads(ghost.stdout)["parent_did"] is None
        linked = json.loads(anarq(home, "id", "sub", "ls", "--url", node.url, "--json").stdout)
        assert [row["name"] for row in linked] == ["club"]
        bad = anarq(
            home, "id", "sub", "create", "--type", "ROOT", "--name", "nope", "--url", node.url
        )
        assert bad.returncode == 1
        assert not (home / "identities" / "nope.json").exists()

        rotated = anarq(home, "id", "rotate", "--url", node.url)
        assert rotated.returncode == 0, rotated.stderr
        again_rotated = anarq(home, "id", "rotate", "--url", node.url)
        assert again_rotated.returncode == 0, again_rotated.stderr
        identity = json.loads(anarq(home, "id", "show", "--url", node.url, "--json").stdout)
        assert identity["identity"]["rotations"] == 2
        revoked = anarq(home, "id", "revoke", "--yes", "--url", node.url)
        assert revoked.returncode == 0, revoked.stderr
        identity = json.loads(anarq(home, "id", "show", "--url", node.url, "--json").stdout)
        assert identity["identity"]["status"] == "revoked"

        duplicate = anarq(home, "id", "create", "--name", "alice", "--url", node.url)
        assert duplicate.returncode == 1
        assert "already exists" in duplicate.stderr
    finally:
        node.stop()
