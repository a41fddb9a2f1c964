"""Albums, locks, the timeline, near-duplicates and sharing, through the HTTP API."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from tests.qpic.conftest import Photographer
from tests.qpic.images import encode, jpeg, scene

LOCK = {"passphrase": "correct horse battery"}


async def album(person: Photographer, name: str, **fields: Any) -> dict[str, Any]:
    response = await person.send("POST", "/qpic/albums", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def listed(person: Photographer, **params: Any) -> list[str]:
    headers = params.pop("headers", {})
    response = await person.send("GET", "/qpic/photos", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["photos"]]


async def test_albums_nest_rename_and_delete_without_their_photos(alice: Photographer) -> None:
    one = await alice.upload("one.jpg", jpeg(1))
    two = await alice.upload("two.jpg", jpeg(2))
    trips = await album(alice, "Trips")
    rome = await album(alice, "Rome", parent_id=trips["id"])
    assert rome["parent_id"] == trips["id"]
    added = await alice.send(
        "POST", f"/qpic/albums/{rome['id']}/photos", json={"photo_ids": [one["id"], two["id"]]}
    )
    assert added.json()["photos"] == 2
    assert set(await listed(alice, album=rome["id"])) == {one["id"], two["id"]}
    assert (await alice.send("GET", f"/qpic/albums/{trips['id']}")).json()["albums"] == 1
    same_name = await alice.send("POST", "/qpic/albums", json={"name": "Trips"})
    assert same_name.status_code == 409
    into_itself = await alice.send(
        "PATCH", f"/qpic/albums/{trips['id']}", json={"parent_id": rome["id"]}
    )
    assert into_itself.status_code == 400
    renamed = await alice.send("PATCH", f"/qpic/albums/{rome['id']}", json={"name": "Roma"})
    assert renamed.json()["name"] == "Roma"
    moved = await alice.send("PATCH", f"/qpic/albums/{rome['id']}", json={"parent_id": None})
    assert moved.json()["parent_id"] is None
    out = await alice.send("DELETE", f"/qpic/albums/{rome['id']}/photos/{one['id']}")
    assert out.status_code == 204
    assert await listed(alice, album=rome["id"]) == [two["id"]]
    gone = await alice.send("DELETE", f"/qpic/albums/{rome['id']}")
    assert gone.status_code == 204
    assert set(await listed(alice)) == {one["id"], two["id"]}  # the photos stay
    names = [a["name"] for a in (await alice.send("GET", "/qpic/albums")).json()]
    assert names == ["Trips"]


async def test_album_with_sub_albums_cannot_be_deleted(alice: Photographer) -> None:
    parent = await album(alice, "Parent")
    await album(alice, "Child", parent_id=parent["id"])
    assert (await alice.send("DELETE", f"/qpic/albums/{parent['id']}")).status_code == 409


async def test_locked_album_needs_a_fresh_unlock(alice: Photographer, bob: Photographer) -> None:
    open_photo = await alice.upload("open.jpg", jpeg(1))
    hidden = await alice.upload("hidden.jpg", jpeg(2))
    vault = await album(alice, "Vault", **LOCK)
    inner = await album(alice, "Inner", parent_id=vault["id"])
    assert vault["locked"] is True and inner["locked_by"] == vault["id"]
    await alice.send(
        "POST", f"/qpic/albums/{inner['id']}/photos", json={"photo_ids": [hidden["id"]]}
    )

    refused = await alice.send("GET", "/qpic/photos", params={"album": inner["id"]})
    assert refused.status_code == 403
    assert refused.json()["code"] == "qpic.album_locked" and "locked" in refused.json()["detail"]
    for path in ("", "/thumb", "/content"):
        response = await alice.send("GET", f"/qpic/photos/{hidden['id']}{path}")
        assert response.status_code == 403 and response.json()["code"] == "qpic.album_locked"
    # A locked photo leaves the timeline, the listing and the duplicate search.
    assert await listed(alice) == [open_photo["id"]]
    timeline = (await alice.send("GET", "/qpic/timeline")).json()
    assert [p["id"] for d in timeline["days"] for p in d["photos"]] == [open_photo["id"]]
    # Nor can it be taken out, or the album moved out, without the unlock.
    assert (
        await alice.send("DELETE", f"/qpic/albums/{inner['id']}/photos/{hidden['id']}")
    ).status_code == 403
    assert (
        await alice.send("PATCH", f"/qpic/albums/{inner['id']}", json={"parent_id": None})
    ).status_code == 403
    shared = await alice.send(
        "POST", f"/qpic/photos/{hidden['id']}/shares", json={"grantee": bob.did}
    )
    assert shared.status_code == 403

    wrong = await alice.send(
        "POST", f"/qpic/albums/{vault['id']}/unlock", json={"passphrase": "not it at all"}
    )
    assert wrong.status_code == 403 and wrong.json()["code"] == "qpic.wrong_passphrase"
    stranger = await bob.send("POST", f"/qpic/albums/{vault['id']}/unlock", json=LOCK)
    assert stranger.status_code == 403
    unlocked = await alice.send("POST", f"/qpic/albums/{vault['id']}/unlock", json=LOCK)
    assert unlocked.status_code == 200, unlocked.text
    token = {"X-Anarq-Album-Unlock": unlocked.json()["token"]}
    assert await listed(alice, album=inner["id"], headers=token) == [hidden["id"]]
    assert set(await listed(alice, headers=token)) == {open_photo["id"], hidden["id"]}
    ok = await alice.send("GET", f"/qpic/photos/{hidden['id']}/thumb", headers=token)
    assert ok.status_code == 200
    # The token is Alice's: it opens nothing for Bob.
    assert (
        await bob.send("GET", "/qpic/photos", params={"album": inner["id"]}, headers=token)
    ).status_code == 403
    bad = await alice.send(
        "GET",
        "/qpic/photos",
        params={"album": inner["id"]},
        headers={"X-Anarq-Album-Unlock": "anq_alb_forged"},
    )
    assert bad.status_code == 403


def dated(seed: int, when: str) -> bytes:
    return jpeg(seed, (640, 480), taken=when)


async def test_timeline_is_newest_first_in_days_with_counts(alice: Photographer) -> None:
    shots = {
        "a": "2024:03:01 09:00:00",
        "b": "2024:03:01 18:00:00",
        "c": "2024:02:10 12:00:00",
        "d": "2023:12:31 23:59:00",
        "e": "2024:03:02 08:00:00",
    }
    ids = {}
    for seed, (name, when) in enumerate(shots.items()):
        ids[(await alice.upload(f"{name}.jpg", dated(seed, when)))["id"]] = name
    timeline = (await alice.send("GET", "/qpic/timeline")).json()
    assert [(d["date"], d["count"]) for d in timeline["days"]] == [
        ("2024-03-02", 1),
        ("2024-03-01", 2),
        ("2024-02-10", 1),
        ("2023-12-31", 1),
    ]
    order = [ids[p["id"]] for d in timeline["days"] for p in d["photos"]]
    assert order == ["e", "b", "a", "c", "d"]

    march = (await alice.send("GET", "/qpic/timeline", params={"year": 2024, "month": 3})).json()
    assert [d["date"] for d in march["days"]] == ["2024-03-02", "2024-03-01"]
    year = (await alice.send("GET", "/qpic/timeline", params={"year": 2023})).json()
    assert [d["date"] for d in year["days"]] == ["2023-12-31"]

    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await alice.send("GET", "/qpic/timeline", params=params)).json()
        pages += 1
        for day in page["days"]:
            if day["date"] == "2024-03-01":
                assert day["count"] == 2  # the day's total, whatever the page holds
            seen += [ids[p["id"]] for p in day["photos"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == order and pages == 3
    assert (
        await alice.send("GET", "/qpic/timeline", params={"cursor": "nonsense!"})
    ).status_code == 400
    assert (await alice.send("GET", "/qpic/timeline", params={"month": 3})).status_code == 400


async def test_dupes_find_a_resized_recompressed_copy_but_not_another_picture(
    alice: Photographer,
) -> None:
    original = await alice.upload("sunset.jpg", jpeg(11, (1600, 1200)))
    smaller = scene(11, (1600, 1200)).resize((800, 600))
    copy = await alice.upload("sunset-small.jpg", encode(smaller, "JPEG", quality=55))
    webp = await alice.upload("sunset.webp", encode(smaller, "WEBP", quality=60))
    other = await alice.upload("forest.jpg", jpeg(12, (1600, 1200)))
    found = (await alice.send("GET", "/qpic/dupes", params={"distance": 8})).json()
    assert found["photos_compared"] == 4
    [group] = found["groups"]
    assert {p["id"] for p in group["photos"]} == {original["id"], copy["id"], webp["id"]}
    assert other["id"] not in {p["id"] for p in group["photos"]}
    assert 0 <= group["max_distance"] <= 8
    exact = (await alice.send("GET", "/qpic/dupes", params={"distance": 0})).json()
    assert all(len(g["photos"]) >= 2 for g in exact["groups"])
    assert (await alice.send("GET", "/qpic/dupes", params={"distance": 99})).status_code == 422


async def test_sharing_gives_a_stripped_copy_and_keeps_the_original(
    alice: Photographer, bob: Photographer
) -> None:
    data = jpeg(13, taken="2024:08:01 10:00:00", camera=("Apple", "iPhone 15"), gps=True)
    photo = await alice.upload("home.jpg", data)
    shared = await alice.send(
        "POST", f"/qpic/photos/{photo['id']}/shares", json={"grantee": bob.did}
    )
    assert shared.status_code == 201, shared.text

    theirs = await bob.send("GET", f"/qpic/photos/{photo['id']}/content")
    assert theirs.status_code == 200
    copy = Image.open(io.BytesIO(theirs.content))
    assert not copy.getexif() and b"Exif" not in theirs.content
    assert b"Apple" not in theirs.content and "xmp" not in copy.info
    assert copy.size == (1600, 1200)
    mine = await alice.send("GET", f"/qpic/photos/{photo['id']}/content")
    assert mine.content == data
    assert Image.open(io.BytesIO(mine.content)).getexif().get_ifd(0x8825)

    seen = (await bob.send("GET", f"/qpic/photos/{photo['id']}")).json()
    assert seen["mine"] is False and seen["camera_model"] is None and seen["has_gps"] is None
    assert seen["taken_at"] is None and seen["file_id"] is None
    assert (await bob.send("GET", f"/qpic/photos/{photo['id']}/thumb")).status_code == 200
    assert [p["id"] for p in (await bob.send("GET", "/qpic/shared")).json()["photos"]] == [
        photo["id"]
    ]
    # The copy is a Qdrive file shared with Bob, its key wrapped for him.
    who = (await alice.send("GET", f"/qpic/photos/{photo['id']}/shares")).json()
    assert [s["grantee"] for s in who] == [bob.did]

    gone = await alice.send("DELETE", f"/qpic/photos/{photo['id']}/shares/{bob.did}")
    assert gone.status_code == 204
    assert (await bob.send("GET", f"/qpic/photos/{photo['id']}/content")).status_code == 403
    assert (await bob.send("GET", f"/qpic/photos/{photo['id']}/thumb")).status_code == 403


async def test_sharing_an_album_shares_its_photos_and_later_ones(
    alice: Photographer, bob: Photographer
) -> None:
    first = await alice.upload("first.jpg", jpeg(21))
    private = await alice.upload("private.jpg", jpeg(23))
    holiday = await album(alice, "Holiday")
    vault = await album(alice, "Vault", **LOCK)
    both = {"photo_ids": [first["id"], private["id"]]}
    await alice.send("POST", f"/qpic/albums/{holiday['id']}/photos", json=both)
    only = {"photo_ids": [private["id"]]}
    await alice.send("POST", f"/qpic/albums/{vault['id']}/photos", json=only)
    shared = await alice.send(
        "POST", f"/qpic/albums/{holiday['id']}/shares", json={"grantee": bob.did}
    )
    # The photo that is also in a locked album is neither shared nor listed for Bob.
    assert shared.status_code == 201 and shared.json()["photos"] == 1
    later = await alice.upload("later.jpg", jpeg(22), album_id=holiday["id"])
    assert set(await listed(bob, album=holiday["id"])) == {first["id"], later["id"]}
    assert (await bob.send("GET", f"/qpic/photos/{later['id']}/content")).status_code == 200
    assert (await bob.send("GET", f"/qpic/photos/{private['id']}")).status_code == 403
    locked = await alice.send(
        "POST", f"/qpic/albums/{vault['id']}/shares", json={"grantee": bob.did}
    )
    assert locked.status_code == 403
