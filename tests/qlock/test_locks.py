"""Qlock locks and crypto routes as a specification: one holder at a time, tokens only grow."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st

from anarq import qlock
from anarq.kernel import Kernel
from anarq.kernel.clock import ManualClock
from anarq.kernel.db import metadata
from anarq.kernel.errors import AnarqError, BadRequest, Forbidden
from anarq.kernel.guard import OPERATOR, Actor, Context
from anarq.kernel.node import Node
from anarq.kernel.settings import Settings
from anarq.modules import installed_modules
from anarq.qlock import AgreementKey, SigningKey, encode_signature, open_sealed, sign
from anarq.qlock.errors import InvalidKey
from anarq.qlock.locks import LeaseLost, LockBusy, LockFree, LockService
from anarq.qlock.models import TTL_MAX_MS, WAIT_MAX_MS, Lease
from anarq.qlock.service import QlockService, decode_base64
from anarq.qlock.tables import leases
from anarq.qonsent.models import GrantRequest
from tests.conftest import migrate_embedded

ALICE = "did:key:z6MkAlice"
BOB = "did:key:z6MkBob"
TTL_MS = 30_000
PROBLEM = "application/problem+json"


def as_(did: str) -> Context:
    return Context(actor=Actor(id=did, kind="identity"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def node(settings: Settings, clock: ManualClock) -> AsyncIterator[Node]:
    """The suite's node with the qlock module in it, on a clock the tests move."""
    migrate_embedded(settings)
    kernel = Kernel.open(settings, clock=clock)
    # Until qlock's migration exists; a no-op once it does.
    metadata.create_all(kernel.db.engine, tables=[leases])
    modules = list(installed_modules())
    if "qlock" not in {module.name for module in modules}:
        modules.append(qlock.module())
    built = Node(kernel, modules)
    yield built
    await built.kernel.bus.stop()
    built.close()


@pytest.fixture
def locks(node: Node) -> LockService:
    svc: QlockService = node.service("qlock")
    return svc.locks


@pytest.fixture
def system() -> Context:
    return Context.system()


def allow(node: Node, did: str, resource: str = "qlock:lock:*") -> None:
    request = GrantRequest(
        grantee=did, resource=resource, actions=["execute", "read"], purpose="tests"
    )
    node.service("qonsent").grant(Context(actor=OPERATOR), request)


# Acquire, extend, release ---------------------------------------------------------------


def test_acquire_gives_a_lease_with_the_first_token(locks: LockService, system: Context) -> None:
    lease = locks.acquire(system, "jobs:nightly", TTL_MS, holder="worker-1")
    assert (lease.name, lease.owner, lease.holder, lease.token) == (
        "jobs:nightly",
        "system",
        "worker-1",
        1,
    )
    assert lease.expires_at - lease.acquired_at == timedelta(milliseconds=TTL_MS)
    assert locks.current("jobs:nightly") == lease


def test_holder_defaults_to_a_fresh_id(locks: LockService, system: Context) -> None:
    first = locks.acquire(system, "a", TTL_MS)
    locks.release(system, "a", first.token)
    second = locks.acquire(system, "a", TTL_MS)
    assert first.holder != second.holder


def test_second_acquirer_gets_lock_busy_with_the_holders_expiry(
    locks: LockService, system: Context
) -> None:
    lease = locks.acquire(system, "jobs", TTL_MS, holder="one")
    with pytest.raises(LockBusy) as busy:
        locks.acquire(system, "jobs", TTL_MS, holder="two")
    assert busy.value.expires_at == lease.expires_at
    assert busy.value.status == 409 and busy.value.code == "qlock.lock_busy"
    assert locks.current("jobs") == lease


def test_a_live_lease_refuses_its_own_holder_too(locks: LockService, system: Context) -> None:
    locks.acquire(system, "jobs", TTL_MS, holder="one")
    with pytest.raises(LockBusy):
        locks.acquire(system, "jobs", TTL_MS, holder="one")


