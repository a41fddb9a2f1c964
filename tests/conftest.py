"""Fixtures: a real node on each backend.

Every storage, blob and bus test runs twice: `embedded` (SQLite, a local folder,
in-process events) and `cluster` (PostgreSQL, SeaweedFS S3, NATS JetStream).
Cluster services that are not reachable make those tests skip, except under
CI (`CI=true`), where they fail: CI must prove both backends.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from anarq.gateway.app import create_app
from anarq.kernel.bus.nats import NatsTransport
from anarq.kernel.db import Database
from anarq.kernel.guard import Context
from anarq.kernel.node import Node
from anarq.kernel.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get(
    "ANARQ_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
NATS_URL = os.environ.get("ANARQ_TEST_NATS_URL", "nats://127.0.0.1:4222")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BACKENDS = ("embedded", "cluster")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_cluster(what: str, available: bool) -> None:
    """Skip (or fail under CI) when a cluster service is missing."""
    if available:
        return
    message = f"{what} is not reachable; cluster-backend tests need it"
    if IN_CI:
        pytest.fail(f"{message} (CI=true makes cluster tests required)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _clean_anarq_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build settings explicitly; a developer's ANARQ_* variables must not leak in."""
    for key in list(os.environ):
        if key.upper().startswith("ANARQ_") and not key.upper().startswith("ANARQ_TEST_"):
            monkeypatch.delenv(key)


# PostgreSQL: one migrated template per session, a fresh copy per test -------------------


# Empties a used test database for the next test: every row of every table but the
# migration marker, foreign-key triggers off while it runs, sequences back to their start.
# Far cheaper than CREATE DATABASE, which copies the whole template through the WAL.
_EMPTY_EVERY_TABLE = """
DO $$
DECLARE t record;
BEGIN
  SET LOCAL session_replication_role = replica;
  FOR t IN SELECT tablename FROM pg_tables
           WHERE schemaname = 'public' AND tablename <> 'alembic_version' LOOP
    EXECUTE format('DELETE FROM public.%I', t.tablename);
  END LOOP;
  PERFORM setval(format('%I.%I', schemaname, sequencename)::regclass, start_value, false)
     FROM pg_sequences WHERE schemaname = 'public';
END $$;
"""


class PostgresDatabases:
    """Test databases: one migrated template per session, a fresh copy per test.

    A copy a test is done with goes back to a pool, emptied, for the next test; one
    whose schema the test changed (or that cannot be emptied) is dropped instead.
    """

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.template = f"anarq_tmpl_{os.getpid()}_{secrets.token_hex(3)}"
        self._engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self._template_ready = False
        self._head: str | None = None
        self._spare: list[str] = []

    def url_for(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"

    def empty(self) -> str:
        name = f"anarq_t_{secrets.token_hex(6)}"
        with self._engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        return name

    def migrated(self) -> str:
        if self._spare:
            return self._spare.pop()
        if not self._template_ready:
            with self._engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.template}"'))
            database = Database(self.url_for(self.template), pool_size=1)
            database.upgrade()
            database.close()
            self._head = self._version_of(self.template)
            self._template_ready = True
        name = f"anarq_t_{secrets.token_hex(6)}"
        with self._engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        return name

    def release(self, name: str) -> None:
        """Done with a migrated copy: empty it into the pool, or drop it."""
        try:
            with self._engine.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
            if self._version_of(name) != self._head:
                raise RuntimeError(f"{name} is no longer at the template's migration")
            engine = create_engine(self.url_for(name), poolclass=NullPool)
            try:
                with engine.begin() as conn:
                    conn.execute(text(_EMPTY_EVERY_TABLE))
            finally:
                engine.dispose()
        except Exception:
            self.drop(name)
            return
        self._spare.append(name)

    def _version_of(self, name: str) -> str | None:
        engine = create_engine(self.url_for(name), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        finally:
            engine.dispose()

    def drop(self, name: str) -> None:
        with self._engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        for name in self._spare:
            self.drop(name)
        if self._template_ready:
            self.drop(self.template)
        self._engine.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    require_cluster("PostgreSQL at 127.0.0.1:5432", _reachable("127.0.0.1", 5432))
    databases = PostgresDatabases(POSTGRES_ADMIN_URL)
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def seaweed() -> Iterator[Any]:
    from tests.support.seaweed import SeaweedServer

    try:
        server = SeaweedServer()
    except RuntimeError as exc:
        require_cluster(f"SeaweedFS ({exc})", False)
        raise
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_available() -> bool:
    available = _reachable("127.0.0.1", 4222)
    require_cluster("NATS JetStream at 127.0.0.1:4222", available)
    return available


# Settings and nodes on either backend --------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Settings for a fresh, migrated node on `backend`."""
    if backend == "embedded":
        yield Settings(data_dir=tmp_path / "data", bus_poll_ms=50, bus_retry_base_ms=10)
        return
    postgres: PostgresDatabases = request.getfixturevalue("postgres")
    request.getfixturevalue("nats_available")
    seaweed = request.getfixturevalue("seaweed")
    database = postgres.migrated()
    cluster = f"t{secrets.token_hex(5)}"
    yield Settings(
        data_dir=tmp_path / "data",
        database_url=postgres.url_for(database),
        blobs_url=seaweed.url_for(seaweed.make_bucket(f"anarq-{cluster}")),
        bus_url=NATS_URL,
        cluster=cluster,
        secret_key=f"test-secret-{cluster}",
        bus_poll_ms=50,
        bus_retry_base_ms=10,
    )
    asyncio.run(NatsTransport(NATS_URL, cluster=cluster).delete_stream())
    postgres.release(database)


_SQLITE_TEMPLATE: list[Path] = []


def migrate_embedded(settings: Settings) -> None:
    """Give an embedded node's data dir a database at the latest migration: a copy of one
    migrated once per session (running 30 migrations cost each test a fifth of a second)."""
    if settings.backend_kind != "embedded":
        return
    if not _SQLITE_TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="anarq-sqlite-template-"))
        template = folder / "anarq.db"
        database = Database(f"sqlite:///{template}", pool_size=1)
        database.upgrade()
        database.close()
        _SQLITE_TEMPLATE.append(template)
    template = _SQLITE_TEMPLATE[0]
    target = Path(settings.effective_database_url.removeprefix("sqlite:///"))
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal"):
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copyfile(source, target.with_name(target.name + suffix))


@pytest.fixture
async def node(settings: Settings) -> AsyncIterator[Node]:
    """A node built on `settings`, its schema migrated; the bus is driven by the test."""
    migrate_embedded(settings)
    built = Node.open(settings)
    yield built
    await built.kernel.bus.stop()
    built.close()


@pytest.fixture
async def http(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client wired straight to the node's ASGI app (no sockets)."""
    app = create_app(node, background=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://node.test") as client:
        yield client


@pytest.fixture
def operator_token(node: Node) -> str:
    token: str = node.service("node").issue_operator_token(Context.system(), "tests").token
    return token


@pytest.fixture
def operator(operator_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {operator_token}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
