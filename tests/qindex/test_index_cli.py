"""`anarq search` and `anarq index` end to end: a real node, identities in their wallets."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from anarq.kernel.blobs.cid import cid_for_bytes
from tests.conftest import free_port
from tests.support.cli import anarq
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow

# How long the node's background bus may take to index a stored file (a bound, not a timing).
INDEXED_WITHIN_SECONDS = 60


def search(home: Path, *args: str) -> dict[str, Any]:
    done = anarq(home, "search", *args, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_search_finds_a_stored_file_and_pointers_keep_history(tmp_path: Path) -> None:
    node = NodeProcess(
        free_port(),
        {"ANARQ_DATA_DIR": str(tmp_path / "data"), "ANARQ_SEMANTIC_SEARCH": "true"},
        tmp_path / "node.log",
    )
    alice_home, bob_home = tmp_path / "alice", tmp_path / "bob"
    try:
        url = ("--url", node.url)
        assert anarq(alice_home, "id", "create", "--name", "alice", *url).returncode == 0
        assert anarq(bob_home, "id", "create", "--name", "bob", *url).returncode == 0
        notes = tmp_path / "harbour-notes.txt"
        notes.write_text("The lighthouse keeper logs every passing schooner.\n")
        put = anarq(alice_home, "drive", "put", str(notes), *url)
        assert put.returncode == 0, put.stderr

        deadline = time.monotonic() + INDEXED_WITHIN_SECONDS
        while not (hits := search(alice_home, "lighthouse", *url)["hits"]):
            assert time.monotonic() < deadline, "the stored file was never indexed"
            time.sleep(0.5)
        [hit] = hits
        assert hit["title"] == "/harbour-notes.txt"
        assert "<mark>lighthouse</mark>" in hit["snippet"]
        assert search(alice_home, "schoner", *url)["hits"] != []  # a typo
        assert search(bob_home, "lighthouse", *url)["hits"] == []
        table = anarq(alice_home, "search", "lighthouse", *url)
        assert table.returncode == 0 and "harbour-notes" in table.stdout

        # By meaning: the node's own embedder gives the file a vector in the background.
        while not (meant := search(alice_home, "ships near the coast", "--meaning", *url)["hits"]):
            assert time.monotonic() < deadline, "the stored file was never embedded"
            time.sleep(0.5)
        assert meant[0]["title"] == "/harbour-notes.txt"
        assert search(bob_home, "ships near the coast", "--meaning", *url)["hits"] == []
        both = search(alice_home, "lighthouse", "--hybrid", *url)["hits"]
        assert [hit["title"] for hit in both] == ["/harbour-notes.txt"]

        first, second = cid_for_bytes(b"v1"), cid_for_bytes(b"v2")
        put1 = anarq(alice_home, "index", "put", "site/home", first, "--tag", "web", *url)
        assert put1.returncode == 0, put1.stderr
        assert anarq(alice_home, "index", "put", "site/home", second, *url).returncode == 0
        got = anarq(alice_home, "index", "get", "site/home", *url)
        assert got.stdout.strip() == second
        old = anarq(alice_home, "index", "get", "site/home", "--version", "1", *url)
        assert old.stdout.strip() == first
        listed = anarq(alice_home, "index", "ls", "--tag", "web", *url, "--json")
        assert [p["key"] for p in json.loads(listed.stdout)["pointers"]] == ["site/home"]
        history = anarq(alice_home, "index", "history", "site/home", *url, "--json")
        assert [(v["cid"], v["prev_cid"]) for v in json.loads(history.stdout)] == [
            (second, first),
            (first, None),
        ]
        refused = anarq(bob_home, "index", "put", "x", "not-a-cid", *url)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
    finally:
        node.stop()
