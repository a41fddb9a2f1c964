"""The guard at the door: rate limits with Retry-After, lockouts, alerts, risk."""

from __future__ import annotations

import httpx
import pytest

from anarq.gateway.app import create_app
from anarq.kernel.db import Database
from anarq.kernel.errors import Forbidden, RateLimited
from anarq.kernel.guard import OPERATOR, Actor, Context
from anarq.kernel.node import Node
from anarq.kernel.settings import Settings
from anarq.node.models import ProfileUpdate
from anarq.qerberos.door import FailureTracker, TokenBuckets
from anarq.qerberos.service import QerberosService


def test_token_bucket_allows_the_rate_then_refuses_with_retry_after() -> None:
    buckets = TokenBuckets(per_minute=3)
    for _ in range(3):
        buckets.take("k", "address")
    with pytest.raises(RateLimited) as refused:
        buckets.take("k", "address")
    assert 0 < refused.value.extra["retry_after_seconds"] <= 20
    buckets.take("other", "address")  # keys are independent


def test_failures_lock_out_after_the_limit() -> None:
    tracker = FailureTracker(limit=3, lockout_seconds=60)
    assert [tracker.fail("ip") for _ in range(3)] == [False, False, True]
    assert tracker.locked_for("ip") > 50
    assert tracker.locked_for("elsewhere") == 0


@pytest.fixture
def strict_node(tmp_path) -> Node:
    settings = Settings(data_dir=tmp_path, rate_limit_ip_per_minute=5, lockout_failures=3)
    database = Database(settings.effective_database_url)
    database.upgrade()
    database.close()
    node = Node.open(settings)
    yield node
    node.close()


async def client_for(node: Node) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(node, background=False))
    return httpx.AsyncClient(transport=transport, base_url="http://node.test")


async def test_over_the_rate_is_429_with_retry_after(strict_node: Node) -> None:
    async with await client_for(strict_node) as http:
        statuses = [(await http.get("/node/profile")).status_code for _ in range(7)]
        refused = await http.get("/node/profile")
    assert statuses[:5] == [200] * 5
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["retry-after"]) >= 1


async def test_repeated_bad_credentials_lock_out_and_raise_an_alert(strict_node: Node) -> None:
    async with await client_for(strict_node) as http:
        bad = {"Authorization": "Bearer anq_op_guessing"}
        statuses = [(await http.get("/node/profile", headers=bad)).status_code for _ in range(4)]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3] == 429
    desk = strict_node.service("qerberos").desk
    [alert] = desk.alerts(Context(actor=OPERATOR))
    assert (alert.kind, alert.status, alert.severity) == ("auth.lockout", "active", "high")
    resolved = desk.set_alert_status(Context(actor=OPERATOR), alert.id, "resolved")
    assert resolved.status == "resolved"


def test_risk_score_explains_itself(node: Node) -> None:
    bob = Context(actor=Actor(id="did:key:z6MkBob", kind="identity"))
    audit: QerberosService = node.service("qerberos")
    assert audit.desk.risk(Context(actor=OPERATOR), bob.actor.id).score == 0
    for _ in range(3):
        with pytest.raises(Forbidden):
            node.service("node").update_profile(bob, ProfileUpdate(name="x"))
    risk = audit.desk.risk(bob, bob.actor.id)
    assert risk.score == 30
    assert risk.reasons == ["3 refused action(s) in the last 24 h"]
    with pytest.raises(Forbidden):
        audit.desk.risk(Context(actor=Actor(id="did:key:z6MkEve", kind="identity")), bob.actor.id)


def test_alerts_are_for_the_operator(node: Node) -> None:
    from anarq.kernel.errors import Unauthenticated
    from anarq.kernel.guard import ANONYMOUS

    desk = node.service("qerberos").desk
    with pytest.raises(Unauthenticated):
        desk.alerts(Context(actor=ANONYMOUS))
