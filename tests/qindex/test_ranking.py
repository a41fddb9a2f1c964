"""Ranking with a bounded candidate set (PostgreSQL), and what must hold on both backends.

On PostgreSQL a search ranks at most `candidates_max` of its matches, the documents
holding the words prominently first; these tests shrink the cap to a few documents so
that every search here matches more than it. Embedded (FTS5) ranks every match, and the
same expectations hold there.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, literal_column, select, text

from anarq.kernel.db import Database
from anarq.kernel.guard import Actor, Context
from anarq.kernel.node import Node
from anarq.qindex import tables
from anarq.qindex.analysis import Analyzed
from anarq.qindex.fulltext import Tsvector, lead_tsvector, tsvector
from anarq.qindex.models import DocumentIn
from anarq.qindex.service import QindexService, SearchQuery
from tests.conftest import PostgresDatabases

ALICE = "did:key:zAliceRanking"
BOB = "did:key:zBobRanking"
CAP = 4
FILLER = "a plain line of words about the garden and the weather today"


@pytest.fixture
def qindex(node: Node) -> Iterator[QindexService]:
    service: QindexService = node.service("qindex")
    if isinstance(service.full_text, Tsvector):
        saved = service.full_text.candidates_max
        service.full_text.candidates_max = CAP
        yield service
        service.full_text.candidates_max = saved
    else:
        yield service


def index(node: Node, service: QindexService, *documents: DocumentIn) -> None:
    with node.kernel.db.write() as tx:
        service.index_documents(tx, list(documents))


def doc(name: str, title: str, text: str, owner: str = ALICE) -> DocumentIn:
    return DocumentIn(
        resource=f"qtest:note:{name}",
        module="qtest",
        type="note",
        owner=owner,
        title=title,
        text=text,
        updated_at=datetime(2025, 1, 1, tzinfo=UTC),
    )


def found(service: QindexService, q: str, who: str = ALICE, type: str | None = None) -> list[str]:
    ctx = Context(actor=Actor(id=who, kind="identity"))
    return [hit.resource for hit in service.search(ctx, SearchQuery(q=q, type=type)).hits]


def test_prominent_terms_are_those_of_the_title_and_those_held_twice() -> None:
    analyzed = Analyzed.of("Tomato harvest", "Beans, beans and one tomato; corn.")
    assert lead_tsvector(analyzed) == "'beans' 'harvest' 'tomato'"
    assert lead_tsvector(Analyzed.of("", "")) == ""


def test_more_matches_than_candidates_still_rank_the_best_first(
    node: Node, qindex: QindexService
) -> None:
    # Stored first, so a cut in storage order alone would keep only these.
    plain = [doc(f"plain{n}", f"Note {n}", f"{FILLER} tomato") for n in range(3 * CAP)]
    index(node, qindex, *plain)
    index(
        node,
        qindex,
        doc("twice", "Kitchen", f"tomato soup, then {FILLER}, tomato salad"),
        doc("titled", "Tomato harvest", f"tomato after tomato: {FILLER}"),
    )
    hits = found(qindex, "tomato")
    assert hits[:2] == ["qtest:note:titled", "qtest:note:twice"]


def test_a_document_holding_every_word_is_found_past_many_holding_one_prominently(
    node: Node, qindex: QindexService
) -> None:
    index(
        node,
        qindex,
        *(doc(f"mars{n}", "Mars mars", f"mars {FILLER} mars") for n in range(3 * CAP)),
        doc("both", "Rover", f"the rover on mars, {FILLER}"),
    )
    assert found(qindex, "mars rover") == ["qtest:note:both"]
    assert found(qindex, "rover mars") == ["qtest:note:both"]


def test_the_whole_word_outlasts_the_cut_before_words_it_is_a_prefix_of(
    node: Node, qindex: QindexService
) -> None:
    index(node, qindex, *(doc(f"planet{n}", f"Note {n}", f"{FILLER} planet") for n in range(12)))
    index(node, qindex, doc("plan", "Note", f"{FILLER} plan"))
    assert "qtest:note:plan" in found(qindex, "plan")


def test_documents_the_caller_may_not_read_take_no_candidate_place(
    node: Node, qindex: QindexService
) -> None:
    index(
        node,
        qindex,
        *(doc(f"bob{n}", "Lantern lantern", "lantern", owner=BOB) for n in range(3 * CAP)),
    )
    index(node, qindex, doc("mine1", "Note", f"{FILLER} lantern"), doc("mine2", "Note", "lantern"))
    assert sorted(found(qindex, "lantern")) == ["qtest:note:mine1", "qtest:note:mine2"]
    assert all(hit.startswith("qtest:note:bob") for hit in found(qindex, "lantern", who=BOB))
    assert found(qindex, "lantern", type="memo") == []


def test_pages_walk_the_ranked_candidates_once_each(node: Node, qindex: QindexService) -> None:
    index(
        node, qindex, *(doc(f"n{n}", f"Ledger {n % 3}", "ledger " * (1 + n % 4)) for n in range(10))
    )
    ctx = Context(actor=Actor(id=ALICE, kind="identity"))
    seen: list[str] = []
    cursor = None
    while True:
        page = qindex.search(ctx, SearchQuery(q="ledger", limit=3, cursor=cursor))
        seen += [hit.resource for hit in page.hits]
        scores = [hit.score for hit in page.hits]
        assert scores == sorted(scores, reverse=True)
        cursor = page.next_cursor
        if cursor is None:
            break
    capped = isinstance(qindex.full_text, Tsvector)
    assert len(seen) == (CAP if capped else 10)
    assert len(set(seen)) == len(seen)


def test_migration_0026_fills_prominent_terms_as_indexing_does(
    postgres: PostgresDatabases,
) -> None:
    name = postgres.empty()
    database = Database(postgres.url_for(name), pool_size=1)
    try:
        database.upgrade("0018")
        analyzed = [
            Analyzed.of("Tomato harvest", "Beans, beans and one tomato; corn."),
            Analyzed.of("", ""),
            Analyzed.of("Plain", "words once each"),
        ]
        d = tables.documents
        with database.write() as tx:
            for n, doc_terms in enumerate(analyzed):
                tx.execute(
                    insert(d).values(
                        resource=f"qtest:note:{n}",
                        module="qtest",
                        type="note",
                        owner=ALICE,
                        title=" ".join(doc_terms.title),
                        body=" ".join(doc_terms.body),
                        meta={},
                        updated_at=datetime(2025, 1, 1, tzinfo=UTC),
                        indexed_at=datetime(2025, 1, 1, tzinfo=UTC),
                    )
                )
                tx.execute(
                    text(
                        "UPDATE qindex_documents SET search_vector = CAST(:v AS tsvector) "
                        "WHERE resource = :r"
                    ),
                    {"v": tsvector(doc_terms), "r": f"qtest:note:{n}"},
                )
        database.upgrade()
        with database.read() as conn:
            filled = conn.execute(
                select(d.c.resource, literal_column("lead_vector::text")).order_by(d.c.resource)
            ).all()
        with database.read() as conn:
            expected = [
                conn.execute(
                    text("SELECT CAST(:v AS tsvector)::text"), {"v": lead_tsvector(a)}
                ).scalar_one()
                for a in analyzed
            ]
        assert [row[1] for row in filled] == expected
    finally:
        database.close()
        postgres.drop(name)
