"""`anarq mask` end to end: local text, image and table commands; profiles on a real node."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import free_port
from tests.qmask.test_image import jpeg_with_everything
from tests.support.cli import anarq
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow


def test_text_image_and_table_commands_need_no_node(tmp_path: Path) -> None:
    home = tmp_path / "home"
    text = "Mail ana@example.org or call +44 20 7946 0958."
    found = anarq(home, "mask", "detect", text, "--json")
    assert found.returncode == 0, found.stderr
    assert [e["type"] for e in json.loads(found.stdout)] == ["EMAIL", "PHONE"]
    redacted = anarq(home, "mask", "redact", text, "--mode", "partial")
    assert redacted.stdout.strip() == "Mail a***@example.org or call +** ** **** **58."

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg_with_everything())
    clean = tmp_path / "clean.jpg"
    stripped = anarq(home, "mask", "strip", str(photo), "-o", str(clean), "--json")
    assert stripped.returncode == 0, stripped.stderr
    assert json.loads(stripped.stdout)["removed"] == ["exif", "gps", "xmp", "comment"]
    assert len(Image.open(io.BytesIO(clean.read_bytes())).getexif()) == 0
    not_image = anarq(home, "mask", "strip", str(tmp_path / "nothing"), "-o", str(clean))
    assert not_image.returncode != 0 and "Traceback" not in not_image.stderr

    table = tmp_path / "people.csv"
    table.write_text(
        "name,age,zip\n" + "".join(f"p{i},{20 + i % 40},{75000 + i % 30}\n" for i in range(300))
    )
    out = tmp_path / "anon.csv"
    done = anarq(
        home, "mask", "anonymize", str(table), "--qi", "age,zip", "--k", "5",
        "--drop", "name", "-o", str(out), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["k_achieved"] >= 5 and report["risk"]["highest"] <= 0.2
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert rows and set(rows[0]) == {"age", "zip"}
    bad = anarq(home, "mask", "anonymize", str(table), "--qi", "shoe", "--k", "5", "-o", str(out))
    assert bad.returncode == 1 and "no such column: shoe" in bad.stderr


def test_profiles_on_the_node(tmp_path: Path) -> None:
    node = NodeProcess(
        free_port(), {"ANARQ_DATA_DIR": str(tmp_path / "data")}, tmp_path / "node.log"
    )
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    url = ("--url", node.url)
    try:
        created = anarq(alice, "id", "create", "--name", "alice", *url, "--json")
        alice_did = json.loads(created.stdout)["did"]
        assert anarq(bob, "id", "create", "--name", "bob", *url).returncode == 0

        first = anarq(
            alice, "mask", "profile", "create", "export",
            "--rule", "email=pseudonym", "--rule", "age=generalize:10", *url, "--json",
        )  # fmt: skip
        assert first.returncode == 0, first.stderr
        spec = tmp_path / "export.json"
        spec.write_text(json.dumps({"rules": [{"field": "email", "action": "remove"}]}))
        second = anarq(alice, "mask", "profile", "create", "export", "--file", str(spec), *url)
        assert second.returncode == 0 and "version 2" in second.stdout

        shown = anarq(alice, "mask", "profile", "show", "export", "--version", "1", *url, "--json")
        assert [r["action"] for r in json.loads(shown.stdout)["rules"]] == [
            "pseudonym",
            "generalize",
        ]
        listed = json.loads(anarq(alice, "mask", "profile", "ls", *url, "--json").stdout)
        assert [p["name"] for p in listed] == ["export", "default", "share-minimal"]

        record = tmp_path / "record.json"
        record.write_text(json.dumps({"email": "ana@example.org", "age": 34}))
        applied = anarq(alice, "mask", "apply", "export", str(record), "--version", "1", *url)
        assert applied.returncode == 0, applied.stderr
        masked = json.loads(applied.stdout)
        assert masked["age"] == "30-39" and masked["email"].startswith("pn_")

        refused = anarq(bob, "mask", "profile", "show", "export", "--owner", alice_did, *url)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr

        photo = tmp_path / "photo.jpg"
        photo.write_bytes(jpeg_with_everything())
        clean = tmp_path / "clean.jpg"
        on_node = anarq(alice, "mask", "strip", str(photo), "-o", str(clean), "--on-node", *url)
        assert on_node.returncode == 0, on_node.stderr
        assert "exif, gps, xmp, comment" in on_node.stdout
    finally:
        node.stop()
