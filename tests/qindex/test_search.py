"""Search through the HTTP API: indexed from Qdrive's events, filtered by Qonsent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from anarq.kernel.bus import Event
from anarq.kernel.guard import Actor, Context
from anarq.kernel.node import Node
from anarq.kernel.settings import Settings
from anarq.kernel.tables import outbox
from anarq.qindex import tables
from anarq.qindex.models import DocumentIn
from anarq.qindex.service import QindexService, SearchQuery
from tests.qdrive.test_drive import Person

REPORT = (
    "Quarterly report for the volcano observatory.\n"
    "Seismic activity rose in March; the summit crater glowed at night.\n"
)


@pytest.fixture
async def alice(http: httpx.AsyncClient) -> Person:
    return await Person(http, "alice").register()


@pytest.fixture
async def bob(http: httpx.AsyncClient) -> Person:
    return await Person(http, "bob").register()


@pytest.fixture
async def carol(http: httpx.AsyncClient) -> Person:
    return await Person(http, "carol").register()


async def store_text(person: Person, path: str, text: str) -> dict[str, Any]:
    response = await person.send(
        "PUT",
        "/qdrive/files",
        params={"path": path},
        content=text.encode(),
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def search(person: Person, q: str, **params: Any) -> dict[str, Any]:
    response = await person.send("GET", "/qindex/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def found(person: Person, q: str, **params: Any) -> list[str]:
    return [hit["resource"] for hit in (await search(person, q, **params))["hits"]]


def index(node: Node, *documents: DocumentIn) -> None:
    service: QindexService = node.service("qindex")
    with node.kernel.db.write() as tx:
        service.index_documents(tx, list(documents))


def doc(owner: str, n: int | str, title: str, text: str = "", **fields: Any) -> DocumentIn:
    values: dict[str, Any] = {
        "resource": f"qtest:note:{n}",
        "module": "qtest",
        "type": "note",
        "owner": owner,
        "title": title,
        "text": text,
        "updated_at": datetime(2025, 1, 1, tzinfo=UTC),
        **fields,
    }
    return DocumentIn(**values)


# From a Qdrive upload to a search hit ------------------------------------------------------


async def test_an_uploaded_text_file_is_found_with_a_snippet(node: Node, alice: Person) -> None:
    info = await store_text(alice, "/work/report.txt", REPORT)
    await node.kernel.bus.run_pending()

    result = await search(alice, "seismic")
    [hit] = result["hits"]
    assert hit["resource"] == f"qdrive:file:{info['id']}"
    assert hit["module"] == "qdrive" and hit["type"] == "file" and hit["owner"] == alice.did
    assert hit["title"] == "/work/report.txt"
    assert "<mark>Seismic</mark> activity" in hit["snippet"]
    assert hit["meta"]["media_type"] == "text/plain" and hit["score"] > 0
    assert result["next_cursor"] is None
    # The path is searchable too.
    assert await found(alice, "report") == [hit["resource"]]


async def test_strangers_find_nothing_and_a_grantee_finds_what_was_shared(
    node: Node, alice: Person, bob: Person, carol: Person
) -> None:
    info = await store_text(alice, "/work/report.txt", REPORT)
    await node.kernel.bus.run_pending()
    assert await found(bob, "volcano") == []

    shared = await alice.send(
        "POST", f"/qdrive/files/{info['id']}/shares", json={"grantee": bob.did}
    )
    assert shared.status_code == 201, shared.text
    assert await found(bob, "volcano") == [f"qdrive:file:{info['id']}"]
    assert await found(carol, "volcano") == []
    anonymous = await alice.http.get("/qindex/search", params={"q": "volcano"})
    assert anonymous.status_code == 200 and anonymous.json()["hits"] == []

    unshared = await alice.send("DELETE", f"/qdrive/files/{info['id']}/shares/{bob.did}")
    assert unshared.status_code == 204
    assert await found(bob, "volcano") == []


async def test_a_purged_file_is_no_longer_found(node: Node, alice: Person) -> None:
    info = await store_text(alice, "/work/report.txt", REPORT)
    await node.kernel.bus.run_pending()
    assert await found(alice, "crater") != []

    purged = await alice.send("DELETE", f"/qdrive/files/{info['id']}", params={"forever": "true"})
    assert purged.status_code == 204
    await node.kernel.bus.run_pending()
    assert await found(alice, "crater") == []
    assert await found(alice, "report") == []


async def test_moves_and_the_trash_follow_the_drive(node: Node, alice: Person) -> None:
    info = await store_text(alice, "/work/report.txt", REPORT)
    await node.kernel.bus.run_pending()
    moved = await alice.send(
        "POST", "/qdrive/move", json={"source": "/work", "target": "/archive/2026"}
    )
    assert moved.status_code == 200, moved.text
    await node.kernel.bus.run_pending()
    [hit] = (await search(alice, "crater"))["hits"]
    assert hit["title"] == "/archive/2026/report.txt"

    await alice.send("DELETE", f"/qdrive/files/{info['id']}")
    await node.kernel.bus.run_pending()
    assert await found(alice, "crater") == []
    await alice.send("POST", f"/qdrive/files/{info['id']}/restore")
    await node.kernel.bus.run_pending()
    assert await found(alice, "crater") == [f"qdrive:file:{info['id']}"]


async def test_a_new_version_replaces_the_indexed_text(node: Node, alice: Person) -> None:
    await store_text(alice, "/notes.txt", "first draft about penguins")
    response = await alice.send(
        "PUT",
        "/qdrive/files",
        params={"path": "/notes.txt", "overwrite": "true"},
        content=b"second draft about walruses",
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 201
    await node.kernel.bus.run_pending()
    assert await found(alice, "penguins") == []
    assert len(await found(alice, "walruses")) == 1


async def test_snippets_are_escaped_text_with_marks(node: Node, alice: Person) -> None:
    await store_text(alice, "/page.html.txt", "<script>alert(1)</script> & the secretword here")
    await node.kernel.bus.run_pending()
    [hit] = (await search(alice, "secretword"))["hits"]
    assert "&lt;script&gt;" in hit["snippet"] and "<script>" not in hit["snippet"]
    assert "&amp;" in hit["snippet"] and "<mark>secretword</mark>" in hit["snippet"]


async def test_binary_files_are_found_by_name_only(node: Node, alice: Person) -> None:
    response = await alice.send(
        "PUT", "/qdrive/files", params={"path": "/blob/zebra.bin"}, content=b"giraffe \x00\x01"
    )
    assert response.status_code == 201
    await node.kernel.bus.run_pending()
    assert len(await found(alice, "zebra")) == 1
    assert await found(alice, "giraffe") == []


# Events, upserts and restarts -------------------------------------------------------------


def stored_events(node: Node) -> list[Event]:
    with node.kernel.db.read() as conn:
        rows = conn.execute(
            select(outbox.c.envelope).where(outbox.c.type == "qdrive.file.stored")
        ).scalars()
        return [Event.from_envelope(envelope) for envelope in rows]


def document_count(node: Node) -> int:
    with node.kernel.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.documents)).scalar_one())


def term_docs(node: Node, term: str) -> int | None:
    with node.kernel.db.read() as conn:
        found: int | None = conn.execute(
            select(tables.terms.c.docs).where(tables.terms.c.term == term)
        ).scalar_one_or_none()
        return found


async def test_the_same_event_twice_makes_one_document(node: Node, alice: Person) -> None:
    await store_text(alice, "/work/report.txt", REPORT)
    await node.kernel.bus.run_pending()
    [event] = stored_events(node)
    subscription = node.kernel.bus.subscriptions["qindex.on_file_stored"]

    # Redelivered through the bus: recognised as consumed.
    assert node.kernel.bus.deliver(subscription, event) is False
    # Handled again regardless (say, after a lost consumed record): an upsert.
    service: QindexService = node.service("qindex")
    for _ in range(2):
        with node.kernel.db.write() as tx:
            service.on_file_stored(tx, event)

    assert document_count(node) == 1
    assert term_docs(node, "seismic") == 1
    assert len(await found(alice, "seismic")) == 1


async def test_the_index_survives_a_restart(node: Node, alice: Person, settings: Settings) -> None:
    await store_text(alice, "/work/report.txt", REPORT)
    await node.kernel.bus.run_pending()

    again = Node.open(settings)
    try:
        result = again.service("qindex").search(
            Context(actor=Actor(id=alice.did, kind="identity")), SearchQuery(q="crater")
        )
        assert [hit.title for hit in result.hits] == ["/work/report.txt"]
        assert again.kernel.bus.subscriptions.keys() >= {"qindex.on_file_stored"}
    finally:
        again.close()
    assert document_count(node) == 1


async def test_file_contents_stay_out_when_the_operator_says_so(
    node: Node, alice: Person, settings: Settings
) -> None:
    names_only = Node.open(settings.model_copy(update={"index_file_contents": False}))
    try:
        ctx = Context(actor=Actor(id=alice.did, kind="identity"))
        names_only.service("qdrive").put(
            ctx, "/diary.txt", b"my private thoughts on kumquats", media_type="text/plain"
        )
        await names_only.kernel.bus.run_pending()
        search = names_only.service("qindex").search
        assert [hit.title for hit in search(ctx, SearchQuery(q="diary")).hits] == ["/diary.txt"]
        assert search(ctx, SearchQuery(q="kumquats")).hits == []
    finally:
        await names_only.kernel.bus.stop()
        names_only.close()


# Ranking, typos, prefixes -----------------------------------------------------------------


async def test_more_and_titled_mentions_rank_higher(node: Node, alice: Person) -> None:
    index(
        node,
        doc(alice.did, 1, "Garden diary", "We planted beans and one tomato by the fence."),
        doc(alice.did, 2, "Tomato harvest", "Tomato after tomato: the tomato plants thrived."),
        doc(alice.did, 3, "Fence repairs", "Nothing about vegetables at all."),
    )
    result = await search(alice, "tomato")
    assert [hit["resource"] for hit in result["hits"]] == ["qtest:note:2", "qtest:note:1"]
    assert result["hits"][0]["score"] > result["hits"][1]["score"]


async def test_a_typo_still_finds_the_word(node: Node, alice: Person) -> None:
    index(
        node,
        doc(alice.did, 1, "Biology notes", "Photosynthesis happens in the leaves."),
        doc(alice.did, 2, "Kitchen", "A recipe for bread."),
    )
    assert await found(alice, "photosynthsis") == ["qtest:note:1"]  # one letter dropped
    assert await found(alice, "photosinthesys") == ["qtest:note:1"]  # two letters wrong
    assert await found(alice, "recipe leafs") == []  # both words must match
    assert await found(alice, "leaves bread") == []
    assert await found(alice, "biolgoy") == ["qtest:note:1"]  # a transposition
    # Words of three letters or fewer get no typo allowance.
    assert await found(alice, "bred") == ["qtest:note:2"]
    assert await found(alice, "fro") == []


async def test_the_last_word_matches_as_a_prefix(node: Node, alice: Person) -> None:
    index(
        node,
        doc(alice.did, 1, "Trip", "Packing list for the mountains."),
        doc(alice.did, 2, "Moon", "Mountaineering is not on the list."),
    )
    assert sorted(await found(alice, "mount")) == ["qtest:note:1", "qtest:note:2"]
    assert await found(alice, "mount packing") == []  # only the last word is a prefix
    assert await found(alice, "packing mount") == ["qtest:note:1"]


async def test_accents_and_case_do_not_matter(node: Node, alice: Person) -> None:
    index(node, doc(alice.did, 1, "Café crème", "Éclair recipes from Zürich"))
    assert await found(alice, "CAFE eclair") == ["qtest:note:1"]
    assert await found(alice, "zurich") == ["qtest:note:1"]


# Filters and pages ------------------------------------------------------------------------


async def test_filters_narrow_by_module_type_owner_and_date(
    node: Node, alice: Person, bob: Person
) -> None:
    day = datetime(2025, 3, 1, tzinfo=UTC)
    index(
        node,
        doc(alice.did, 1, "Lantern a", updated_at=day),
        doc(alice.did, 2, "Lantern b", type="memo", updated_at=day + timedelta(days=10)),
        doc(alice.did, 3, "Lantern c", module="qother", updated_at=day + timedelta(days=20)),
        doc(bob.did, 4, "Lantern d", updated_at=day),
    )
    assert len(await found(alice, "lantern")) == 3
    assert sorted(await found(alice, "lantern", module="qtest")) == ["qtest:note:1", "qtest:note:2"]
    assert await found(alice, "lantern", type="memo") == ["qtest:note:2"]
    assert await found(alice, "lantern", owner=bob.did) == []
    assert sorted(await found(alice, "lantern", since="2025-03-05")) == [
        "qtest:note:2",
        "qtest:note:3",
    ]
    until = (day + timedelta(days=15)).isoformat()
    assert sorted(await found(alice, "lantern", since="2025-03-05T00:00:00Z", until=until)) == [
        "qtest:note:2"
    ]


async def test_the_cursor_walks_every_hit_once(node: Node, alice: Person) -> None:
    # Same score for several (identical texts), so ties must break cleanly too.
    index(
        node,
        *(doc(alice.did, n, f"Ledger {n}", "ledger " * (1 + n % 4)) for n in range(23)),
    )
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        result = await search(alice, "ledger", **params)
        seen += [hit["resource"] for hit in result["hits"]]
        pages += 1
        cursor = result["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert sorted(seen) == sorted(f"qtest:note:{n}" for n in range(23))
    assert len(seen) == len(set(seen))


# Hostile and bad input --------------------------------------------------------------------


@pytest.mark.parametrize(
    "q",
    [
        '"',
        '"unterminated',
        "*",
        "lan*",
        "(",
        "a)",
        "NEAR",
        "NEAR(a b)",
        "a AND b",
        "AND",
        "OR NOT",
        "title:lantern",
        "^lantern",
        "-lantern",
        "' OR 1=1 --",
        "lantern:*",
        "a & b | !c",
        "\\",
        "😀 lantern",
        "x" * 200,
        "ﬁle ½",
    ],
)
async def test_hostile_queries_are_answered_or_refused_never_crash(
    node: Node, alice: Person, q: str
) -> None:
    index(node, doc(alice.did, 1, "Lantern", "A lantern and a file."))
    response = await alice.send("GET", "/qindex/search", params={"q": q})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "request.invalid"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"q": ""}, 422),
        ({"q": "x" * 257}, 422),
        ({"q": "   "}, 400),
        ({"q": "lantern", "cursor": "not-a-cursor"}, 400),
        ({"q": "lantern", "since": "yesterday"}, 422),
        ({"q": "lantern", "since": "2025-02-01", "until": "2025-01-01"}, 400),
        ({"q": "lantern", "limit": 0}, 422),
        ({"q": "lantern", "limit": 51}, 422),
        ({"q": " ".join(f"w{n}" for n in range(11))}, 400),
    ],
)
async def test_bad_search_input_is_a_clear_4xx(
    alice: Person, params: dict[str, Any], status: int
) -> None:
    response = await alice.send("GET", "/qindex/search", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_cursor_belongs_to_its_own_search(node: Node, alice: Person) -> None:
    index(node, *(doc(alice.did, n, f"Lantern {n}") for n in range(3)))
    first = await search(alice, "lantern", limit=1)
    assert first["next_cursor"]
    other = await alice.send(
        "GET", "/qindex/search", params={"q": "lanterns", "cursor": first["next_cursor"]}
    )
    assert other.status_code == 400


async def test_a_reader_with_many_grants_still_gets_a_filter(node: Node, alice: Person) -> None:
    from anarq.qindex.access import INLINE_EXACT_FROM, Reach

    index(node, doc(alice.did, 1, "Lantern"), doc(alice.did, 2, "Lantern"))
    granted = frozenset(f"qtest:note:{n}" for n in range(2, INLINE_EXACT_FROM + 50))
    reach = Reach(owner="did:key:zSomeoneElse", exact=granted)
    d = tables.documents
    with node.kernel.db.read() as conn:
        rows = conn.execute(select(d.c.resource).where(reach.where(d.c.resource, d.c.owner)))
        assert rows.scalars().all() == ["qtest:note:2"]


async def test_semantic_search_is_off_unless_the_operator_turns_it_on(
    node: Node, alice: Person
) -> None:
    for mode in ("semantic", "hybrid"):
        refused = await alice.send("GET", "/qindex/search", params={"q": "lantern", "mode": mode})
        assert refused.status_code == 409
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "qindex.semantic_off"
    unknown = await alice.send("GET", "/qindex/search", params={"q": "lantern", "mode": "vibes"})
    assert unknown.status_code in (400, 422)
    assert unknown.headers["content-type"].startswith("application/problem+json")
    status = await alice.send("GET", "/qindex/semantic")
    assert status.status_code == 200 and status.json()["enabled"] is False
