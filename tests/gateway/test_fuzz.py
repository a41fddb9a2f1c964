"""Property-based fuzzing of the node's whole OpenAPI: every route any module adds is covered.

Must hold for every generated request: no 5xx, every 4xx is problem+json with a
stable code, and responses match their documented schema. Bounded by
`max_examples` so the run stays short; run once anonymous and once as operator
so both refusals and real writes are exercised.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from anarq.gateway.app import create_app
from anarq.kernel.db import Database
from anarq.kernel.guard import Context
from anarq.kernel.node import Node
from anarq.kernel.settings import Settings

MAX_EXAMPLES = 15


@schemathesis.check
def problem_details_on_client_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    if 400 <= response.status_code < 500:
        media_type = response.headers.get("content-type", [""])
        media_type = media_type[0] if isinstance(media_type, list) else media_type
        assert media_type.startswith("application/problem+json"), (
            f"{response.status_code} without problem+json ({media_type})"
        )
        body = response.json()
        assert isinstance(body.get("code"), str) and body["code"], "problem without a code"
        assert body.get("status") == response.status_code
    return None


@pytest.fixture(scope="module")
def fuzz_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    node_settings = Settings(
        data_dir=data_dir,
        max_body_bytes=64 * 1024,
        # The fuzzer is one client sending thousands of requests: explore, do not throttle.
        rate_limit_ip_per_minute=10_000_000,
        lockout_failures=10_000,
    )
    database = Database(node_settings.effective_database_url)
    database.upgrade()
    database.close()
    node = Node.open(node_settings)
    yield node
    node.close()


@pytest.fixture(scope="module")
def api_schema(fuzz_node: Node) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(fuzz_node, background=False))


@pytest.fixture(scope="module")
def operator_headers(fuzz_node: Node) -> dict[str, str]:
    issued = fuzz_node.service("node").issue_operator_token(Context.system(), "fuzz")
    return {"Authorization": f"Bearer {issued.token}"}


@schemathesis.check
def anonymous_cannot_change_state(ctx: Any, response: Any, case: Any) -> bool | None:
    """The authorization matrix for the anonymous caller: no state change, on any route."""
    label = f"{case.method.upper()} {case.path}"
    if case.method.upper() not in ("GET", "HEAD", "OPTIONS") and label not in COMPUTE_ONLY:
        assert response.status_code >= 400, (
            f"anonymous {case.method} {case.path} was accepted ({response.status_code})"
        )
    return None


CHECKS = [not_a_server_error, problem_details_on_client_errors]


def without_waiting(case: Any) -> None:
    """No example waits (`wait_ms`, up to 30 s, on a lock an earlier example holds): its
    outcome would hang on the clock, which Hypothesis cannot replay, and the run would
    crawl. Waiting has its own tests in tests/qlock."""
    if isinstance(case.body, dict) and isinstance(case.body.get("wait_ms"), int):
        case.body["wait_ms"] = 0


def fuzz_every_operation(
    api_schema: Any, headers: dict[str, str] | None, extra_checks: list[Any] | None = None
) -> list[str]:
    """Run each operation's generated cases; return a description of every operation that failed."""
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert operations, "the schema has operations"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def exercise(case: Any) -> None:
            without_waiting(case)
            case.call_and_validate(headers=headers, checks=[*CHECKS, *(extra_checks or [])])

        try:
            exercise()
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    return failures


def test_anonymous_requests_never_crash(api_schema: Any) -> None:
    assert fuzz_every_operation(api_schema, None, [anonymous_cannot_change_state]) == []


def test_operator_requests_never_crash(api_schema: Any, operator_headers: dict[str, str]) -> None:
    assert fuzz_every_operation(api_schema, operator_headers) == []


def test_identity_without_grants_cannot_change_state(fuzz_node: Node, api_schema: Any) -> None:
    """The authorization matrix for a signed-in identity that holds no grant: every
    state-changing operation, with generated valid and invalid inputs, is refused."""
    from starlette.testclient import TestClient

    from anarq.qlock import SigningKey
    from anarq.sdk.signing import RequestSigner

    signer = RequestSigner.for_key(SigningKey.generate(hybrid=False))
    client = TestClient(create_app(fuzz_node, background=False), base_url="http://node.test")
    registered = client.build_request("POST", "/squid/identities", json={"name": "eve"})
    signer.sign(registered)
    assert client.send(registered).status_code == 201
    accepted: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() not in ("GET", "HEAD", "OPTIONS"):
            accepted += accepted_without_grants(operation, client, signer, fuzz_node)
    assert accepted == []


