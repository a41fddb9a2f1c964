"""`anarq drive` end to end: a real node, two identities in their own wallets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.cli import anarq
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow


def test_put_ls_get_share_and_trash(tmp_path: Path) -> None:
    node = NodeProcess(
        free_port(), {"ANARQ_DATA_DIR": str(tmp_path / "data")}, tmp_path / "node.log"
    )
    alice_home, bob_home = tmp_path / "alice", tmp_path / "bob"
    try:
        url = ("--url", node.url)
        assert anarq(alice_home, "id", "create", "--name", "alice", *url).returncode == 0
        created = anarq(bob_home, "id", "create", "--name", "bob", *url, "--json")
        bob_did = json.loads(created.stdout)["did"]

        folder = tmp_path / "trip"
        (folder / "day1").mkdir(parents=True)
        big = os.urandom(9 * 1024 * 1024 + 17)  # more than one upload part
        (folder / "day1" / "video.bin").write_bytes(big)
        (folder / "notes.txt").write_text("sunny")

        put = anarq(alice_home, "drive", "put", str(folder), "--to", "/travel", *url, "--json")
        assert put.returncode == 0, put.stderr
        stored = {f["path"]: f for f in json.loads(put.stdout)}
        assert set(stored) == {"/travel/trip/day1/video.bin", "/travel/trip/notes.txt"}

        listed = anarq(alice_home, "drive", "ls", "/travel/trip", *url, "--json")
        entries = json.loads(listed.stdout)["entries"]
        assert [(e["kind"], e["name"]) for e in entries] == [
            ("folder", "day1"),
            ("file", "notes.txt"),
        ]

        out = tmp_path / "back.bin"
        got = anarq(alice_home, "drive", "get", "/travel/trip/day1/video.bin", "-o", str(out), *url)
        assert got.returncode == 0, got.stderr
        assert out.read_bytes() == big

        video_id = stored["/travel/trip/day1/video.bin"]["id"]
        refused = anarq(bob_home, "drive", "get", video_id, "-o", str(tmp_path / "no"), *url)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        shared = anarq(
            alice_home, "drive", "share", "/travel/trip/day1/video.bin", "--with", bob_did, *url
        )
        assert shared.returncode == 0, shared.stderr
        bobs = tmp_path / "bobs.bin"
        assert anarq(bob_home, "drive", "get", video_id, "-o", str(bobs), *url).returncode == 0
        assert bobs.read_bytes() == big

        assert anarq(alice_home, "drive", "rm", "/travel/trip/notes.txt", *url).returncode == 0
        trash = json.loads(anarq(alice_home, "drive", "ls", "--trash", *url, "--json").stdout)
        assert [e["name"] for e in trash["entries"]] == ["travel/trip/notes.txt"]
        restored = anarq(alice_home, "drive", "restore", "/travel/trip/notes.txt", *url)
        assert restored.returncode == 0, restored.stderr
        quota = json.loads(anarq(alice_home, "drive", "quota", *url, "--json").stdout)
        assert quota["files"] == 2 and quota["used_bytes"] == len(big) + 5

        archive = tmp_path / "video.car"
        exported = anarq(alice_home, "drive", "export", video_id, "-o", str(archive), *url)
        assert exported.returncode == 0, exported.stderr
        imported = anarq(
            alice_home, "drive", "import", str(archive), "--to", "/imported", *url, "--json"
        )
        assert imported.returncode == 0, imported.stderr
        [again] = json.loads(imported.stdout)
        copy = tmp_path / "again.bin"
        assert anarq(alice_home, "drive", "get", again["id"], "-o", str(copy), *url).returncode == 0
        assert copy.read_bytes() == big
        not_car = anarq(alice_home, "drive", "import", str(out), *url)
        assert not_car.returncode == 2 and "Traceback" not in not_car.stderr

        made = anarq(alice_home, "drive", "link", "/travel/trip/notes.txt", *url, "--json")
        assert made.returncode == 0, made.stderr
        import httpx

        assert httpx.get(json.loads(made.stdout)["url"]).text == "sunny"

        export = tmp_path / "me.zip"
        exported_all = anarq(alice_home, "privacy", "export", "-o", str(export), *url)
        assert exported_all.returncode == 0, exported_all.stderr
        import zipfile

        assert "qdrive/files/travel/trip/notes.txt" in zipfile.ZipFile(export).namelist()
        receipt = tmp_path / "receipt.json"
        erased = anarq(alice_home, "privacy", "erase", "--yes", "--receipt", str(receipt), *url)
        assert erased.returncode == 0, erased.stderr
        assert json.loads(receipt.read_text())["erased"]["qdrive"]["files_shredded"] == 3
        gone = anarq(alice_home, "drive", "ls", *url)
        assert gone.returncode == 1 and "revoked" in gone.stderr
    finally:
        node.stop()
