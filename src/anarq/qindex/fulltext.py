"""The full-text engines: SQLite FTS5 (embedded) and PostgreSQL tsvector + GIN (cluster).

Both receive terms already made by `analysis`, never user text: FTS5 gets them as
space-separated words in the `qindex_fts` table (title and body columns, bm25 ranking with
the title weighing more); PostgreSQL gets a tsvector literal built here (title terms at
weight A, body terms at weight B, positions kept for cover-density ranking) and a tsquery
literal. A term is letters and digits only, so no quoting can be escaped.

PostgreSQL ranks a match by reading its whole tsvector (about 8 µs each), so a query
matching tens of thousands of documents cannot rank them all in time. It ranks at most
`TS_CANDIDATES_MAX` candidates, chosen through the GIN indexes alone, in tiers: first
the documents that hold every query word *prominently* — in the title, or at least twice
(`lead_vector`, a small stripped tsvector with its own GIN index) — then, when the last
word also matches as a prefix, those holding every word whole (`plan` before `planet`),
then the other matches. A document outside the first tier mentions each matched term
once, in its body, so it scores below nearly every first-tier document anyway: cutting
the later tiers first loses the least. Each tier offers its first candidates in storage
order, and a document in several tiers counts in its best.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    ColumnElement,
    Float,
    MetaData,
    Select,
    Table,
    bindparam,
    cast,
    column,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    table,
    union_all,
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
# A term is prominent in a document (in its `lead_vector`) when it is in the title or
# holds at least this many positions.
TS_LEAD_MIN_POSITIONS = 2
# Matches ranked by ts_rank_cd per search at most (about 10 ms of ranking); a search
# matching more ranks the first tier first (see the module docstring).
TS_CANDIDATES_MAX = 1000


@dataclass(frozen=True)
class WordMatch:
    """One query word: the document must hold one of `exact` (the word as typed first,
    then its near terms), or a term starting with `prefix`."""

    exact: tuple[str, ...]
    prefix: str | None = None


class FullText(Protocol):
    # The table document rows are written through, and the values of its columns that
    # belong to this engine (a document is written once, with them).
    documents: Table

    def columns(self, doc: Analyzed) -> dict[str, str]: ...

    def write(self, tx: Connection, rows: Sequence[tuple[int, Analyzed]]) -> None: ...

    def delete(self, tx: Connection, seqs: Sequence[int]) -> None: ...

    def ranked(
        self, words: Sequence[WordMatch], where: Sequence[ColumnElement[bool]]
    ) -> Select[tuple[int, float]]:
        """`(seq, score)` of documents matching all `words` and every clause of `where`
        (on `qindex_documents` columns), higher scores better."""
        ...


def _checked(term: str) -> str:
    assert term.isalnum(), f"a term is letters and digits only: {term!r}"
    return term


class Fts5(FullText):
    _fts = table(tables.FULL_TEXT_TABLE, column("rowid"), column("title"), column("body"))
    _delete = delete(_fts).where(_fts.c.rowid == bindparam("b_seq"))
    documents = tables.documents

    def columns(self, doc: Analyzed) -> dict[str, str]:
        return {}  # FTS5 keeps its own table, written by `write`

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

    def ranked(
        self, words: Sequence[WordMatch], where: Sequence[ColumnElement[bool]]
    ) -> Select[tuple[int, float]]:
        """Every match, ranked by bm25: FTS5 ranks from its own index, fast enough."""
        fts: ColumnElement[Any] = literal_column(tables.FULL_TEXT_TABLE)
        score = -func.bm25(fts, FTS_TITLE_WEIGHT, FTS_BODY_WEIGHT, type_=Float)
        d = tables.documents
        return (
            select(d.c.seq, score.label("score"))
            .select_from(self._fts.join(d, d.c.seq == self._fts.c.rowid))
            .where(fts.op("MATCH")(bindparam("match", fts5_query(words))), *where)
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
    # `qindex_documents` with the vector columns migrations add on PostgreSQL only.
    documents = tables.documents.to_metadata(MetaData())
    documents.append_column(Column(tables.FULL_TEXT_COLUMN, TSVECTOR, nullable=False))
    documents.append_column(Column(tables.LEAD_TEXT_COLUMN, TSVECTOR, nullable=False))
    # Named by text in queries, so that they join the `qindex_documents` of the FROM.
    _vector: ColumnElement[Any] = literal_column(
        f"{tables.documents.name}.{tables.FULL_TEXT_COLUMN}"
    )
    _lead: ColumnElement[Any] = literal_column(f"{tables.documents.name}.{tables.LEAD_TEXT_COLUMN}")

    def __init__(self, candidates_max: int = TS_CANDIDATES_MAX) -> None:
        assert candidates_max >= 1
        self.candidates_max = candidates_max

    def columns(self, doc: Analyzed) -> dict[str, str]:
        return {
            tables.FULL_TEXT_COLUMN: tsvector(doc),
            tables.LEAD_TEXT_COLUMN: lead_tsvector(doc),
        }

    def write(self, tx: Connection, rows: Sequence[tuple[int, Analyzed]]) -> None:
        return None  # the vectors went in with their document row

    def delete(self, tx: Connection, seqs: Sequence[int]) -> None:
        return None  # the vectors go with their document row

    def ranked(
        self, words: Sequence[WordMatch], where: Sequence[ColumnElement[bool]]
    ) -> Select[tuple[int, float]]:
        """At most `candidates_max` matches, prominent ones first, ranked by ts_rank_cd.

        Each tier is a bitmap scan of a GIN index (ANDed with the B-tree indexes of
        `where` where they apply) cut by LIMIT, so no match past the cut is read, and
        the cut is the same on every page (ties broken by `seq`).
        """
        # Written into the statement: a tsquery bound as a parameter lets psycopg prepare
        # the statement after a few runs, and PostgreSQL's generic plan for `@@ $1`
        # guesses a rare word (a plan ten times slower for common ones). Terms are
        # letters and digits only, and SQLAlchemy quotes the literal.
        query = cast(bindparam("match", tsquery(words), literal_execute=True), TSQUERY)
        d = tables.documents
        matching = self._vector.op("@@")(query)
        prominent = self._lead.op("@@")(query)
        tiers = [prominent]
        if any(word.prefix is not None for word in words):
            # The words (or their near terms) as whole words, not only as a prefix.
            whole = tsquery([WordMatch(word.exact) for word in words])
            whole_words = cast(bindparam("whole", whole, literal_execute=True), TSQUERY)
            tiers.append(self._vector.op("@@")(whole_words))
        tiers.append(matching)
        # Each tier's first `candidates_max` in storage order; a document in several
        # counts in its best. No tier tests what its GIN bitmap already decided, so none
        # reads a tsvector.
        every = union_all(
            *(
                select(d.c.seq, literal(n).label("tier"))
                .where(tier, *where)
                .limit(self.candidates_max)
                for n, tier in enumerate(tiers)
            )
        ).subquery("tiers")
        best = func.min(every.c.tier)
        candidates = (
            select(every.c.seq)
            .group_by(every.c.seq)
            .order_by(best, every.c.seq)
            .limit(self.candidates_max)
            .subquery("candidates")
        )
        weights: ColumnElement[Any] = literal_column(f"'{TS_WEIGHTS}'::float4[]")
        # ts_rank_cd gives a float4, which psycopg reads back rounded: as float8, the score
        # a cursor carries compares exactly with the one the next page computes.
        score: ColumnElement[float] = cast(
            func.ts_rank_cd(weights, self._vector, query, TS_NORMALIZATION), DOUBLE_PRECISION
        )
        return select(d.c.seq, score.label("score")).join(candidates, candidates.c.seq == d.c.seq)


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


def lead_tsvector(doc: Analyzed) -> str:
    """The stripped tsvector literal of a document's prominent terms: those of its title
    and those it holds at least `TS_LEAD_MIN_POSITIONS` times (`'plan' 'mars'`)."""
    counts = Counter(doc.title)
    counts.update(doc.body)
    prominent = set(doc.title) | {
        term
        for term, held in counts.items()
        if min(held, TS_POSITIONS_PER_TERM) >= TS_LEAD_MIN_POSITIONS
    }
    return " ".join(f"'{_checked(term)}'" for term in sorted(prominent))


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
