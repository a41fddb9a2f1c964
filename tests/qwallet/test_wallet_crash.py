"""kill -9 a node in the middle of a batch load: every acknowledged transfer survives, the
batch in flight is there whole or not at all, and the books still balance."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow

ACCOUNTS = 20
BATCH = 2000


def _batch(serial: int, accounts: list[int], rng: random.Random) -> list[dict[str, Any]]:
    transfers = []
    for k in range(BATCH):
        debit, credit = rng.sample(accounts, 2)
        transfers.append(
            {
                "id": f"b{serial}-{k}",
                "debit_account": debit,
                "credit_account": credit,
                "amount": str(rng.randint(1, 50)),
                # Pairs linked two by two: a chain is never cut in half by a crash either.
                "flags": ["linked"] if k % 2 == 0 else [],
            }
        )
    return transfers


def test_kill_during_batch_load_loses_no_acknowledged_transfer(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"ANARQ_DATA_DIR": str(data)}
    node = NodeProcess(free_port(), env, tmp_path / "node.log")
    headers = {"Authorization": f"Bearer {(data / 'operator.token').read_text().strip()}"}
    http = httpx.Client(base_url=node.url, headers=headers, timeout=60)
    rng = random.Random(7)
    issued = http.post("/qwallet/assets", json={"code": "CRASH", "name": "crash", "scale": 0})
    assert issued.status_code == 201, issued.text
    issuance = issued.json()["issuance_account"]
    accounts = [
        http.post("/qwallet/accounts", json={"asset": "CRASH", "name": f"a{i}"}).json()["id"]
        for i in range(ACCOUNTS)
    ]
    funding = [
        {"id": f"fund-{a}", "debit_account": issuance, "credit_account": a, "amount": "1000000"}
        for a in accounts
    ]
    assert http.post("/qwallet/batches", json={"transfers": funding}).json()["created"] == ACCOUNTS

    acknowledged: list[list[dict[str, Any]]] = []
    in_flight: list[list[dict[str, Any]]] = []
    stop = threading.Event()

    def load() -> None:
        serial = 0
        while not stop.is_set():
            batch = _batch(serial, accounts, rng)
            in_flight[:] = [batch]
            try:
                response = http.post("/qwallet/batches", json={"transfers": batch})
            except httpx.TransportError:
                return  # the node died under this request
            assert response.status_code == 200, response.text
            assert response.json()["results"] == []
            acknowledged.append(batch)
            in_flight.clear()
            serial += 1

    loader = threading.Thread(target=load)
    loader.start()
    while len(acknowledged) < 3:
        time.sleep(0.05)
    time.sleep(random.Random().uniform(0.0, 0.4))  # anywhere inside a batch
    node.kill()
    stop.set()
    loader.join(timeout=60)
    http.close()

    node = NodeProcess(free_port(), env, tmp_path / "node.log")
    try:
        http = httpx.Client(base_url=node.url, headers=headers, timeout=60)
        books = http.get("/qwallet/books").json()
        assert books["ok"], books["problems"]
        # Every acknowledged transfer is there: resending a whole batch creates nothing.
        for batch in acknowledged:
            again = http.post("/qwallet/batches", json={"transfers": batch}).json()
            assert again["created"] == 0
            assert {r["result"] for r in again["results"]} == {"exists"}
        # The batch in flight committed whole or not at all.
        for batch in in_flight:
            again = http.post("/qwallet/batches", json={"transfers": batch}).json()
            assert again["created"] in (0, len(batch)), again["created"]
        assert books["transfers"] >= ACCOUNTS + len(acknowledged) * BATCH
        after = http.get("/qwallet/books").json()
        assert after["ok"], after["problems"]
        http.close()
    finally:
        node.stop()