OWN_SPACE = {
    "POST /squid/identities",
    "POST /qdrive/uploads",
    "PUT /qdrive/files",
    "POST /qdrive/move",
    "POST /qmask/profiles",
    "PUT /qindex/pointers/{key}",
    "DELETE /qindex/pointers/{key}",
    # Importing into one's own photo library, creating one's own album.
    "POST /qpic/upload",
    "POST /qpic/photos",
    "POST /qpic/albums",
    # One's own mail contacts (whose mail goes to the inbox).
    "POST /qmail/contacts",
    # Making one's own chat room (its owner is the caller).
    "POST /qchat/rooms",
    # One's own wallet: issuing an asset, opening an account, minting one's own token. A
    # batch answers 200 with a result per transfer; what it may move is checked by the
    # ledger and shown in the wallet tests.
    "POST /qwallet/assets",
    "POST /qwallet/accounts",
    "POST /qwallet/nfts",
    "POST /qwallet/batches",
    # One's own mail postage; one's own shop listing; one's own DAO (its creator).
    "PUT /qmail/postage",
    "DELETE /qmail/postage",
    "POST /qmarket/listings",
    "POST /dao/daos",
    # One's own mail threshold; one's own applications; credentials about oneself
    # (did-control needs nothing more than the signed request), one's own status list
    # entries as an issuer, and challenges for presentations to oneself as a verifier.
    "PUT /qmail/threshold",
    "DELETE /qmail/threshold",
    "POST /oidc/clients",
    "POST /vc/issue",
    "POST /vc/status",
    "POST /vc/challenges",
}
# POST only because their input is a body: they compute an answer and change nothing.
# Any identity may call them; each accepted call is checked to have changed no table.
COMPUTE_ONLY = {
    "POST /qmask/apply",
    "POST /qmask/detect",
    "POST /qmask/redact",
    "POST /qmask/image/strip",
    "POST /qmask/anonymize",
    "POST /qmarket/licences/verify",
    # A credential's check (a presentation's spends the caller's own challenge, which an
    # anonymous caller or one without challenges never has).
    "POST /vc/verify",
}
# What every signed request may add to, whatever it does: spent nonces, the audit trail.
BOOKKEEPING_PREFIXES = ("squid_nonces", "squid_aid_counts", "qerberos_")


def table_sizes(node: Node) -> dict[str, int]:
    from sqlalchemy import func, select

    from anarq.kernel.db import metadata

    with node.kernel.db.read() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in metadata.sorted_tables
            if not table.name.startswith(BOOKKEEPING_PREFIXES)
        }


def accepted_without_grants(operation: Any, client: Any, signer: Any, node: Node) -> list[str]:
    """Send signed generated requests for one operation; describe any that were accepted."""
    label = f"{operation.method.upper()} {operation.path}"
    accepted: list[str] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def attempt(case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url="http://node.test")
        request = client.build_request(
            kwargs["method"],
            kwargs["url"],
            params=kwargs.get("params"),
            headers={
                k: v
                for k, v in (kwargs.get("headers") or {}).items()
                if k.lower() not in ("authorization", "x-anarq-capability")
            },
            json=kwargs.get("json"),
            content=kwargs.get("data") or kwargs.get("content"),
        )
        signer.sign(request)
        before = table_sizes(node) if label in COMPUTE_ONLY else None
        response = client.send(request)
        if response.status_code < 400 and label in COMPUTE_ONLY:
            if table_sizes(node) != before:
                accepted.append(f"{label}: {response.status_code}, and it changed a table")
        # Changes to one's own space need no grant: registering oneself, one's own drive.
        elif response.status_code < 400 and label not in OWN_SPACE:
            accepted.append(f"{label}: {response.status_code}")

    attempt()
    return accepted