def test_extend_moves_the_expiry_and_keeps_the_token(
    locks: LockService, system: Context, clock: ManualClock
) -> None:
    lease = locks.acquire(system, "jobs", TTL_MS)
    clock.advance(timedelta(seconds=20))
    extended = locks.extend(system, "jobs", lease.token, 60_000)
    assert extended.token == lease.token
    assert extended.expires_at == clock.now() + timedelta(seconds=60)
    clock.advance(timedelta(seconds=50))  # past the first expiry, inside the extended one
    with pytest.raises(LockBusy):
        locks.acquire(system, "jobs", TTL_MS)


def test_release_frees_the_lock_and_the_next_token_is_higher(
    locks: LockService, system: Context
) -> None:
    first = locks.acquire(system, "jobs", TTL_MS)
    locks.release(system, "jobs", first.token)
    assert locks.current("jobs") is None
    second = locks.acquire(system, "jobs", TTL_MS)
    assert second.token == first.token + 1


def test_releasing_twice_is_harmless(locks: LockService, system: Context) -> None:
    lease = locks.acquire(system, "jobs", TTL_MS)
    locks.release(system, "jobs", lease.token)
    locks.release(system, "jobs", lease.token)
    assert locks.current("jobs") is None


def test_expired_lease_is_taken_over_with_a_higher_token(
    locks: LockService, system: Context, clock: ManualClock
) -> None:
    first = locks.acquire(system, "jobs", TTL_MS, holder="stalled")
    clock.advance(timedelta(milliseconds=TTL_MS))
    assert locks.current("jobs") is None
    second = locks.acquire(system, "jobs", TTL_MS, holder="fresh")
    assert second.token > first.token
    assert locks.current("jobs") == second


def test_stale_token_can_neither_extend_nor_release(
    locks: LockService, system: Context, clock: ManualClock
) -> None:
    stale = locks.acquire(system, "jobs", TTL_MS)
    clock.advance(timedelta(milliseconds=TTL_MS + 1))
    fresh = locks.acquire(system, "jobs", TTL_MS)
    with pytest.raises(LeaseLost):
        locks.extend(system, "jobs", stale.token, TTL_MS)
    with pytest.raises(LeaseLost):
        locks.release(system, "jobs", stale.token)
    assert locks.current("jobs") == fresh


def test_an_expired_lease_cannot_be_extended(
    locks: LockService, system: Context, clock: ManualClock
) -> None:
    lease = locks.acquire(system, "jobs", TTL_MS)
    clock.advance(timedelta(milliseconds=TTL_MS))
    with pytest.raises(LeaseLost):
        locks.extend(system, "jobs", lease.token, TTL_MS)


def test_a_token_that_was_never_issued_is_refused(locks: LockService, system: Context) -> None:
    lease = locks.acquire(system, "jobs", TTL_MS)
    with pytest.raises(LeaseLost):
        locks.extend(system, "jobs", lease.token + 1, TTL_MS)
    with pytest.raises(LeaseLost):
        locks.release(system, "never-acquired", 1)


def test_only_the_owner_may_use_its_token(node: Node, locks: LockService) -> None:
    allow(node, ALICE)
    allow(node, BOB)
    lease = locks.acquire(as_(ALICE), "jobs", TTL_MS)
    with pytest.raises(LeaseLost):
        locks.extend(as_(BOB), "jobs", lease.token, TTL_MS)
    with pytest.raises(LeaseLost):
        locks.release(as_(BOB), "jobs", lease.token)
    assert locks.current("jobs") == lease


def test_identities_need_a_grant_on_the_lock(node: Node, locks: LockService) -> None:
    with pytest.raises(Forbidden):
        locks.acquire(as_(ALICE), "jobs:nightly", TTL_MS)
    allow(node, ALICE, "qlock:lock:jobs:*")
    assert locks.acquire(as_(ALICE), "jobs:nightly", TTL_MS).owner == ALICE
    with pytest.raises(Forbidden):
        locks.acquire(as_(ALICE), "mail", TTL_MS)


