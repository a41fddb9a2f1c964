"""The database: SQLAlchemy 2 Core over SQLite (embedded) or PostgreSQL (cluster).

Two kinds of transaction, so that SQLite never deadlocks on a lock upgrade:
`read()` begins a deferred transaction, `write()` an immediate one. On PostgreSQL
both are ordinary READ COMMITTED transactions. Schema changes go through Alembic
migrations only (`anarq db upgrade`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, Table, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TypeDecorator

from anarq.kernel.errors import BackendUnavailable, MigrationRequired

# Constraint names are fixed so migrations can refer to them on every engine.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Arbitrary, fixed: the advisory lock id that serializes migrations on PostgreSQL.
MIGRATION_LOCK_KEY = 0x414E5251
POSTGRES_RECYCLE_SECONDS = 1800
# The request thread pool's size (AnyIO's default limiter).
SQLITE_POOL_SIZE = 40


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the engine keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        assert value.tzinfo is not None, "naive datetimes are refused: times are UTC-aware"
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Database:
    """One engine, transactions that say whether they write, and the migration commands."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        self._after_commit: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self.engine = self._create_engine(url, pool_size)

    # Engine ------------------------------------------------------------------

    def _create_engine(self, url: str, pool_size: int) -> Engine:
        if self.dialect == "sqlite":
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # One connection per request thread: SQLite connections are cheap to keep
            # and costly to open (WAL and pragmas), so the pool is never the bottleneck.
            engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                pool_size=max(pool_size, SQLITE_POOL_SIZE),
                max_overflow=SQLITE_POOL_SIZE,
            )
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
            return engine
        return create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            # No pre-ping (a round trip per checkout); a dropped connection fails one
            # request with 503 and SQLAlchemy then replaces the pool's connections.
            pool_recycle=POSTGRES_RECYCLE_SECONDS,
            connect_args={"connect_timeout": 5},
        )

    def close(self) -> None:
        self.engine.dispose()

    # Transactions ------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only view; committed writes of other transactions may be seen between queries."""
        with self._connect() as conn:
            if self.dialect == "postgresql":
                # Under READ COMMITTED every statement takes its own snapshot anyway, so
                # autocommit reads lose nothing and save the BEGIN and COMMIT round trips.
                yield conn.execution_options(isolation_level="AUTOCOMMIT")
                return
            with conn.begin():  # SQLite: one WAL snapshot for the whole read
                yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that changes state: all of it commits, or none of it."""
        with self._connect() as conn:
            conn = conn.execution_options(anarq_write=True)
            with conn.begin():
                deferred: dict[Executable, list[dict[str, Any]]] = {}
                conn.info[_DEFERRED] = deferred
                try:
                    yield conn
                    # Rows queued with `defer_insert`: one executemany per statement.
                    for statement, rows in deferred.items():
                        conn.execute(statement, rows)
                finally:
                    conn.info.pop(_DEFERRED, None)
        for callback in self._after_commit:
            callback()

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` (cheap, non-blocking) after every committed write transaction."""
        with self._lock:
            self._after_commit.append(callback)

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            conn = self.engine.connect()
        except (OperationalError, DBAPIError) as exc:
            raise BackendUnavailable(f"database unreachable: {_short(exc)}") from None
        with conn:
            yield conn

    def ping(self) -> None:
        """Raise `BackendUnavailable` unless a round trip to the database succeeds."""
        with self.read() as conn:
            conn.execute(text("SELECT 1"))

    # Migrations --------------------------------------------------------------

    def upgrade(self, revision: str = "head") -> None:
        """Apply migrations up to `revision` (default: the newest)."""
        from alembic import command

        with self._connect() as conn:
            conn = conn.execution_options(anarq_write=True)  # SQLite: one migrator at a time
            if self.dialect == "postgresql":
                # Workers starting together must not migrate together.
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                conn.commit()
            try:
                command.upgrade(_alembic_config(conn), revision)
                conn.commit()
            finally:
                if self.dialect == "postgresql":
                    conn.rollback()
                    conn.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
                    conn.commit()

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self._connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str:
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
        assert head is not None, "the migrations folder has no head revision"
        return head

    def require_current(self) -> None:
        """Refuse to serve on a schema older than the code."""
        current, head = self.current_revision(), self.head_revision()
        if current != head:
            raise MigrationRequired(
                f"database is at {current or 'an empty schema'}, code needs {head}"
            )


_DEFERRED = "anarq_deferred_inserts"


def defer_insert(tx: Connection, statement: Executable, row: dict[str, Any]) -> None:
    """Insert `row` with `statement` when `tx` (a `Database.write()`) is about to commit.

    Rows queued this way go in with one executemany per statement: one round trip for
    many rows (audit entries, above all). Readers inside `tx` do not see them yet. Outside
    a `write()` transaction the row is inserted at once.
    """
    deferred = tx.info.get(_DEFERRED)
    if deferred is None:
        tx.execute(statement, row)
    else:
        deferred.setdefault(statement, []).append(row)


def insert_ignore(tx: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert a row unless its key exists; True if this call inserted it. Race-free."""
    dialect_insert = sqlite_insert if tx.dialect.name == "sqlite" else postgresql_insert
    # RETURNING, not rowcount: psycopg reports -1 for a conflict-free INSERT … DO NOTHING.
    key = next(iter(table.primary_key.columns))
    statement = dialect_insert(table).values(**values).on_conflict_do_nothing().returning(key)
    return tx.execute(statement).first() is not None


def insert_new(
    tx: Connection, table: Table, rows: list[dict[str, Any]], returning: Any
) -> set[Any]:
    """Insert the rows whose key does not exist yet; the `returning` values of those this
    call inserted (the others were there already). One statement, race-free.

    Where a lookup `key IN (…many…)` would decide the same thing, this avoids it: on
    PostgreSQL such a lookup's generic plan, made while the table was small, can scan
    the whole table for every batch once it has grown."""
    if not rows:
        return set()
    dialect_insert = sqlite_insert if tx.dialect.name == "sqlite" else postgresql_insert
    # Executed with the rows as parameters: SQLAlchemy's "insertmanyvalues" batches them
    # into multi-row statements it compiles once, and collects RETURNING from each.
    statement = dialect_insert(table).on_conflict_do_nothing().returning(returning)
    return set(tx.execute(statement, rows).scalars())


def _alembic_config(conn: Connection | None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "anarq:migrations")
    config.attributes["connection"] = conn
    return config


def _sqlite_on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy (not the sqlite3 module) decide when transactions begin.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    mode = "BEGIN IMMEDIATE" if conn.get_execution_options().get("anarq_write") else "BEGIN"
    conn.exec_driver_sql(mode)


def _short(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return message[0] if message else type(exc).__name__
