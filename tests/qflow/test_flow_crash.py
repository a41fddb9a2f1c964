"""`anarq flow` end to end, and a node killed with SIGKILL while its workflows run: after
a restart every run finishes, and every payment it makes is made once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.cli import anarq
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow

RUNS = 30
PAYROLL = """
name: payroll
description: three payments to one person, each once
trigger: {{type: manual}}
steps:
  - id: rent
    action: qwallet.pay
    with: {{to: "{bob}", asset: PI, amount: "1000000", memo: rent}}
  - id: food
    action: qwallet.pay
    with: {{to: "{bob}", asset: PI, amount: "1000000", memo: food}}
  - id: fun
    action: qwallet.pay
    with: {{to: "{bob}", asset: PI, amount: "1000000", memo: fun}}
"""


def test_runs_survive_kill_9_with_each_payment_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"ANARQ_DATA_DIR": str(data), "ANARQ_FLOW_LEASE_SECONDS": "2"}
    node = NodeProcess(free_port(), env, tmp_path / "node.log")
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
        definition = tmp_path / "payroll.yaml"
        definition.write_text(PAYROLL.format(bob=bob["did"]))
        made = anarq(alice_home, "flow", "create", str(definition), "--disabled", *url)
        assert made.returncode == 0 and "created payroll" in made.stdout, made.stderr
        listed = anarq(alice_home, "flow", "ls", *url)
        assert "payroll" in listed.stdout

        for n in range(RUNS):
            started = anarq(alice_home, "flow", "run", "payroll", "--id", f"month-{n:04d}", *url)
            assert started.returncode == 0, started.stderr
        waiting = json.loads(anarq(alice_home, "flow", "runs", "payroll", *url, "--json").stdout)
        assert {r["status"] for r in waiting["runs"]} == {"queued"}  # disabled: they wait
        assert anarq(alice_home, "flow", "enable", "payroll", *url).returncode == 0
        time.sleep(0.4)
        node.kill()  # SIGKILL, with runs queued, under way, and done
        node = NodeProcess(node.port, env, tmp_path / "node-2.log")

        deadline = time.monotonic() + 60
        while True:
            page = json.loads(anarq(alice_home, "flow", "runs", "payroll", *url, "--json").stdout)
            statuses = [r["status"] for r in page["runs"]]
            if statuses.count("succeeded") == RUNS or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert statuses.count("succeeded") == RUNS, statuses

        balance = json.loads(
            anarq(bob_home, "wallet", "balance", "--asset", "PI", *url, "--json").stdout
        )
        paid = RUNS * 3 * 1_000_000
        assert int(balance[0]["balance"]) == paid - RUNS * 3 * 1_000_000 * 50 // 10_000
        verified = anarq(alice_home, "wallet", "verify", *token, *url)
        assert verified.returncode == 0 and "balanced" in verified.stdout

        one = page["runs"][0]["id"]
        shown = anarq(alice_home, "flow", "run-show", one, *url)
        assert shown.returncode == 0 and "rent" in shown.stdout and "succeeded" in shown.stdout
        history = anarq(alice_home, "flow", "history", "payroll", *url)
        assert history.returncode == 0 and "created" in history.stdout
    finally:
        node.stop()