def test_show_needs_read_and_says_when_free(node: Node, locks: LockService) -> None:
    with pytest.raises(Forbidden):
        locks.show(as_(ALICE), "jobs")
    allow(node, ALICE)
    with pytest.raises(LockFree):
        locks.show(as_(ALICE), "jobs")
    lease = locks.acquire(as_(ALICE), "jobs", TTL_MS)
    assert locks.show(as_(ALICE), "jobs") == lease


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda s, c: s.acquire(c, "", TTL_MS), id="empty-name"),
        pytest.param(lambda s, c: s.acquire(c, "a" * 201, TTL_MS), id="long-name"),
        pytest.param(lambda s, c: s.acquire(c, "a b", TTL_MS), id="space"),
        pytest.param(lambda s, c: s.acquire(c, "a/b", TTL_MS), id="slash"),
        pytest.param(lambda s, c: s.acquire(c, "a:", TTL_MS), id="empty-segment"),
        pytest.param(lambda s, c: s.acquire(c, "a\n", TTL_MS), id="newline"),
        pytest.param(lambda s, c: s.acquire(c, "*", TTL_MS), id="wildcard"),
        pytest.param(lambda s, c: s.acquire(c, "a", 99), id="ttl-too-short"),
        pytest.param(lambda s, c: s.acquire(c, "a", TTL_MAX_MS + 1), id="ttl-too-long"),
        pytest.param(lambda s, c: s.acquire(c, "a", True), id="ttl-bool"),
        pytest.param(lambda s, c: s.acquire(c, "a", TTL_MS, -1), id="wait-negative"),
        pytest.param(lambda s, c: s.acquire(c, "a", TTL_MS, WAIT_MAX_MS + 1), id="wait-long"),
        pytest.param(lambda s, c: s.acquire(c, "a", TTL_MS, holder=""), id="holder-empty"),
        pytest.param(lambda s, c: s.acquire(c, "a", TTL_MS, holder="x y"), id="holder-space"),
        pytest.param(lambda s, c: s.extend(c, "a", 0, TTL_MS), id="token-zero"),
        pytest.param(lambda s, c: s.release(c, "a", 2**63), id="token-huge"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    locks: LockService, system: Context, call: Callable[[LockService, Context], Any]
) -> None:
    with pytest.raises(BadRequest):
        call(locks, system)
    assert locks.current("a") is None


# Waiting ---------------------------------------------------------------------------------


def test_wait_succeeds_when_the_holder_releases_meanwhile(
    locks: LockService, system: Context
) -> None:
    held = locks.acquire(system, "jobs", TTL_MS, holder="first")
    releaser = threading.Timer(0.2, locks.release, (system, "jobs", held.token))
    releaser.start()
    started = time.monotonic()
    lease = locks.acquire(system, "jobs", TTL_MS, wait_ms=10_000, holder="second")
    releaser.join()
    assert lease.holder == "second" and lease.token == held.token + 1
    assert 0.15 < time.monotonic() - started < 5


def test_wait_gives_up_with_lock_busy_when_it_runs_out(locks: LockService, system: Context) -> None:
    held = locks.acquire(system, "jobs", TTL_MS)
    started = time.monotonic()
    with pytest.raises(LockBusy) as busy:
        locks.acquire(system, "jobs", TTL_MS, wait_ms=300)
    assert 0.25 < time.monotonic() - started < 3
    assert busy.value.expires_at == held.expires_at


def test_wait_takes_over_a_lease_when_it_expires(
    locks: LockService, system: Context, clock: ManualClock
) -> None:
    held = locks.acquire(system, "jobs", TTL_MS)
    mover = threading.Timer(0.2, clock.advance, (timedelta(milliseconds=TTL_MS),))
    mover.start()
    lease = locks.acquire(system, "jobs", TTL_MS, wait_ms=10_000)
    mover.join()
    assert lease.token == held.token + 1


async def test_async_acquire_waits_without_blocking_the_loop(
    locks: LockService, system: Context
) -> None:
    held = locks.acquire(system, "jobs", TTL_MS)

    async def release_soon() -> None:
        await asyncio.sleep(0.2)
        await asyncio.to_thread(locks.release, system, "jobs", held.token)

    lease, _ = await asyncio.gather(
        locks.acquire_async(system, "jobs", TTL_MS, wait_ms=10_000), release_soon()
    )
    assert lease.token == held.token + 1


# Concurrency ------------------------------------------------------------------------------

RACERS = 8
ROUNDS = 10


