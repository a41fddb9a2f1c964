"""The vocabulary: every indexed term with its document count, and near terms for typos.

Counts change in the transaction that indexes a document, so they are exact. Looking
for near terms needs every term at hand: each worker keeps them in memory, grouped by
length, and catches up before each lookup by reading the rows added since (`seq` only
grows). Candidates found in memory are confirmed against the table, so a term no
document holds any more is never offered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping

from rapidfuzz import process
from rapidfuzz.distance import OSA
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from anarq.kernel.db import Database
from anarq.qindex import tables

# Near terms offered for one unknown query word, closest and most common first.
NEAR_TERMS_MAX = 8
# PostgreSQL may commit sequence values out of order: each catch-up re-reads this many
# rows below the highest seen, and a full reload every few minutes settles the rest.
CATCH_UP_LOOKBACK = 1000
FULL_RELOAD_SECONDS = 300.0

_t = tables.terms
_KNOWN = select(_t.c.term).where(_t.c.term.in_(bindparam("terms", expanding=True)), _t.c.docs > 0)
_COUNTED = select(_t.c.term, _t.c.docs).where(
    _t.c.term.in_(bindparam("terms", expanding=True)), _t.c.docs > 0
)
_SINCE = select(_t.c.seq, _t.c.term).where(_t.c.seq > bindparam("after")).order_by(_t.c.seq)
_DECREMENT = update(_t).where(_t.c.term == bindparam("t")).values(docs=_t.c.docs - bindparam("n"))


class Vocabulary:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._by_length: dict[int, list[str]] = {}
        self._seen: set[str] = set()
        self._high_seq = 0
        self._loaded_at: float | None = None

    # Counting ------------------------------------------------------------------------

    def count(self, tx: Connection, deltas: Mapping[str, int]) -> None:
        """Add `deltas` (term → documents gained or lost) to the counts, in `tx`.

        Terms are written in sorted order, so concurrent indexers lock rows in one order.
        """
        gained = [{"term": t, "docs": n} for t, n in sorted(deltas.items()) if n > 0]
        lost = [{"t": t, "n": -n} for t, n in sorted(deltas.items()) if n < 0]
        if gained:
            dialect_insert = sqlite_insert if tx.dialect.name == "sqlite" else postgresql_insert
            statement = dialect_insert(_t)
            statement = statement.on_conflict_do_update(
                index_elements=[_t.c.term], set_={"docs": _t.c.docs + statement.excluded.docs}
            )
            tx.execute(statement, gained)
        if lost:
            tx.execute(_DECREMENT, lost)

    def known(self, conn: Connection, words: Iterable[str]) -> set[str]:
        """Which of `words` some document holds now."""
        wanted = sorted(set(words))
        if not wanted:
            return set()
        return set(conn.execute(_KNOWN, {"terms": wanted}).scalars())

    # Near terms ----------------------------------------------------------------------

    def near(self, conn: Connection, word: str, budget: int) -> list[str]:
        """The terms closest to `word` within `budget` edits (a transposition is one edit)
        that some document holds, the most common first; at most `NEAR_TERMS_MAX`."""
        if budget <= 0:
            return []
        self._catch_up(conn)
        distances: dict[str, int] = {}
        with self._lock:
            for length in range(len(word) - budget, len(word) + budget + 1):
                choices = self._by_length.get(length)
                if not choices:
                    continue
                for term, distance, _ in process.extract(
                    word, choices, scorer=OSA.distance, score_cutoff=budget, limit=None
                ):
                    if term != word:
                        distances[term] = int(distance)
        if not distances:
            return []
        counted = conn.execute(_COUNTED, {"terms": sorted(distances)}).all()
        if not counted:
            return []
        # Only the closest: a word one edit from some terms is not widened to terms two
        # edits away (they would add matches that are rarely meant, and cost time).
        closest = min(distances[row.term] for row in counted)
        ranked = sorted(
            (row for row in counted if distances[row.term] == closest),
            key=lambda row: (-row.docs, row.term),
        )
        return [row.term for row in ranked[:NEAR_TERMS_MAX]]

    def _catch_up(self, conn: Connection) -> None:
        now = time.monotonic()
        with self._lock:
            reload = self._loaded_at is None or now - self._loaded_at > FULL_RELOAD_SECONDS
            # SQLite commits one writer at a time, in sequence order: no look-back needed.
            lookback = CATCH_UP_LOOKBACK if self.db.dialect == "postgresql" else 0
            after = 0 if reload else max(0, self._high_seq - lookback)
        rows = conn.execute(_SINCE, {"after": after}).all()
        with self._lock:
            if reload:
                self._by_length, self._seen, self._high_seq = {}, set(), 0
                self._loaded_at = now
            for row in rows:
                if row.term not in self._seen:
                    self._seen.add(row.term)
                    self._by_length.setdefault(len(row.term), []).append(row.term)
                self._high_seq = max(self._high_seq, row.seq)
