"""`anarq dao` end to end: a real node; members in their own wallets create a DAO, fund
it, propose, vote with signed ballots, and count again offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.cli import anarq
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow


def test_create_propose_vote_and_count_offline(tmp_path: Path) -> None:
    data = tmp_path / "data"
    node = NodeProcess(free_port(), {"ANARQ_DATA_DIR": str(data)}, tmp_path / "node.log")
    alice_home, bob_home = tmp_path / "alice", tmp_path / "bob"
    try:
        url = ("--url", node.url)
        token = ("--token", (data / "operator.token").read_text().strip())
        anarq(alice_home, "id", "create", "--name", "alice", *url)
        bob = json.loads(anarq(bob_home, "id", "create", "--name", "bob", *url, "--json").stdout)

        made = anarq(
            alice_home, "dao", "create", "--name", "Allotment", "--member", bob["did"],
            "--voting-period", "1m", "--timelock", "0", "--quorum-pct", "50", *url, "--json",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        dao = json.loads(made.stdout)["did"]
        funded = anarq(
            alice_home, "wallet", "mint", "--operator", *token, "--to", dao,
            "--amount", "20", "--asset", "PI", *url,
        )  # fmt: skip
        assert funded.returncode == 0, funded.stderr
        listed = anarq(alice_home, "dao", "ls", "--mine", *url)
        assert listed.returncode == 0 and dao in listed.stdout

        proposed = anarq(
            alice_home, "dao", "propose", dao, "--title", "Seeds for spring",
            "--pay", f"{bob['did']}=2.5:PI", *url, "--json",
        )  # fmt: skip
        assert proposed.returncode == 0, proposed.stderr
        proposal = json.loads(proposed.stdout)
        assert proposal["actions"][0]["amount"] == "250000000"

        for home in (alice_home, bob_home):
            voted = anarq(home, "dao", "vote", proposal["id"], "--choice", "0", *url)
            assert voted.returncode == 0 and "voted with 1 power" in voted.stdout, voted.stderr
        again = anarq(bob_home, "dao", "vote", proposal["id"], "--choice", "1", *url)
        assert again.returncode == 1 and "dao.already_voted" in again.stderr

        shown = anarq(bob_home, "dao", "show", proposal["id"], *url)
        assert shown.returncode == 0 and "passes    yes" in shown.stdout, shown.stdout
        ballots = tmp_path / "ballots.json"
        exported = anarq(bob_home, "dao", "tally", proposal["id"], "--export", str(ballots), *url)
        assert exported.returncode == 0, exported.stderr
        recounted = anarq(bob_home, "dao", "tally", "--offline", str(ballots), "--json")
        assert recounted.returncode == 0, recounted.stdout
        report = json.loads(recounted.stdout)
        assert report["totals"] == ["2", "0", "0"] and report["refused"] == []

        forged = json.loads(ballots.read_text())
        forged["votes"][0]["choice"] = 1
        ballots.write_text(json.dumps(forged))
        refused = anarq(bob_home, "dao", "tally", "--offline", str(ballots), "--json")
        assert json.loads(refused.stdout)["refused"], refused.stdout

        members = anarq(alice_home, "dao", "members", dao, *url, "--json")
        assert {m["did"] for m in json.loads(members.stdout)} >= {bob["did"]}
        early = anarq(alice_home, "dao", "execute", proposal["id"], *url)
        assert early.returncode == 1 and "queued" in early.stderr
    finally:
        node.stop()