def test_racing_threads_one_winner_per_round_tokens_increasing(
    locks: LockService, system: Context
) -> None:
    barrier = threading.Barrier(RACERS)

    def race(holder: str) -> Lease | None:
        barrier.wait()
        try:
            return locks.acquire(system, "contended", TTL_MS, holder=holder)
        except LockBusy:
            return None

    tokens: list[int] = []
    with ThreadPoolExecutor(RACERS) as pool:
        for round_ in range(ROUNDS):
            results = list(pool.map(race, [f"r{round_}-t{i}" for i in range(RACERS)]))
            winners = [lease for lease in results if lease is not None]
            assert len(winners) == 1, winners
            assert locks.current("contended") == winners[0]
            tokens.append(winners[0].token)
            locks.release(system, "contended", winners[0].token)
    assert tokens == sorted(set(tokens)) and tokens[0] >= 1


def _assert_mutual_exclusion(spans: list[tuple[int, int, int]], expected: int) -> None:
    """(token, entered_ns, left_ns) of every critical section: disjoint, tokens growing."""
    assert len(spans) == expected
    spans.sort(key=lambda span: span[1])
    for before, after in itertools.pairwise(spans):
        assert before[2] <= after[1], f"two holders at once: {before} and {after}"
        assert before[0] < after[0], f"token did not grow: {before} then {after}"


def test_waiting_threads_hold_the_lock_one_at_a_time(locks: LockService, system: Context) -> None:
    spans: list[tuple[int, int, int]] = []
    spans_lock = threading.Lock()

    def work(holder: str) -> None:
        for _ in range(5):
            lease = locks.acquire(system, "shared", TTL_MS, wait_ms=WAIT_MAX_MS, holder=holder)
            entered = time.monotonic_ns()
            time.sleep(0.001)
            left = time.monotonic_ns()
            locks.release(system, "shared", lease.token)
            with spans_lock:
                spans.append((lease.token, entered, left))

    with ThreadPoolExecutor(RACERS) as pool:
        list(pool.map(work, [f"t{i}" for i in range(RACERS)]))
    _assert_mutual_exclusion(spans, RACERS * 5)


# Another process is another worker: its own engine, its own pool, the same database.
WORKER_SCRIPT = """
import json, sys, time
from pathlib import Path
from anarq.kernel import Kernel
from anarq.kernel.guard import Context
from anarq.kernel.settings import Settings
from anarq.qlock.locks import LockService

url, data_dir, holder, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
kernel = Kernel.open(Settings(data_dir=Path(data_dir), database_url=url))
locks, ctx = LockService(kernel), Context.system()
print("ready", flush=True)
sys.stdin.readline()
for _ in range(rounds):
    lease = locks.acquire(ctx, "cross-process", 30_000, wait_ms=30_000, holder=holder)
    entered = time.monotonic_ns()
    time.sleep(0.002)
    left = time.monotonic_ns()
    locks.release(ctx, "cross-process", lease.token)
    print(json.dumps([lease.token, entered, left]), flush=True)
kernel.close()
"""


