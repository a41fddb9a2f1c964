"""`anarq pic` end to end: a real node, two identities in their own wallets."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import free_port
from tests.qpic.images import encode, jpeg, scene
from tests.support.cli import anarq as run_anarq
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow
ALBUM_PASSPHRASE = "a long album passphrase"


def anarq(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_anarq(home, *args, env={"ANARQ_ALBUM_PASSPHRASE": ALBUM_PASSPHRASE})


def test_import_browse_lock_share_and_thumb(tmp_path: Path) -> None:
    node = NodeProcess(
        free_port(), {"ANARQ_DATA_DIR": str(tmp_path / "data")}, tmp_path / "node.log"
    )
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    try:
        url = ("--url", node.url)
        assert anarq(alice, "id", "create", "--name", "alice", *url).returncode == 0
        created = anarq(bob, "id", "create", "--name", "bob", *url, "--json")
        bob_did = json.loads(created.stdout)["did"]

        trip = tmp_path / "trip"
        (trip / "day1").mkdir(parents=True)
        (trip / "day1" / "beach.jpg").write_bytes(jpeg(1, taken="2024:07:01 10:00:00"))
        smaller = scene(1).resize((800, 600))
        (trip / "day1" / "beach-small.jpg").write_bytes(encode(smaller, "JPEG", quality=60))
        (trip / "hills.png").write_bytes(encode(scene(2, (900, 600)), "PNG"))
        noise = Image.effect_noise((3500, 3000), 90).convert("RGB")
        (trip / "big.jpg").write_bytes(encode(noise, "JPEG", quality=98))
        assert (trip / "big.jpg").stat().st_size > 8 * 1024 * 1024  # goes up in parts
        (trip / "notes.txt").write_text("not imported: not a photo suffix")

        imported = anarq(alice, "pic", "import", str(trip), "--album", "Trip", *url, "--json")
        assert imported.returncode == 0, imported.stderr
        result = json.loads(imported.stdout)
        assert result["failed"] == []
        photos = {p["name"]: p for p in result["imported"]}
        assert set(photos) == {"beach.jpg", "beach-small.jpg", "hills.png", "big.jpg"}
        assert photos["big.jpg"]["thumbs"] == [256, 1024]

        listed = json.loads(anarq(alice, "pic", "ls", "--album", "Trip", *url, "--json").stdout)
        assert len(listed["photos"]) == 4
        timeline = json.loads(
            anarq(alice, "pic", "timeline", "--year", "2024", *url, "--json").stdout
        )
        assert [d["date"] for d in timeline["days"]][-1] == "2024-07-01"
        found = json.loads(anarq(alice, "pic", "dupes", *url, "--json").stdout)
        assert [sorted(p["name"] for p in g["photos"]) for g in found["groups"]] == [
            ["beach-small.jpg", "beach.jpg"]
        ]

        made = anarq(alice, "pic", "album", "create", "Vault", "--lock", *url, "--json")
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["locked"] is True
        hills = photos["hills.png"]["id"]
        assert anarq(alice, "pic", "album", "add", "Vault", hills, *url).returncode == 0
        locked = anarq(alice, "pic", "ls", "--album", "Vault", *url)
        assert locked.returncode == 1 and "locked" in locked.stderr
        assert "Traceback" not in locked.stderr
        token = anarq(alice, "pic", "album", "unlock", "Vault", *url).stdout.strip()
        opened = anarq(alice, "pic", "ls", "--album", "Vault", "--unlock", token, *url, "--json")
        assert [p["id"] for p in json.loads(opened.stdout)["photos"]] == [hills]
        albums = json.loads(anarq(alice, "pic", "album", "ls", *url, "--json").stdout)
        assert sorted(a["name"] for a in albums) == ["Trip", "Vault"]

        beach = photos["beach.jpg"]["id"]
        refused = anarq(bob, "pic", "thumb", beach, "-o", str(tmp_path / "no.webp"), *url)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert anarq(alice, "pic", "share", beach, "--with", bob_did, *url).returncode == 0
        out = tmp_path / "beach.webp"
        got = anarq(bob, "pic", "thumb", beach, "-o", str(out), "--size", "1024", *url)
        assert got.returncode == 0, got.stderr
        assert Image.open(out).size == (1024, 768)

        junk = tmp_path / "junk.jpg"
        junk.write_bytes(b"this is no jpeg")
        bad = anarq(alice, "pic", "import", str(junk), *url)
        assert bad.returncode == 1 and "not" in bad.stderr and "Traceback" not in bad.stderr
    finally:
        node.stop()
