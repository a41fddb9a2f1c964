"""Loading a batch's state and writing its outcome, inside the caller's transaction.

The ledger has one writer at a time: SQLite's `BEGIN IMMEDIATE` already serializes
writers, and on PostgreSQL `lock` takes a transaction-level advisory lock, so every node
process sharing the database applies batches one after another, in timestamp order, and
balances are read and written without lost updates.

The hot path speaks to the driver directly (`executemany`, and `COPY` on PostgreSQL):
a batch of 8,190 transfers is a handful of statements, not thousands.
"""

# ruff: noqa: S608 - statements are built from this module's constants; values always
# travel as bound parameters.
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from anarq.qwallet.ledger import Account, Outcome, Pending, PendingState, Transfer

LEDGER_LOCK = 0x7177616C6C6574  # "qwallet": the advisory lock every ledger writer takes
CHUNK = 4000  # ids per IN (…) lookup: well under SQLite's 32,766 bound variables

_TRANSFER_COLUMNS = (
    "timestamp, id, debit_account, credit_account, amount, asset, pending_id, flags, "
    "timeout, hashlock, code, memo, actor"
)
_ACCOUNT_COLUMNS = (
    "id, owner, asset, flags, debits_pending, debits_posted, credits_pending, credits_posted"
)


class LedgerStore:
    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"
        self.mark = "%s" if self.postgres else "?"

    # Reading -------------------------------------------------------------------------

    def lock(self, tx: Connection) -> int:
        """Become the ledger's writer for this transaction; the ledger's version."""
        if self.postgres:
            tx.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LEDGER_LOCK})")
        found = self._rows(tx, "SELECT version FROM qwallet_state WHERE id = 1", ())
        if not found:  # the migration adds the row; a database emptied by hand lacks it
            tx.exec_driver_sql("INSERT INTO qwallet_state (id, version) VALUES (1, 0)")
            return 0
        return int(found[0][0])

    def bump(self, tx: Connection, version: int) -> None:
        """Move the ledger's version on (under `lock`): cached balances are now stale."""
        tx.exec_driver_sql(
            f"UPDATE qwallet_state SET version = {self.mark} WHERE id = 1", (version + 1,)
        )

    def last_timestamp(self, tx: Connection) -> int:
        value = self._rows(tx, "SELECT max(timestamp) FROM qwallet_transfers", ())[0][0]
        return int(value or 0)

    @staticmethod
    def _rows(tx: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
        """Plain tuples straight from the driver, on the transaction's own connection."""
        raw = tx.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def accounts(self, tx: Connection, ids: Iterable[int]) -> dict[int, Account]:
        found: dict[int, Account] = {}
        for rows in self._by_keys(
            tx, f"SELECT {_ACCOUNT_COLUMNS} FROM qwallet_accounts", "id", ids
        ):
            for r in rows:
                found[r[0]] = Account(
                    r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), int(r[6]), int(r[7])
                )
        return found

    def transfers(self, tx: Connection, ids: Iterable[str]) -> dict[str, Transfer]:
        found: dict[str, Transfer] = {}
        query = f"SELECT {_TRANSFER_COLUMNS} FROM qwallet_transfers"
        for rows in self._by_keys(tx, query, "id", ids):
            for r in rows:
                found[r[1]] = transfer_from_row(r)
        return found

    def pending(self, tx: Connection, ids: Iterable[str]) -> dict[str, Pending]:
        found: dict[str, Pending] = {}
        query = "SELECT id, state, expires_at FROM qwallet_pending"
        for rows in self._by_keys(tx, query, "id", ids):
            for r in rows:
                found[r[0]] = Pending(r[0], r[1], r[2])
        return found

    def failures(self, tx: Connection, ids: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for rows in self._by_keys(tx, "SELECT id, result FROM qwallet_failures", "id", ids):
            found.update((r[0], r[1]) for r in rows)
        return found

    def _by_keys(
        self, tx: Connection, select: str, key: str, values: Iterable[Any]
    ) -> Iterable[Sequence[Any]]:
        keys = list(dict.fromkeys(values))
        if self.postgres:
            if keys:
                yield self._rows(tx, f"{select} WHERE {key} = ANY(%s)", (keys,))
            return
        for start in range(0, len(keys), CHUNK):
            part = keys[start : start + CHUNK]
            marks = ",".join("?" * len(part))
            yield self._rows(tx, f"{select} WHERE {key} IN ({marks})", part)

    # Writing -------------------------------------------------------------------------

    def write(self, tx: Connection, outcome: Outcome) -> None:
        rows = [transfer_row(t) for t in outcome.transfers]
        if rows:
            self._insert_transfers(tx, rows)
        m = self.mark
        if outcome.new_pending:
            tx.exec_driver_sql(
                f"INSERT INTO qwallet_pending (id, state, expires_at) VALUES ({m}, {m}, {m})",
                [(p.id, p.state, p.expires_at) for p in outcome.new_pending],
            )
        if outcome.resolved_pending:
            tx.exec_driver_sql(
                f"UPDATE qwallet_pending SET state = {m} WHERE id = {m} AND state = {m}",
                [(p.state, p.id, PendingState.PENDING) for p in outcome.resolved_pending],
            )
        if outcome.failures:
            tx.exec_driver_sql(
                f"INSERT INTO qwallet_failures (id, result, timestamp) VALUES ({m}, {m}, {m})",
                outcome.failures,
            )
        if outcome.accounts:
            self.update_balances(tx, outcome.accounts)

    def update_balances(self, tx: Connection, changed: Sequence[Account]) -> None:
        balances = [
            (
                str(a.debits_pending),
                str(a.debits_posted),
                str(a.credits_pending),
                str(a.credits_posted),
                a.id,
            )
            for a in changed
        ]
        if self.postgres:
            columns = list(zip(*balances, strict=True))
            tx.exec_driver_sql(
                "UPDATE qwallet_accounts AS a SET debits_pending = v.dp, debits_posted = v.dpo,"
                " credits_pending = v.cp, credits_posted = v.cpo"
                " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[])"
                " AS v(dp, dpo, cp, cpo, id) WHERE a.id = v.id",
                tuple(list(c) for c in columns),
            )
            return
        tx.exec_driver_sql(
            "UPDATE qwallet_accounts SET debits_pending = ?, debits_posted = ?,"
            " credits_pending = ?, credits_posted = ? WHERE id = ?",
            balances,
        )

    def _insert_transfers(self, tx: Connection, rows: list[tuple[Any, ...]]) -> None:
        if self.postgres:
            raw = tx.connection.driver_connection
            assert raw is not None
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY qwallet_transfers ({_TRANSFER_COLUMNS}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" * 13)
        tx.exec_driver_sql(
            f"INSERT INTO qwallet_transfers ({_TRANSFER_COLUMNS}) VALUES ({marks})", rows
        )


def transfer_row(t: Transfer) -> tuple[Any, ...]:
    return (
        t.timestamp,
        t.id,
        t.debit_account,
        t.credit_account,
        str(t.amount),
        t.asset,
        t.pending_id,
        t.flags,
        t.timeout,
        t.hashlock,
        t.code,
        t.memo,
        t.actor,
    )


def transfer_from_row(r: Sequence[Any]) -> Transfer:
    return Transfer(
        id=r[1],
        timestamp=r[0],
        debit_account=r[2],
        credit_account=r[3],
        amount=int(r[4]),
        asset=r[5],
        pending_id=r[6],
        flags=r[7],
        timeout=r[8],
        hashlock=r[9],
        code=r[10],
        memo=r[11],
        actor=r[12],
    )
