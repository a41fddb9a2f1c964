"""`anarq wallet` end to end: a real node, the operator minting, two identities paying."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.cli import anarq
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow


def test_mint_send_balance_statement(tmp_path: Path) -> None:
    data = tmp_path / "data"
    node = NodeProcess(free_port(), {"ANARQ_DATA_DIR": str(data)}, tmp_path / "node.log")
    alice_home, bob_home = tmp_path / "alice", tmp_path / "bob"
    try:
        url = ("--url", node.url)
        token = ("--token", (data / "operator.token").read_text().strip())
        alice = json.loads(
            anarq(alice_home, "id", "create", "--name", "alice", *url, "--json").stdout
        )
        bob = json.loads(anarq(bob_home, "id", "create", "--name", "bob", *url, "--json").stdout)

        minted = anarq(
            alice_home, "wallet", "mint", "--operator", *token, "--to", alice["did"],
            "--amount", "10", "--asset", "PI", *url,
        )  # fmt: skip
        assert minted.returncode == 0, minted.stderr

        sent = anarq(
            alice_home, "wallet", "send", "--to", bob["did"], "--amount", "1.5",
            "--asset", "PI", "--memo", "lunch", "--id", "lunch-1", *url,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        assert "sent 1.5 PI" in sent.stdout
        again = anarq(
            alice_home, "wallet", "send", "--to", bob["did"], "--amount", "1.5",
            "--asset", "PI", "--memo", "lunch", "--id", "lunch-1", *url,
        )  # fmt: skip
        assert again.returncode == 0 and "already paid" in " ".join(again.stdout.split())
        assert bob["did"] in " ".join(sent.stdout.split())

        balance = anarq(bob_home, "wallet", "balance", "--asset", "PI", *url, "--json")
        assert balance.returncode == 0, balance.stderr
        [account] = json.loads(balance.stdout)
        assert int(account["balance"]) == 150_000_000 - 750_000  # 0.5 % fee, payee pays

        statement = anarq(alice_home, "wallet", "statement", "--asset", "PI", "--csv", *url)
        assert statement.returncode == 0, statement.stderr
        rows = list(csv.DictReader(io.StringIO(statement.stdout)))
        assert [(r["direction"], r["amount"], r["memo"]) for r in rows] == [
            ("out", "-1.5", "lunch"),
            ("in", "10", ""),
        ]

        too_fine = anarq(
            alice_home, "wallet", "send", "--to", bob["did"], "--amount", "0.000000001",
            "--asset", "PI", *url,
        )  # fmt: skip
        assert too_fine.returncode != 0 and "more than 8 decimals" in too_fine.stderr
        broke = anarq(
            bob_home, "wallet", "send", "--to", alice["did"], "--amount", "99", "--asset", "PI",
            *url,
        )  # fmt: skip
        assert broke.returncode != 0 and "exceeds_credits" in broke.stderr

        verified = anarq(alice_home, "wallet", "verify", *token, *url)
        assert verified.returncode == 0 and "balanced" in verified.stdout
    finally:
        node.stop()
