from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, insert, inspect, select

import anarq.modules
from anarq.kernel.db import Database, UtcDateTime, insert_ignore, metadata
from anarq.kernel.node import Node
from anarq.kernel.settings import Settings
from anarq.migrations import include_object


@pytest.fixture
def empty_database(backend: str, tmp_path, request: pytest.FixtureRequest):
    if backend == "embedded":
        database = Database(f"sqlite:///{tmp_path / 'empty.db'}")
        yield database
        database.close()
        return
    postgres = request.getfixturevalue("postgres")
    name = postgres.empty()
    database = Database(postgres.url_for(name))
    yield database
    database.close()
    postgres.drop(name)


def test_upgrade_builds_an_empty_database_to_head(empty_database: Database) -> None:
    assert empty_database.current_revision() is None
    empty_database.upgrade()
    assert empty_database.current_revision() == empty_database.head_revision()
    with empty_database.read() as conn:
        names = set(inspect(conn).get_table_names())
    assert {"kernel_outbox", "kernel_consumed", "node_profile"} <= names


def test_upgrade_twice_changes_nothing(empty_database: Database) -> None:
    empty_database.upgrade()
    empty_database.upgrade()
    assert empty_database.current_revision() == empty_database.head_revision()


def test_workers_migrating_together_migrate_once(empty_database: Database, tmp_path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("ANARQ_")}
    env.update({"ANARQ_DATA_DIR": str(tmp_path), "ANARQ_DATABASE_URL": empty_database.url})
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "anarq", "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [(worker.wait(timeout=120), worker.stderr.read()) for worker in workers]  # type: ignore[union-attr]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    assert empty_database.current_revision() == empty_database.head_revision()


def test_migrations_match_the_tables_in_code(empty_database: Database) -> None:
    """A table or column added in code without a migration fails here."""
    declared = [table for module in anarq.modules.installed_modules() for table in module.tables]
    assert declared and all(table.name in metadata.tables for table in declared)
    empty_database.upgrade()
    with empty_database.read() as conn:
        differences = compare_metadata(
            MigrationContext.configure(
                conn, opts={"compare_type": False, "include_object": include_object}
            ),
            metadata,
        )
    assert differences == []


def test_require_current_refuses_an_old_schema(empty_database: Database) -> None:
    from anarq.kernel.errors import MigrationRequired

    with pytest.raises(MigrationRequired):
        empty_database.require_current()
    empty_database.upgrade()
    empty_database.require_current()


def test_failed_write_rolls_back_everything(node: Node) -> None:
    from anarq.kernel.tables import outbox

    db = node.kernel.db
    with pytest.raises(RuntimeError), db.write() as tx:
        node.kernel.bus.publish(tx, "node.test.happened", {"n": 1})
        raise RuntimeError("change failed half way")
    with db.read() as conn:
        assert conn.execute(select(outbox)).all() == []


def test_insert_ignore_reports_whether_it_inserted(node: Node) -> None:
    from anarq.kernel.tables import consumed

    now = datetime.now(UTC)
    row = {"subscription": "a.b", "event_id": "01J0000000000000000000000A", "consumed_at": now}
    with node.kernel.db.write() as tx:
        assert insert_ignore(tx, consumed, row) is True
        assert insert_ignore(tx, consumed, row) is False


def test_times_come_back_as_utc(settings: Settings, node: Node) -> None:
    scratch = MetaData()
    table = Table(
        "scratch_times",
        scratch,
        Column("id", Integer, primary_key=True),
        Column("at", UtcDateTime()),
    )
    moment = datetime(2026, 5, 4, 3, 2, 1, 123000, tzinfo=UTC)
    with node.kernel.db.write() as tx:
        scratch.create_all(tx)
        tx.execute(insert(table).values(id=1, at=moment))
    with node.kernel.db.read() as conn:
        value = conn.execute(select(table.c.at)).scalar_one()
    assert value == moment
    assert value.tzinfo is not None


def test_deferred_inserts_land_at_commit_and_vanish_on_rollback(node: Node) -> None:
    from anarq.kernel.db import defer_insert
    from anarq.kernel.tables import consumed

    now = datetime.now(UTC)
    statement = insert(consumed)

    def row(n: int) -> dict[str, object]:
        return {"subscription": "deferred", "event_id": f"{n:026d}", "consumed_at": now}

    def count() -> int:
        with node.kernel.db.read() as conn:
            rows = conn.execute(select(consumed).where(consumed.c.subscription == "deferred"))
            return len(rows.all())

    with node.kernel.db.write() as tx:
        for n in range(5):
            defer_insert(tx, statement, row(n))
        seen_inside = tx.execute(select(consumed).where(consumed.c.subscription == "deferred"))
        assert seen_inside.all() == []  # queued, not yet written
    assert count() == 5

    with pytest.raises(RuntimeError), node.kernel.db.write() as tx:
        defer_insert(tx, statement, row(10))
        raise RuntimeError("change failed")
    assert count() == 5

    with node.kernel.db.write() as tx:  # the queue of a failed transaction does not leak
        pass
    assert count() == 5