@pytest.mark.slow
def test_two_processes_hold_the_lock_one_at_a_time(
    node: Node, settings: Settings, tmp_path: Path
) -> None:
    rounds = 25
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER_SCRIPT,
                settings.effective_database_url,
                str(tmp_path / f"worker-{index}"),
                f"worker-{index}",
                str(rounds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    assert [worker.returncode for worker in workers] == [0, 0]
    spans = [tuple(json.loads(line)) for output in outputs for line in output.splitlines()]
    _assert_mutual_exclusion(spans, 2 * rounds)


# HTTP: locks -------------------------------------------------------------------------------


async def test_http_acquire_extend_show_release(
    http: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    acquired = await http.post(
        "/qlock/locks/jobs:nightly", json={"ttl_ms": TTL_MS, "holder": "w1"}, headers=operator
    )
    assert acquired.status_code == 201, acquired.text
    lease = acquired.json()
    assert (lease["owner"], lease["holder"], lease["token"]) == ("operator", "w1", 1)

    busy = await http.post("/qlock/locks/jobs:nightly", json={"ttl_ms": 1000}, headers=operator)
    assert busy.status_code == 409
    assert busy.headers["content-type"].startswith(PROBLEM)
    assert busy.json()["code"] == "qlock.lock_busy"
    assert busy.json()["expires_at"].endswith("Z")

    shown = await http.get("/qlock/locks/jobs:nightly", headers=operator)
    assert shown.json() == lease
    extended = await http.post(
        "/qlock/locks/jobs:nightly/extend", json={"token": 1, "ttl_ms": 60_000}, headers=operator
    )
    assert extended.status_code == 200, extended.text
    assert extended.json()["token"] == 1

    released = await http.delete("/qlock/locks/jobs:nightly?token=1", headers=operator)
    assert released.status_code == 204 and released.content == b""
    free = await http.get("/qlock/locks/jobs:nightly", headers=operator)
    assert free.status_code == 404 and free.json()["code"] == "qlock.lock_free"


async def test_http_stale_token_is_lease_lost(
    http: httpx.AsyncClient, operator: dict[str, str], clock: ManualClock
) -> None:
    await http.post("/qlock/locks/jobs", json={"ttl_ms": TTL_MS}, headers=operator)
    clock.advance(timedelta(milliseconds=TTL_MS))
    taken = await http.post("/qlock/locks/jobs", json={"ttl_ms": TTL_MS}, headers=operator)
    assert taken.json()["token"] == 2
    for response in (
        await http.post(
            "/qlock/locks/jobs/extend", json={"token": 1, "ttl_ms": 1000}, headers=operator
        ),
        await http.delete("/qlock/locks/jobs", params={"token": 1}, headers=operator),
    ):
        assert response.status_code == 409
        assert response.json()["code"] == "qlock.lease_lost"


async def test_http_acquire_waits_for_a_release(
    http: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    first = await http.post("/qlock/locks/jobs", json={"ttl_ms": TTL_MS}, headers=operator)

    async def release_soon() -> httpx.Response:
        await asyncio.sleep(0.2)
        token = first.json()["token"]
        return await http.delete(f"/qlock/locks/jobs?token={token}", headers=operator)

    waited, released = await asyncio.gather(
        http.post(
            "/qlock/locks/jobs", json={"ttl_ms": TTL_MS, "wait_ms": 10_000}, headers=operator
        ),
        release_soon(),
    )
    assert released.status_code == 204
    assert waited.status_code == 201, waited.text
    assert waited.json()["token"] == 2


async def test_http_locks_need_an_authorized_caller(http: httpx.AsyncClient) -> None:
    anonymous = await http.post("/qlock/locks/jobs", json={"ttl_ms": TTL_MS})
    assert anonymous.status_code == 401
    assert (await http.get("/qlock/locks/jobs")).status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/qlock/locks/a%20b", {"ttl_ms": TTL_MS}),
        ("POST", "/qlock/locks/" + "a" * 201, {"ttl_ms": TTL_MS}),
        ("POST", "/qlock/locks/jobs", {"ttl_ms": 0}),
        ("POST", "/qlock/locks/jobs", {"ttl_ms": "soon"}),
        ("POST", "/qlock/locks/jobs", {"ttl_ms": TTL_MS, "wait_ms": WAIT_MAX_MS + 1}),
        ("POST", "/qlock/locks/jobs", {"ttl_ms": TTL_MS, "holder": "a b"}),
        ("POST", "/qlock/locks/jobs", {"ttl_ms": TTL_MS, "owner": "did:key:z6MkMallory"}),
        ("POST", "/qlock/locks/jobs/extend", {"token": 0, "ttl_ms": TTL_MS}),
        ("POST", "/qlock/locks/jobs/extend", {"token": 2**63, "ttl_ms": TTL_MS}),
        ("DELETE", "/qlock/locks/jobs?token=-1", None),
        ("DELETE", "/qlock/locks/jobs", None),
    ],
)
async def test_http_bad_lock_input_is_a_4xx_problem(
    http: httpx.AsyncClient, operator: dict[str, str], method: str, path: str, body: Any
) -> None:
    response = await http.request(method, path, json=body, headers=operator)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


# HTTP: verify and seal ------------------------------------------------------------------

CLASSICAL = SigningKey.generate(hybrid=False)
HYBRID = SigningKey.generate(hybrid=True)
MESSAGE = b"the quick brown fox"


def verify_body(key: SigningKey, **changes: str) -> dict[str, str]:
    body = {
        "public_key": b64(key.verify_key.to_bytes()),
        "message": b64(MESSAGE),
        "signature": b64(sign(key, MESSAGE)),
    }
    return {**body, **changes}


@pytest.mark.parametrize("key", [CLASSICAL, HYBRID], ids=["ed25519", "hybrid"])
async def test_http_verify_accepts_a_good_signature(
    http: httpx.AsyncClient, operator: dict[str, str], key: SigningKey
) -> None:
    response = await http.post("/qlock/verify", json=verify_body(key), headers=operator)
    assert response.status_code == 200, response.text
    assert response.json() == {"valid": True, "algorithm": key.algorithm, "key_id": key.key_id}


async def test_http_verify_accepts_the_base64url_signature_text(
    http: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    body = verify_body(CLASSICAL, signature=encode_signature(sign(CLASSICAL, MESSAGE)))
    response = await http.post("/qlock/verify", json=body, headers=operator)
    assert response.status_code == 200, response.text


def _tampered(key: SigningKey) -> str:
    signature = bytearray(sign(key, MESSAGE))
    signature[10] ^= 1
    return b64(bytes(signature))


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (verify_body(CLASSICAL, signature=_tampered(CLASSICAL)), "qlock.bad_signature"),
        (verify_body(HYBRID, signature=_tampered(HYBRID)), "qlock.bad_signature"),
        (verify_body(CLASSICAL, message=b64(b"another message")), "qlock.bad_signature"),
        (
            verify_body(HYBRID, signature=b64(sign(CLASSICAL, MESSAGE))),
            "qlock.bad_signature",
        ),
        (verify_body(CLASSICAL, signature=b64(b"\x01\x01" + bytes(10))), "qlock.bad_signature"),
        (verify_body(CLASSICAL, signature="not base64!"), "qlock.bad_signature"),
        (verify_body(CLASSICAL, public_key=b64(bytes(31))), "qlock.invalid_key"),
        (verify_body(CLASSICAL, public_key=b64(b"\x01" + bytes(31))), "qlock.invalid_key"),
        (verify_body(CLASSICAL, public_key="%%%%"), "qlock.invalid_key"),
        (verify_body(CLASSICAL, public_key="QUJD-_+/"), "qlock.invalid_key"),
        (verify_body(CLASSICAL, message="a===="), "request.invalid"),
    ],
    ids=[
        "tampered-ed25519",
        "tampered-hybrid",
        "other-message",
        "downgrade-to-classical",
        "truncated-signature",
        "signature-not-base64",
        "key-too-short",
        "key-wrong-length",
        "key-not-base64",
        "key-mixed-alphabets",
        "message-bad-padding",
    ],
)
async def test_http_verify_refuses_with_a_typed_problem(
    http: httpx.AsyncClient, operator: dict[str, str], body: dict[str, str], code: str
) -> None:
    response = await http.post("/qlock/verify", json=body, headers=operator)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == code


