"""Mutable pointers through the HTTP API: versions, history, listing, and who may read."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from anarq.kernel.blobs.cid import cid_for_bytes
from anarq.kernel.node import Node
from anarq.kernel.tables import outbox
from anarq.qindex.pointers import namespace_prefix, pointer_resource
from tests.qdrive.test_drive import Person

CID_1, CID_2, CID_3 = (cid_for_bytes(f"content {n}".encode()) for n in (1, 2, 3))


@pytest.fixture
async def alice(http: httpx.AsyncClient) -> Person:
    return await Person(http, "alice").register()


@pytest.fixture
async def bob(http: httpx.AsyncClient) -> Person:
    return await Person(http, "bob").register()


async def put(person: Person, key: str, cid: str, **body: Any) -> httpx.Response:
    return await person.send("PUT", f"/qindex/pointers/{key}", json={"cid": cid, **body})


async def grant(owner: Person, grantee: str, resource: str) -> None:
    response = await owner.send(
        "POST",
        "/qonsent/grants",
        json={"grantee": grantee, "resource": resource, "actions": ["read"], "purpose": "test"},
    )
    assert response.status_code == 201, response.text


async def test_each_put_adds_a_version_chained_to_the_one_before(node: Node, alice: Person) -> None:
    first = await put(alice, "site/home", CID_1, tags=["web"])
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1 and first.json()["prev_cid"] is None
    second = (await put(alice, "site/home", CID_2)).json()
    third = (await put(alice, "site/home", CID_3, tags=["web", "live"])).json()
    assert (second["version"], second["prev_cid"], second["tags"]) == (2, CID_1, ["web"])
    assert (third["version"], third["prev_cid"], third["tags"]) == (3, CID_2, ["live", "web"])
    assert third["owner"] == alice.did and third["updated_by"] == alice.did

    current = await alice.send("GET", "/qindex/pointers/site/home")
    assert current.json()["cid"] == CID_3
    old = await alice.send("GET", "/qindex/pointers/site/home", params={"version": 1})
    assert old.json()["cid"] == CID_1
    missing = await alice.send("GET", "/qindex/pointers/site/home", params={"version": 9})
    assert missing.status_code == 404

    history = (await alice.send("GET", "/qindex/history/site/home")).json()
    assert [(v["version"], v["cid"], v["prev_cid"]) for v in history] == [
        (3, CID_3, CID_2),
        (2, CID_2, CID_1),
        (1, CID_1, None),
    ]
    with node.kernel.db.read() as conn:
        events = list(
            conn.execute(select(outbox.c.type).where(outbox.c.type.startswith("qindex."))).scalars()
        )
    assert events == ["qindex.pointer.updated"] * 3


async def test_an_expected_version_guards_against_lost_updates(alice: Person) -> None:
    assert (await put(alice, "profile", CID_1, expected_version=0)).status_code == 200
    stale = await put(alice, "profile", CID_2, expected_version=0)
    assert stale.status_code == 409 and stale.json()["version"] == 1
    assert (await put(alice, "profile", CID_2, expected_version=1)).status_code == 200


async def test_listing_by_prefix_and_tag_in_pages(alice: Person) -> None:
    for key, tags in [
        ("photos/2024/a", ["trip"]),
        ("photos/2024/b", []),
        ("photos/2025/c", ["trip"]),
        ("docs/cv", ["work"]),
    ]:
        assert (await put(alice, key, CID_1, tags=tags)).status_code == 200

    def keys(result: httpx.Response) -> list[str]:
        return [p["key"] for p in result.json()["pointers"]]

    everything = await alice.send("GET", "/qindex/pointers")
    assert keys(everything) == ["docs/cv", "photos/2024/a", "photos/2024/b", "photos/2025/c"]
    photos = await alice.send("GET", "/qindex/pointers", params={"prefix": "photos/2024/"})
    assert keys(photos) == ["photos/2024/a", "photos/2024/b"]
    trips = await alice.send("GET", "/qindex/pointers", params={"tag": "trip"})
    assert keys(trips) == ["photos/2024/a", "photos/2025/c"]

    walked: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = await alice.send("GET", "/qindex/pointers", params=params)
        walked += keys(page)
        if not page.json()["next_cursor"]:
            break
        params["cursor"] = page.json()["next_cursor"]
    assert walked == keys(everything)


async def test_others_read_a_pointer_only_with_a_grant(alice: Person, bob: Person) -> None:
    await put(alice, "site/home", CID_1)
    await put(alice, "site/blog", CID_2)
    owner = {"owner": alice.did}

    refused = await bob.send("GET", "/qindex/pointers/site/home", params=owner)
    assert refused.status_code == 403
    assert (await bob.send("GET", "/qindex/history/site/home", params=owner)).status_code == 403
    listed = await bob.send("GET", "/qindex/pointers", params=owner)
    assert listed.json()["pointers"] == []

    await grant(alice, bob.did, pointer_resource(alice.did, "site/home"))
    allowed = await bob.send("GET", "/qindex/pointers/site/home", params=owner)
    assert allowed.status_code == 200 and allowed.json()["cid"] == CID_1
    still_refused = await bob.send("GET", "/qindex/pointers/site/blog", params=owner)
    assert still_refused.status_code == 403
    listed = await bob.send("GET", "/qindex/pointers", params=owner)
    assert [p["key"] for p in listed.json()["pointers"]] == ["site/home"]

    # A grant on the namespace pattern opens every pointer in it.
    await grant(alice, bob.did, namespace_prefix(alice.did) + "*")
    listed = await bob.send("GET", "/qindex/pointers", params=owner)
    assert [p["key"] for p in listed.json()["pointers"]] == ["site/blog", "site/home"]


async def test_nobody_writes_in_another_namespace(alice: Person, bob: Person) -> None:
    await put(alice, "site/home", CID_1)
    # Bob's put lands in Bob's own namespace, never in Alice's.
    bobs = (await put(bob, "site/home", CID_2)).json()
    assert bobs["owner"] == bob.did
    mine = await alice.send("GET", "/qindex/pointers/site/home")
    assert mine.json()["cid"] == CID_1
    anonymous = await alice.http.put("/qindex/pointers/site/home", json={"cid": CID_3})
    assert anonymous.status_code == 401


async def test_delete_removes_the_pointer_and_its_history(alice: Person) -> None:
    await put(alice, "tmp", CID_1)
    await put(alice, "tmp", CID_2)
    assert (await alice.send("DELETE", "/qindex/pointers/tmp")).status_code == 204
    assert (await alice.send("GET", "/qindex/pointers/tmp")).status_code == 404
    assert (await alice.send("GET", "/qindex/history/tmp")).status_code == 404
    assert (await alice.send("DELETE", "/qindex/pointers/tmp")).status_code == 404
    again = (await put(alice, "tmp", CID_3)).json()
    assert again["version"] == 1 and again["prev_cid"] is None


@pytest.mark.parametrize(
    ("key", "body", "status"),
    [
        ("ok", {"cid": "not-a-cid"}, 400),
        ("ok", {"cid": CID_1, "tags": ["Bad Tag"]}, 422),
        ("ok", {"cid": CID_1, "extra": 1}, 422),
        ("a//b", {"cid": CID_1}, 400),
        ("a:b", {"cid": CID_1}, 400),
        ("x" * 201, {"cid": CID_1}, 400),
        ("x+" * 75, {"cid": CID_1}, 400),  # fits as a key, too long as a resource
    ],
)
async def test_bad_pointer_input_is_refused(
    alice: Person, key: str, body: dict[str, Any], status: int
) -> None:
    response = await alice.send("PUT", f"/qindex/pointers/{key}", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await alice.send("GET", "/qindex/pointers")).json()["pointers"] == []
