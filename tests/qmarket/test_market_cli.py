"""`anarq market` end to end: a real node; a seller and a buyer in their own wallets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.cli import anarq
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow


def test_sell_find_buy_download_verify_review_and_a_disputed_service(tmp_path: Path) -> None:
    data = tmp_path / "data"
    node = NodeProcess(free_port(), {"ANARQ_DATA_DIR": str(data)}, tmp_path / "node.log")
    alice_home, bob_home = tmp_path / "alice", tmp_path / "bob"
    try:
        url = ("--url", node.url)
        token = ("--token", (data / "operator.token").read_text().strip())
        assert anarq(alice_home, "id", "create", "--name", "alice", *url).returncode == 0
        bob = json.loads(anarq(bob_home, "id", "create", "--name", "bob", *url, "--json").stdout)
        minted = anarq(
            bob_home, "wallet", "mint", "--operator", *token, "--to", bob["did"],
            "--amount", "10", "--asset", "PI", *url,
        )  # fmt: skip
        assert minted.returncode == 0, minted.stderr

        tabs = tmp_path / "tabs.txt"
        tabs.write_text("guitar tabs for the whole album\n")
        put = anarq(alice_home, "drive", "put", str(tabs), "--to", "/shop", *url, "--json")
        assert put.returncode == 0, put.stderr
        sold = anarq(
            alice_home, "market", "sell", "--file", "/shop/tabs.txt", "--title",
            "Guitar tabs", "--description", "every song, fingerings included",
            "--price", "2.5", "--asset", "PI", *url, "--json",
        )  # fmt: skip
        assert sold.returncode == 0, sold.stderr
        listing = json.loads(sold.stdout)
        assert listing["price"] == "250000000"

        found = anarq(bob_home, "market", "list", "fingerings", *url, "--json")
        assert found.returncode == 0, found.stderr
        assert [item["id"] for item in json.loads(found.stdout)["listings"]] == [listing["id"]]

        bought = anarq(bob_home, "market", "buy", listing["id"], *url, "--json")
        assert bought.returncode == 0, bought.stderr
        order = json.loads(bought.stdout)
        assert order["status"] == "settled"
        copy = tmp_path / "mine.txt"
        got = anarq(bob_home, "drive", "get", listing["item_id"], "-o", str(copy), *url)
        assert got.returncode == 0, got.stderr
        assert copy.read_text() == tabs.read_text()

        licence = tmp_path / "licence.json"
        shown = anarq(bob_home, "market", "licence", "show", order["id"], "-o", str(licence), *url)
        assert shown.returncode == 0, shown.stderr
        verified = anarq(bob_home, "market", "licence", "verify", str(licence), "--for", bob["did"])
        assert verified.returncode == 0 and "yes" in verified.stdout, verified.stderr
        document = json.loads(licence.read_text())
        document["price"]["amount"] = "1"
        forged = tmp_path / "forged.json"
        forged.write_text(json.dumps(document))
        refused = anarq(bob_home, "market", "licence", "verify", str(forged))
        assert refused.returncode == 1 and "invalid licence" in refused.stdout

        reviewed = anarq(
            bob_home, "market", "review", order["id"], "--rating", "5", "--text", "spot on", *url
        )
        assert reviewed.returncode == 0, reviewed.stderr
        card = anarq(bob_home, "market", "show", listing["id"], *url)
        assert card.returncode == 0 and "spot on" in card.stdout

        lesson = anarq(
            alice_home, "market", "sell", "--service", "--title", "One guitar lesson",
            "--price", "4", "--asset", "PI", *url, "--json",
        )  # fmt: skip
        assert lesson.returncode == 0, lesson.stderr
        booked = anarq(bob_home, "market", "buy", json.loads(lesson.stdout)["id"], *url, "--json")
        held = json.loads(booked.stdout)
        assert held["status"] == "held"
        disputed = anarq(
            bob_home, "market", "dispute", held["id"], "--reason", "lesson cut short", *url
        )
        assert disputed.returncode == 0, disputed.stderr
        resolved = anarq(
            bob_home, "market", "resolve", held["id"], "--paid", "1.5", "--note", "half a lesson",
            "--operator", *token, *url,
        )  # fmt: skip
        assert resolved.returncode == 0, resolved.stderr
        balance = anarq(bob_home, "wallet", "balance", "--asset", "PI", *url, "--json")
        [account] = json.loads(balance.stdout)
        assert int(account["balance"]) == (10 - 2.5 - 1.5) * 10**8

        purchases = anarq(bob_home, "market", "orders", *url)
        assert purchases.returncode == 0 and "settled" in purchases.stdout
        own = anarq(alice_home, "market", "buy", listing["id"], *url)
        assert own.returncode == 1 and "own listing" in own.stderr
        assert "Traceback" not in own.stderr
    finally:
        node.stop()
