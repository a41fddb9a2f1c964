"""The full-text engines: SQLite FTS5 (embedded) and PostgreSQL tsvector + GIN (cluster).

Both receive terms already made by `analysis`, never user text: FTS5 gets them as
space-separated words in the `qindex_fts` table (title and body columns, bm25 ranking with
the title weighing more); PostgreSQL gets a tsvector literal built here (title terms at
weight A, body terms at weight B, positions kept for cover-density ranking) and a tsquery
literal. A term is letters and digits only, so no quoting can be escaped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    bindparam,
    cast,
    column,
    delete,
    func,
    insert,
    literal_column,
    select,
    table,
    update,
)
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, TSQUERY, TSVECTOR
from sqlalchemy.engine import Connection

from anarq.qindex import tables
from anarq.qindex.analysis import Analyzed

# bm25 weights of the FTS5 columns (title, body).
FTS_TITLE_WEIGHT = 10.0
FTS_BODY_WEIGHT = 1.0
# ts_rank_cd weights for D, C, B, A: title terms are A, body terms B.
TS_WEIGHTS = "{0.1, 0.2, 0.4, 1.0}"
# ts_rank_cd normalization 1: divide by 1 + log(document length), as bm25 also damps
# long documents.
TS_NORMALIZATION = 1
# PostgreSQL keeps at most this many positions of one lexeme.
TS_POSITIONS_PER_TERM = 255


@dataclass(frozen=True)
class WordMatch:
    """One query word: the document must hold one of `exact`, or a term starting with
    `prefix`."""

    exact: tuple[str, ...]
    prefix: str | None = None


class FullText(Protocol):
    def write(self, tx: Connection, rows: Sequence[tuple[int, Analyzed]]) -> None: ...

    def delete(self, tx: Connection, seqs: Sequence[int]) -> None: ...

    def ranked(self, words: Sequence[WordMatch]) -> Select[tuple[int, float]]:
        """`(seq, score)` of every document matching all `words`, higher scores better;
        further WHERE clauses may name `qindex_documents` columns."""
        ...


def _checked(term: str) -> str:
    assert term.isalnum(), f"a term is letters and digits only: {term!r}"
    return term


class Fts5(FullText):
    _fts = table(tables.FULL_TEXT_TABLE, column("rowid"), column("title"), column("body"))
    _delete = delete(_fts).where(_fts.c.rowid == bindparam("b_seq"))

    def write(self, tx: Connection, rows: Sequence[tuple[int, Analyzed]]) -> None:
        if rows:
            tx.execute(
                insert(self._fts),
                [
                    {"rowid": seq, "title": " ".join(doc.title), "body": " ".join(doc.body)}
                    for seq, doc in rows
                ],
            )

    def delete(self, tx: Connection, seqs: Sequence[int]) -> None:
        if seqs:
            tx.execute(self._delete, [{"b_seq": seq} for seq in seqs])

    def ranked(self, words: Sequence[WordMatch]) -> Select[tuple[int, float]]:
        fts: ColumnElement[Any] = literal_column(tables.FULL_TEXT_TABLE)
        score = -func.bm25(fts, FTS_TITLE_WEIGHT, FTS_BODY_WEIGHT, type_=Float)
        d = tables.documents
        return (
            select(d.c.seq, score.label("score"))
            .select_from(self._fts.join(d, d.c.seq == self._fts.c.rowid))
            .where(fts.op("MATCH")(bindparam("match", fts5_query(words))))
        )


def fts5_query(words: Sequence[WordMatch]) -> str:
    """`("plan" OR "plann" OR "plan"*) AND ("mars")`: every word, any of its forms."""
    groups = []
    for word in words:
        forms = [f'"{_checked(term)}"' for term in word.exact]
        if word.prefix is not None:
            forms.append(f'"{_checked(word.prefix)}"*')
        groups.append("(" + " OR ".join(forms) + ")")
    return " AND ".join(groups)


class Tsvector(FullText):
    _vectors = table(tables.documents.name, column("seq"), column(tables.FULL_TEXT_COLUMN))
    # Named by text in queries, so that it joins the `qindex_documents` of the caller's FROM.
    _vector: ColumnElement[Any] = literal_column(
        f"{tables.documents.name}.{tables.FULL_TEXT_COLUMN}"
    )
    _store = (
        update(_vectors)
        .where(_vectors.c.seq == bindparam("b_seq"))
        .values({tables.FULL_TEXT_COLUMN: cast(bindparam("vector"), TSVECTOR)})
    )

    def write(self, tx: Connection, rows: Sequence[tuple[int, Analyzed]]) -> None:
        if rows:
            tx.execute(self._store, [{"b_seq": seq, "vector": tsvector(doc)} for seq, doc in rows])

    def delete(self, tx: Connection, seqs: Sequence[int]) -> None:
        return None  # the vector goes with its document row

    def ranked(self, words: Sequence[WordMatch]) -> Select[tuple[int, float]]:
        query = cast(bindparam("match", tsquery(words)), TSQUERY)
        weights: ColumnElement[Any] = literal_column(f"'{TS_WEIGHTS}'::float4[]")
        # ts_rank_cd gives a float4, which psycopg reads back rounded: as float8, the score
        # a cursor carries compares exactly with the one the next page computes.
        score: ColumnElement[float] = cast(
            func.ts_rank_cd(weights, self._vector, query, TS_NORMALIZATION), DOUBLE_PRECISION
        )
        d = tables.documents
        return select(d.c.seq, score.label("score")).where(self._vector.op("@@")(query))


def tsvector(doc: Analyzed) -> str:
    """The tsvector literal of a document: `'plan':1A,7B 'mars':2A`."""
    positions: dict[str, list[str]] = defaultdict(list)
    for position, term in enumerate(doc.title, start=1):
        positions[term].append(f"{position}A")
    for position, term in enumerate(doc.body, start=len(doc.title) + 1):
        positions[term].append(f"{position}B")
    return " ".join(
        f"'{_checked(term)}':{','.join(held[:TS_POSITIONS_PER_TERM])}"
        for term, held in positions.items()
    )


def tsquery(words: Sequence[WordMatch]) -> str:
    """`('plan' | 'plann' | 'plan':*) & ('mars')`: every word, any of its forms."""
    groups = []
    for word in words:
        forms = [f"'{_checked(term)}'" for term in word.exact]
        if word.prefix is not None:
            forms.append(f"'{_checked(word.prefix)}':*")
        groups.append("(" + " | ".join(forms) + ")")
    return " & ".join(groups)


def full_text_for(dialect: str) -> FullText:
    return Fts5() if dialect == "sqlite" else Tsvector()
