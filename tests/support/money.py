"""Shared by tests that move money or time: minting PI to someone, reading what they
hold, and running code as if later."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from anarq.kernel.clock import ManualClock
from anarq.kernel.node import Node

PI = 10**8  # PI has 8 decimals
PI_FEE_BPS = 50  # PI's own fee, paid by every payee


def after_fee(amount: int) -> int:
    """What a payee keeps of `amount` PI units once PI's fee is paid."""
    return amount - amount * PI_FEE_BPS // 10_000


async def fund(http: httpx.AsyncClient, operator: dict[str, str], did: str, pi: int) -> None:
    """Mint `pi` PI to `did` (the operator mints the native assets)."""
    body = {"id": f"fund-{did[-12:]}-{pi}", "to": did, "amount": str(pi * PI)}
    minted = await http.post("/qwallet/assets/PI/mint", json=body, headers=operator)
    assert minted.status_code == 201, minted.text


async def holds(who: Any) -> int:
    """What a person (a signing test client) has available in their main PI account."""
    response = await who.send("GET", "/qwallet/accounts", params={"asset": "PI"})
    assert response.status_code == 200, response.text
    return sum(int(a["balance"]) for a in response.json() if a["name"] == "main")


@contextmanager
def later(node: Node, delta: timedelta) -> Iterator[None]:
    """Run what is inside with the node's clock moved `delta` on (deadlines, timeouts)."""
    real = node.kernel.clock
    node.kernel.clock = ManualClock(datetime.now(UTC) + delta)
    try:
        yield
    finally:
        node.kernel.clock = real
