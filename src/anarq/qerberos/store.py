"""The Merkle tree's complete subtrees kept in the database, for `anarq.qerberos.merkle`."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from anarq.qerberos import tables


class DatabaseNodeStore:
    """A `NodeStore` over one transaction. New hashes are buffered and written by `flush()`."""

    def __init__(self, conn: Connection, size: int) -> None:
        self._conn = conn
        self._size = size
        self._pending: dict[tuple[int, int], bytes] = {}

    def get(self, level: int, index: int) -> bytes:
        cached = self._pending.get((level, index))
        if cached is not None:
            return cached
        t = tables.tree_nodes
        found = self._conn.execute(
            select(t.c.hash).where(t.c.level == level, t.c.idx == index)
        ).scalar_one_or_none()
        if found is None:
            raise LookupError(f"no complete subtree at level {level}, index {index}")
        return bytes(found)

    def put(self, level: int, index: int, digest: bytes) -> None:
        self._pending[(level, index)] = digest
        if level == 0:
            self._size = max(self._size, index + 1)

    def size(self) -> int:
        return self._size

    def flush(self) -> None:
        if self._pending:
            self._conn.execute(
                insert(tables.tree_nodes),
                [{"level": lv, "idx": ix, "hash": h} for (lv, ix), h in self._pending.items()],
            )
            self._pending.clear()
