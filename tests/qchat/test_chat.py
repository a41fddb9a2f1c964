"""Qchat through the HTTP API: rooms, roles, moderation, the timeline, end-to-end keys."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from anarq.kernel.db import metadata
from anarq.kernel.node import Node
from anarq.qchat import tables
from anarq.qchat.envelope import ChatCryptoError, decrypt_text, encrypt_text, open_group_key
from tests.qchat.chat import Chatter, chatter


@pytest.fixture
async def alice(http: httpx.AsyncClient) -> Chatter:
    return await chatter(http, "alice")


@pytest.fixture
async def bob(http: httpx.AsyncClient) -> Chatter:
    return await chatter(http, "bob")


@pytest.fixture
async def carol(http: httpx.AsyncClient) -> Chatter:
    return await chatter(http, "carol")


def row_counts(node: Node) -> dict[str, int]:
    with node.kernel.db.read() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in tables.TABLES
        }


async def group(owner: Chatter, *others: Chatter, **fields: Any) -> str:
    """A plain group room with `others` invited and joined."""
    room = await owner.room(name="team", e2e=False, **fields)
    for other in others:
        await owner.ok("POST", f"/qchat/rooms/{room['id']}/invites", 201, json={"did": other.did})
        await other.ok("POST", f"/qchat/rooms/{room['id']}/join")
    return str(room["id"])


async def test_invite_only_room_admits_the_invited(
    alice: Chatter, bob: Chatter, carol: Chatter
) -> None:
    room = await alice.room(name="team", e2e=False)
    refused = await carol.send("POST", f"/qchat/rooms/{room['id']}/join")
    assert refused.status_code == 404
    await alice.ok("POST", f"/qchat/rooms/{room['id']}/invites", 201, json={"did": bob.did})
    assert (await bob.ok("GET", "/qchat/rooms"))[0]["state"] == "invited"
    joined = await bob.ok("POST", f"/qchat/rooms/{room['id']}/join")
    assert joined["role"] == "member" and joined["state"] == "joined"
    stranger = await carol.send("POST", f"/qchat/rooms/{room['id']}/messages", json={"body": "hi"})
    assert stranger.status_code == 403
    assert stranger.headers["content-type"].startswith("application/problem+json")
    # A member may not invite: moderators hold `share` on the room, members do not.
    invite = await bob.send("POST", f"/qchat/rooms/{room['id']}/invites", json={"did": carol.did})
    assert invite.status_code == 403


async def test_public_room_anyone_joins_and_direct_room_has_two(
    alice: Chatter, bob: Chatter, carol: Chatter
) -> None:
    room = await alice.room(name="lobby", visibility="public", e2e=False)
    listed = await carol.ok("GET", "/qchat/rooms", params={"public": "true"})
    assert [r["id"] for r in listed] == [room["id"]]
    await carol.ok("POST", f"/qchat/rooms/{room['id']}/join")
    await carol.say(room["id"], "hello lobby")
    direct = await alice.room(kind="direct", peer=bob.did, e2e=False)
    assert direct["visibility"] == "invite"
    await bob.say(direct["id"], "hi alice")
    invite = await alice.send(
        "POST", f"/qchat/rooms/{direct['id']}/invites", json={"did": carol.did}
    )
    assert invite.status_code == 400


async def test_moderators_kick_ban_and_mute(alice: Chatter, bob: Chatter, carol: Chatter) -> None:
    room_id = await group(alice, bob, carol)
    promoted = await alice.ok(
        "PUT", f"/qchat/rooms/{room_id}/members/{bob.did}/role", json={"role": "moderator"}
    )
    assert promoted["role"] == "moderator"
    # Carol, a member, cannot moderate the moderator; bob mutes carol.
    refused = await carol.send("POST", f"/qchat/rooms/{room_id}/mute", json={"did": bob.did})
    assert refused.status_code == 403
    await bob.ok("POST", f"/qchat/rooms/{room_id}/mute", 204, json={"did": carol.did})
    muted = await carol.send("POST", f"/qchat/rooms/{room_id}/messages", json={"body": "x"})
    assert muted.status_code == 403
    assert (await carol.events(room_id))["events"]  # a muted member still reads
    await bob.ok("POST", f"/qchat/rooms/{room_id}/unmute", 204, json={"did": carol.did})
    said = await carol.say(room_id, "back")
    # A moderator deletes another's message; the text is gone, the tombstone stays.
    await bob.ok("DELETE", f"/qchat/rooms/{room_id}/messages/{said['seq']}")
    await bob.ok("POST", f"/qchat/rooms/{room_id}/kick", 204, json={"did": carol.did})
    gone = await carol.send("GET", f"/qchat/rooms/{room_id}/events")
    assert gone.status_code == 403
    await bob.ok("POST", f"/qchat/rooms/{room_id}/invites", 201, json={"did": carol.did})
    await carol.ok("POST", f"/qchat/rooms/{room_id}/join")
    await bob.ok("POST", f"/qchat/rooms/{room_id}/ban", 204, json={"did": carol.did})
    again = await bob.send("POST", f"/qchat/rooms/{room_id}/invites", json={"did": carol.did})
    assert again.status_code == 409
    rejoin = await carol.send("POST", f"/qchat/rooms/{room_id}/join")
    assert rejoin.status_code == 403
    owner = await bob.send("POST", f"/qchat/rooms/{room_id}/kick", json={"did": alice.did})
    assert owner.status_code == 400


async def test_sequence_numbers_history_pages_and_timeline_actions(
    alice: Chatter, bob: Chatter
) -> None:
    room_id = await group(alice, bob)
    said = [await (alice if n % 2 else bob).say(room_id, f"m{n}") for n in range(7)]
    seqs = [m["seq"] for m in said]
    assert seqs == list(range(seqs[0], seqs[0] + 7))
    newest = await bob.events(room_id, limit=3)
    assert [e["seq"] for e in newest["events"]] == seqs[-3:] and newest["more"]
    older = await bob.events(room_id, before=seqs[-3], limit=3)
    assert [e["seq"] for e in older["events"]] == seqs[-6:-3]
    after = await bob.events(room_id, after=seqs[1], limit=2)
    assert [e["body"] for e in after["events"]] == ["m2", "m3"] and after["more"]

    reply = await bob.say(room_id, "re m1", reply_to=seqs[1])
    assert reply["target_seq"] == seqs[1]
    mine = said[1]
    assert mine["sender"] == alice.did
    path = f"/qchat/rooms/{room_id}/messages/{mine['seq']}"
    edit = await alice.ok("PUT", path, json={"body": "m1, edited"})
    assert edit["kind"] == "edit" and edit["target_seq"] == mine["seq"]
    assert (await bob.send("PUT", path, json={"body": "not mine"})).status_code == 400
    await bob.ok("POST", f"{path}/reactions", 201, json={"reaction": "👍"})
    await alice.ok("DELETE", path)
    [tombstone] = (await bob.events(room_id, after=mine["seq"] - 1, limit=1))["events"]
    assert tombstone["body"] is None and tombstone["deleted_at"] is not None
    history = (await bob.events(room_id, limit=50))["events"]
    edits = [e for e in history if e["kind"] == "edit"]
    assert [e["body"] for e in edits] == [None]  # the edit's text went with the message

    room = await bob.ok("GET", f"/qchat/rooms/{room_id}")
    assert room["unread"] == 2  # alice's m3 and m5; her m1 is deleted
    await bob.ok("POST", f"/qchat/rooms/{room_id}/read", json={"seq": seqs[4]})
    assert (await bob.ok("GET", f"/qchat/rooms/{room_id}"))["unread"] == 1


async def test_removed_member_cannot_read_after_the_key_rotates(
    node: Node, alice: Chatter, bob: Chatter, carol: Chatter
) -> None:
    room = await alice.room(name="secret")
    room_id = room["id"]
    for other in (bob, carol):
        await alice.ok("POST", f"/qchat/rooms/{room_id}/invites", 201, json={"did": other.did})
        await other.ok("POST", f"/qchat/rooms/{room_id}/join")
    blocked = await alice.send(
        "POST",
        f"/qchat/rooms/{room_id}/messages",
        json={"body": "qc1.1.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"},
    )
    assert blocked.status_code == 409 and blocked.json()["code"] == "qchat.key_required"
    before = await alice.rotate(room_id)
    first = await bob.say_secret(room_id, "all three of us")
    carols_keys = await carol.group_keys(room_id)
    assert Chatter.read_secret(carols_keys[first["epoch"]], room_id, first) == "all three of us"

    await alice.ok("POST", f"/qchat/rooms/{room_id}/kick", 204, json={"did": carol.did})
    after = await alice.rotate(room_id)
    assert after != before
    later = await bob.say_secret(room_id, "carol is gone")
    assert later["epoch"] == first["epoch"] + 1
    # Carol's client, with every key it ever had and the stored rows, opens nothing new.
    with node.kernel.db.read() as conn:
        sealed = conn.execute(
            select(tables.keys.c.envelope).where(
                tables.keys.c.room_id == room_id, tables.keys.c.epoch == later["epoch"]
            )
        ).scalar_one()
    with pytest.raises(ChatCryptoError):
        open_group_key(sealed, room_id, later["epoch"], carol.signer.key.derive_agreement_key())
    for key in carols_keys.values():
        with pytest.raises(ChatCryptoError):
            decrypt_text(key, room_id, later["body"])
    assert (await carol.send("GET", f"/qchat/rooms/{room_id}/keys")).status_code == 403
    assert Chatter.read_secret((await alice.group_keys(room_id))[later["epoch"]], room_id, later)


async def test_key_sealed_to_a_removed_member_is_refused(
    node: Node, alice: Chatter, bob: Chatter, carol: Chatter
) -> None:
    from anarq.qchat.envelope import new_group_key, seal_group_key
    from anarq.qlock import RecipientKey

    room = await alice.room(name="secret", kind="direct", peer=bob.did)
    readers = [
        RecipientKey.from_bytes(
            __import__("base64").b64decode(
                (await alice.http.get(f"/qmail/keys/{p.did}")).json()["recipient_key"]
            )
        )
        for p in (alice, bob, carol)
    ]
    envelope = seal_group_key(new_group_key(), room["id"], room["epoch"], readers)
    refused = await alice.send(
        "POST",
        f"/qchat/rooms/{room['id']}/keys",
        json={"epoch": room["epoch"], "envelope": envelope},
    )
    assert refused.status_code == 400 and refused.json()["code"] == "qchat.malformed_envelope"
    assert row_counts(node)["qchat_keys"] == 0


def files_holding(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def test_no_plaintext_reaches_the_node(
    node: Node, settings: Any, alice: Chatter, bob: Chatter
) -> None:
    room = await alice.room(name="e2e", kind="direct", peer=bob.did)
    await bob.rotate(room["id"])
    marker = f"plaintext-marker-{os.urandom(8).hex()}"
    said = await alice.say_secret(room["id"], f"the secret is {marker}")
    key = (await bob.group_keys(room["id"]))[said["epoch"]]
    path = f"/qchat/rooms/{room['id']}/messages/{said['seq']}"
    edited = encrypt_text(key, room["id"], said["epoch"], f"edited {marker}")
    await alice.ok("PUT", path, json={"body": edited})
    assert marker in decrypt_text(
        key, room["id"], (await bob.events(room["id"]))["events"][-1]["body"]
    )
    node.kernel.db.close()  # checkpoint the WAL into the file before reading it raw
    needle = marker.encode()
    if settings.backend_kind == "embedded":
        assert files_holding(Path(settings.data_dir), needle) == []
    with node.kernel.db.read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                assert marker not in repr(tuple(row)), f"plaintext in {table.name}"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"body": "plain words"}, 400, id="not-ciphertext"),
        pytest.param({"body": "qc1.x.AAAA.AAAA"}, 400, id="bad-epoch"),
        pytest.param({"body": "qc1.1.!!!.AAAA"}, 400, id="not-base64"),
        pytest.param({"body": "qc1.1." + "A" * 16 + ".AAAA"}, 400, id="short-tag"),
        pytest.param({"body": "qc1." + "A" * 70_000}, 413, id="oversize"),
        pytest.param({"body": ""}, 422, id="empty"),
        pytest.param({"body": "x", "extra": 1}, 422, id="unknown-field"),
        pytest.param({"body": "x", "reply_to": 0}, 422, id="bad-reply"),
    ],
)
async def test_bad_message_is_refused_and_stores_nothing(
    node: Node, alice: Chatter, bob: Chatter, body: dict[str, Any], status: int
) -> None:
    room = await alice.room(kind="direct", peer=bob.did)
    await alice.rotate(room["id"])
    before = row_counts(node)
    response = await alice.send("POST", f"/qchat/rooms/{room['id']}/messages", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert row_counts(node) == before


async def test_unknown_room_and_identity_are_404(alice: Chatter) -> None:
    unknown = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    direct = await alice.send("POST", "/qchat/rooms", json={"kind": "direct", "peer": unknown})
    assert direct.status_code == 404 and direct.json()["code"] == "qchat.unknown_identity"
    for path in ("/qchat/rooms/01JZZZZZZZZZZZZZZZZZZZZZZZ", "/qchat/rooms/nope/events"):
        response = await alice.send("GET", path)
        assert response.status_code == 404, response.text
    anonymous = await alice.http.post("/qchat/rooms", json={"name": "x"})
    assert anonymous.status_code == 401


async def test_a_member_who_left_can_be_banned_and_stays_out(
    alice: Chatter, carol: Chatter
) -> None:
    room = await alice.room(name="lobby", visibility="public", e2e=False)
    await carol.ok("POST", f"/qchat/rooms/{room['id']}/join")
    await carol.ok("POST", f"/qchat/rooms/{room['id']}/leave", 204)
    await alice.ok("POST", f"/qchat/rooms/{room['id']}/ban", 204, json={"did": carol.did})
    rejoin = await carol.send("POST", f"/qchat/rooms/{room['id']}/join")
    assert rejoin.status_code == 403


async def test_a_kicked_member_can_be_banned(alice: Chatter, bob: Chatter) -> None:
    room_id = await group(alice, bob)
    await alice.ok("POST", f"/qchat/rooms/{room_id}/kick", 204, json={"did": bob.did})
    await alice.ok("POST", f"/qchat/rooms/{room_id}/ban", 204, json={"did": bob.did})
    again = await alice.send("POST", f"/qchat/rooms/{room_id}/invites", json={"did": bob.did})
    assert again.status_code == 409


async def test_mute_outlasts_leaving_and_joining_again(alice: Chatter, carol: Chatter) -> None:
    room = await alice.room(name="lobby", visibility="public", e2e=False)
    room_id = room["id"]
    await carol.ok("POST", f"/qchat/rooms/{room_id}/join")
    await alice.ok("POST", f"/qchat/rooms/{room_id}/mute", 204, json={"did": carol.did})
    await carol.ok("POST", f"/qchat/rooms/{room_id}/leave", 204)
    rejoined = await carol.ok("POST", f"/qchat/rooms/{room_id}/join")
    assert rejoined["muted"] is True
    still = await carol.send("POST", f"/qchat/rooms/{room_id}/messages", json={"body": "x"})
    assert still.status_code == 403
    await alice.ok("POST", f"/qchat/rooms/{room_id}/unmute", 204, json={"did": carol.did})
    await carol.say(room_id, "back")


async def test_racing_joins_leave_no_grant_behind_a_kick(
    node: Node, alice: Chatter, carol: Chatter
) -> None:
    import asyncio

    room = await alice.room(name="lobby", visibility="public", e2e=False)
    room_id = room["id"]
    joins = await asyncio.gather(
        *(carol.send("POST", f"/qchat/rooms/{room_id}/join") for _ in range(4))
    )
    assert all(j.status_code == 200 for j in joins), [j.text for j in joins]
    await alice.say(room_id, "members only")
    await alice.ok("POST", f"/qchat/rooms/{room_id}/kick", 204, json={"did": carol.did})
    for path in ("events", "keys", "members"):
        refused = await carol.send("GET", f"/qchat/rooms/{room_id}/{path}")
        assert refused.status_code == 403, (path, refused.text)
    # No grant of the racing joins outlives the kick.
    decision = node.service("qonsent").check(carol.did, "read", f"qchat:room:{room_id}")
    assert not decision.allowed, decision


async def test_privacy_export_has_my_chat_and_erasure_leaves_and_tombstones(
    node: Node, alice: Chatter, bob: Chatter
) -> None:
    room_id = await group(alice, bob)
    await bob.say(room_id, "bob's secret plan")
    await alice.say(room_id, "alice answers")

    exported = await bob.send("GET", "/privacy/export")
    assert exported.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(exported.content))
    names = archive.namelist()
    rooms = json.loads(archive.read(next(n for n in names if n.endswith("qchat/rooms.json"))))
    assert [(r["id"], r["state"]) for r in rooms] == [(room_id, "joined")]
    sent = json.loads(archive.read(next(n for n in names if n.endswith("qchat/sent-events.json"))))
    assert [e["body"] for e in sent if e["kind"] == "message"] == ["bob's secret plan"]

    erased = await bob.send("POST", "/privacy/erase", json={"confirm": bob.did})
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"]["qchat"] == {"rooms_left": 1, "events_tombstoned": 1}
    history = (await alice.events(room_id))["events"]
    bobs = [e for e in history if e["sender"] == bob.did and e["kind"] == "message"]
    assert [(e["body"], e["deleted_at"] is not None) for e in bobs] == [(None, True)]
    assert any(e["kind"] == "message" and e["body"] == "alice answers" for e in history)
    members = await alice.ok("GET", f"/qchat/rooms/{room_id}/members")
    assert {m["did"]: m["state"] for m in members}[bob.did] == "left"
    with node.kernel.db.read() as conn:
        assert not conn.execute(
            select(tables.events.c.seq).where(tables.events.c.body.contains("secret plan"))
        ).first()
