"""The gateway's promises: problem+json errors, request ids, limits, health and metrics."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from anarq.kernel.node import Node
from anarq.kernel.tables import outbox

PROBLEM = "application/problem+json"


def outbox_size(node: Node) -> int:
    with node.kernel.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["title"] and body["detail"] and body["type"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_health_answers(http: httpx.AsyncClient) -> None:
    response = await http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_checks_every_backend(http: httpx.AsyncClient) -> None:
    response = await http.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "blobs": "ok", "bus": "ok"}


async def test_ready_fails_when_the_database_is_unreachable(tmp_path) -> None:
    from anarq.gateway.app import create_app
    from anarq.kernel.settings import Settings

    dead = Node.open(
        Settings(data_dir=tmp_path, database_url="postgresql+psycopg://anarq@127.0.0.1:9/none")
    )
    transport = httpx.ASGITransport(app=create_app(dead, background=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://node.test") as client:
        response = await client.get("/ready")
    dead.close()
    body = assert_problem(response, 503, "backend.unavailable")
    assert body["checks"]["database"].startswith("unreachable")
    assert body["checks"]["blobs"] == "ok"


async def test_every_response_has_a_request_id(http: httpx.AsyncClient) -> None:
    generated = await http.get("/health")
    assert len(generated.headers["x-request-id"]) == 26
    echoed = await http.get("/health", headers={"X-Request-Id": "trace-1234-abcd"})
    assert echoed.headers["x-request-id"] == "trace-1234-abcd"
    refused = await http.get("/health", headers={"X-Request-Id": "bad id with spaces"})
    assert refused.headers["x-request-id"] != "bad id with spaces"


async def test_unknown_route_is_a_problem(http: httpx.AsyncClient) -> None:
    assert_problem(await http.get("/no/such/route"), 404, "not_found")


async def test_wrong_method_is_a_problem(http: httpx.AsyncClient) -> None:
    assert_problem(await http.delete("/node/info"), 405, "request.method_not_allowed")


async def test_malformed_json_is_400_and_writes_nothing(
    node: Node, http: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    response = await http.patch(
        "/node/profile",
        content=b'{"name": ',
        headers={**operator, "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "request.malformed")
    assert outbox_size(node) == 0


async def test_wrong_types_are_422_with_the_field_named(
    node: Node, http: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    response = await http.patch("/node/profile", json={"name": 42}, headers=operator)
    body = assert_problem(response, 422, "request.validation")
    assert "name" in body["detail"]
    assert outbox_size(node) == 0


async def test_unknown_fields_are_refused(
    http: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    response = await http.patch("/node/profile", json={"nmae": "x"}, headers=operator)
    assert_problem(response, 422, "request.validation")


async def test_oversize_body_by_header_is_413(
    node: Node, http: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    limit = node.kernel.settings.max_body_bytes
    response = await http.patch(
        "/node/profile",
        content=b"x" * (limit + 1),
        headers={**operator, "Content-Type": "application/json"},
    )
    assert_problem(response, 413, "request.too_large")
    assert outbox_size(node) == 0


async def test_oversize_streamed_body_is_413(
    node: Node, http: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    limit = node.kernel.settings.max_body_bytes

    async def chunks():
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    response = await http.put(
        "/node/avatar", content=chunks(), headers={**operator, "Content-Type": "image/png"}
    )
    assert_problem(response, 413, "request.too_large")
    assert outbox_size(node) == 0


async def test_bad_bearer_token_is_401_not_anonymous(http: httpx.AsyncClient) -> None:
    response = await http.get("/node/info", headers={"Authorization": "Bearer anq_op_nope"})
    assert_problem(response, 401, "auth.required")
    response = await http.get("/node/info", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_problem(response, 401, "auth.required")


async def test_metrics_count_requests_per_route(http: httpx.AsyncClient) -> None:
    await http.get("/health")
    await http.get("/node/info")
    await http.get("/missing")
    text = (await http.get("/metrics")).text
    assert 'anarq_http_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert 'route="/node/info"' in text
    assert (
        'anarq_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/health"}'
        in text
    )
    assert 'route="<unmatched>",status="404"' in text


async def test_openapi_and_docs_are_served(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    assert "/node/profile" in spec["paths"]
    assert "/health" in spec["paths"]
    docs = await http.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_lost_database_connections_give_503_then_recover(
    node: Node, http: httpx.AsyncClient, backend: str
) -> None:
    if backend != "cluster":
        pytest.skip("PostgreSQL drops connections; an embedded SQLite file cannot")
    from sqlalchemy import text

    assert (await http.get("/node/profile")).status_code == 200
    database = node.kernel.db.engine.url.database
    with node.kernel.db.engine.connect() as admin:
        admin.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        )
        admin.commit()
    statuses = [(await http.get("/node/profile")).status_code for _ in range(3)]
    assert statuses[-1] == 200
    assert set(statuses) <= {200, 503}