async def test_http_verify_refuses_oversized_and_unknown_fields(
    http: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    for body in (
        verify_body(CLASSICAL, public_key="A" * 10_000),
        {**verify_body(CLASSICAL), "private_key": "nope"},
        {"public_key": b64(CLASSICAL.verify_key.to_bytes())},
    ):
        response = await http.post("/qlock/verify", json=body, headers=operator)
        assert response.status_code == 422, response.text


async def test_http_seal_opens_with_each_recipients_key(
    http: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    readers = [AgreementKey.generate(hybrid=False), AgreementKey.generate(hybrid=True)]
    body = {
        "recipients": [b64(reader.recipient_key.to_bytes()) for reader in readers],
        "plaintext": b64(b"meet at noon"),
        "aad": b64(b"context"),
    }
    response = await http.post("/qlock/seal", json=body, headers=operator)
    assert response.status_code == 200, response.text
    sealed = response.json()
    assert sealed["recipients"] == [reader.key_id for reader in readers]
    envelope = base64.b64decode(sealed["envelope"])
    assert sealed["size_bytes"] == len(envelope)
    for reader in readers:
        assert open_sealed(envelope, reader, aad=b"context") == b"meet at noon"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"recipients": [b64(CLASSICAL.verify_key.to_bytes())], "plaintext": ""},
            400,
            "qlock.invalid_key",
        ),
        ({"recipients": [b64(b"\x11" + bytes(31))], "plaintext": ""}, 400, "qlock.invalid_key"),
        ({"recipients": [b64(b"\x11" + bytes(32))], "plaintext": ""}, 400, "qlock.invalid_key"),
        ({"recipients": ["***"], "plaintext": ""}, 400, "qlock.invalid_key"),
        (
            {
                "recipients": [b64(AgreementKey.generate(hybrid=False).recipient_key.to_bytes())],
                "plaintext": "x",
            },
            400,
            "request.invalid",
        ),
        ({"recipients": [], "plaintext": ""}, 422, "request.validation"),
        ({"recipients": ["QQ=="] * 65, "plaintext": ""}, 422, "request.validation"),
        ({"recipients": ["QQ=="], "plaintext": "A" * (2 * 1024 * 1024)}, 422, "request.validation"),
    ],
    ids=[
        "signing-key",
        "short-key",
        "small-order-key",
        "key-not-base64",
        "plaintext-not-base64",
        "no-recipients",
        "too-many-recipients",
        "plaintext-too-large",
    ],
)
async def test_http_seal_refuses_with_a_typed_problem(
    http: httpx.AsyncClient, operator: dict[str, str], body: dict[str, Any], status: int, code: str
) -> None:
    response = await http.post("/qlock/seal", json=body, headers=operator)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == code


async def test_http_crypto_refuses_anonymous_callers(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/qlock/verify", json=verify_body(CLASSICAL))
    assert response.status_code == 401


def test_verify_and_seal_need_a_grant_for_identities(node: Node) -> None:
    svc: QlockService = node.service("qlock")
    body = verify_body(CLASSICAL)
    with pytest.raises(Forbidden):
        svc.verify(as_(ALICE), body["public_key"], body["message"], body["signature"])
    allow(node, ALICE, "qlock:crypto:*")
    assert svc.verify(as_(ALICE), body["public_key"], body["message"], body["signature"]).valid


# Decoding never fails with anything but a 4xx -------------------------------------------


@given(st.binary(max_size=64), st.sampled_from(["standard", "urlsafe", "unpadded"]))
@settings(max_examples=100, deadline=None)
def test_base64_round_trips_in_every_accepted_spelling(data: bytes, spelling: str) -> None:
    text = {
        "standard": base64.b64encode(data).decode(),
        "urlsafe": base64.urlsafe_b64encode(data).decode(),
        "unpadded": base64.b64encode(data).decode().rstrip("="),
    }[spelling]
    assert decode_base64(text, "field", 64, BadRequest) == data


@given(st.text(max_size=80))
@settings(max_examples=200, deadline=None)
def test_base64_decoder_refuses_garbage_with_the_given_error(text: str) -> None:
    with contextlib.suppress(InvalidKey):
        decode_base64(text, "field", 32, InvalidKey)


@given(st.binary(max_size=2100))
@settings(max_examples=200, deadline=None)
def test_any_bytes_as_a_key_or_signature_fail_only_as_4xx(data: bytes) -> None:
    svc = QlockService.__new__(QlockService)
    svc.k = _AllowAll()  # type: ignore[assignment]
    for call in (
        lambda: svc.verify(
            Context.system(), b64(data), b64(MESSAGE), b64(sign(CLASSICAL, MESSAGE))
        ),
        lambda: svc.verify(Context.system(), b64(CLASSICAL.verify_key.to_bytes()), "", b64(data)),
        lambda: svc.seal(Context.system(), [b64(data)], ""),
    ):
        try:
            call()
        except AnarqError as exc:
            refused: AnarqError | None = exc
        else:
            refused = None
        assert refused is None or 400 <= refused.status < 500


class _AllowAll:
    def check(self, ctx: Context, action: str, resource: str) -> None:
        return None


# CLI -------------------------------------------------------------------------------------


def test_cli_durations_read_as_milliseconds() -> None:
    from anarq.qlock.cli import parse_ms

    assert [parse_ms(text) for text in ("250ms", "30s", "5m", "1h")] == [
        250,
        30_000,
        300_000,
        3_600_000,
    ]
    for text in ("", "5", "1d", "-1s", "1.5s", "5 m"):
        with pytest.raises(typer.BadParameter):
            parse_ms(text)
