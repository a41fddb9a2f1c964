"""The WebSocket at /qchat/ws: session sign-in, resume from a seq, live events, typing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from anarq.gateway.app import create_app
from anarq.kernel.node import Node
from tests.qchat.chat import Chatter, chatter


@pytest.fixture
def ws_client(node: Node) -> Any:
    with TestClient(create_app(node, background=False)) as client:
        yield client


def events_until(socket: Any, room_id: str, seq: int) -> list[int]:
    """The seqs the socket receives for `room_id` up to `seq`, in order."""
    got: list[int] = []
    while not got or got[-1] < seq:
        frame = socket.receive_json()
        if frame["type"] == "event" and frame["room"] == room_id:
            got.append(frame["event"]["seq"])
    return got


async def test_resume_receives_exactly_what_was_missed_then_live(
    http: httpx.AsyncClient, ws_client: TestClient
) -> None:
    alice, bob = await chatter(http, "alice"), await chatter(http, "bob")
    room = await alice.room(kind="direct", peer=bob.did, e2e=False)
    token = await bob.session()
    first = [await alice.say(room["id"], f"m{n}") for n in range(3)]
    with ws_client.websocket_connect("/qchat/ws") as socket:
        socket.send_json({"type": "auth", "token": token})
        assert socket.receive_json() == {"type": "ready", "did": bob.did}
        socket.send_json({"type": "subscribe", "rooms": {room["id"]: 0}})
        seen = events_until(socket, room["id"], first[-1]["seq"])
        assert seen == list(range(1, first[-1]["seq"] + 1))
        assert socket.receive_json() == {
            "type": "caught_up",
            "room": room["id"],
            "seq": first[-1]["seq"],
        }
        live = await alice.say(room["id"], "live one")
        assert events_until(socket, room["id"], live["seq"]) == [live["seq"]]
        last_seen = live["seq"]
    missed = [await alice.say(room["id"], f"while away {n}") for n in range(4)]
    with ws_client.websocket_connect(
        "/qchat/ws", headers={"Authorization": f"Bearer {token}"}
    ) as socket:
        assert socket.receive_json()["type"] == "ready"
        socket.send_json({"type": "subscribe", "rooms": {room["id"]: last_seen}})
        frames = []
        while True:
            frame = socket.receive_json()
            if frame["type"] == "caught_up":
                break
            if frame["type"] == "event":
                frames.append(frame["event"])
        assert [f["seq"] for f in frames] == [m["seq"] for m in missed]
        assert [f["body"] for f in frames] == [f"while away {n}" for n in range(4)]


async def test_typing_and_presence_reach_the_others_only(
    http: httpx.AsyncClient, ws_client: TestClient
) -> None:
    alice, bob = await chatter(http, "alice"), await chatter(http, "bob")
    room = await alice.room(kind="direct", peer=bob.did, e2e=False)
    tokens = {p.did: await p.session() for p in (alice, bob)}
    with (
        ws_client.websocket_connect("/qchat/ws") as a,
        ws_client.websocket_connect("/qchat/ws") as b,
    ):
        for socket, person in ((a, alice), (b, bob)):
            socket.send_json({"type": "auth", "token": tokens[person.did]})
            assert socket.receive_json()["type"] == "ready"
        last = room["last_seq"]
        a.send_json({"type": "subscribe", "rooms": {room["id"]: last}})
        assert a.receive_json()["type"] == "caught_up"
        b.send_json({"type": "subscribe", "rooms": {room["id"]: last}})
        assert b.receive_json()["type"] == "caught_up"
        presence = a.receive_json()
        assert presence == {
            "type": "presence",
            "room": room["id"],
            "did": bob.did,
            "status": "online",
        }
        b.send_json({"type": "typing", "room": room["id"]})
        assert a.receive_json() == {"type": "typing", "room": room["id"], "did": bob.did}


async def test_websocket_refuses_without_a_session(
    http: httpx.AsyncClient, ws_client: TestClient
) -> None:
    with ws_client.websocket_connect("/qchat/ws") as socket:
        socket.send_json({"type": "auth", "token": "anq_ses_forged"})
        assert socket.receive_json()["code"] == "unauthenticated"


async def test_a_stranger_cannot_subscribe(http: httpx.AsyncClient, ws_client: TestClient) -> None:
    alice, bob = await chatter(http, "alice"), await chatter(http, "bob")
    carol: Chatter = await chatter(http, "carol")
    room = await alice.room(kind="direct", peer=bob.did, e2e=False)
    with ws_client.websocket_connect(
        "/qchat/ws", headers={"Authorization": f"Bearer {await carol.session()}"}
    ) as socket:
        assert socket.receive_json()["type"] == "ready"
        socket.send_json({"type": "subscribe", "rooms": {room["id"]: 0}})
        frame = socket.receive_json()
        assert frame["type"] == "error" and frame["room"] == room["id"]


def frames_until_pong(socket: Any) -> list[dict[str, Any]]:
    socket.send_json({"type": "ping"})
    frames = []
    while (frame := socket.receive_json())["type"] != "pong":
        frames.append(frame)
    return frames


async def test_a_seq_ahead_of_the_room_does_not_skip_the_kick(
    http: httpx.AsyncClient, ws_client: TestClient
) -> None:
    alice, bob = await chatter(http, "alice"), await chatter(http, "bob")
    room = await alice.room(name="team", e2e=False)
    await alice.ok("POST", f"/qchat/rooms/{room['id']}/invites", 201, json={"did": bob.did})
    await bob.ok("POST", f"/qchat/rooms/{room['id']}/join")
    last = (await alice.say(room["id"], "before"))["seq"]
    with ws_client.websocket_connect(
        "/qchat/ws", headers={"Authorization": f"Bearer {await bob.session()}"}
    ) as socket:
        assert socket.receive_json()["type"] == "ready"
        # Bob claims to have seen the next event already: the one that will remove him.
        socket.send_json({"type": "subscribe", "rooms": {room["id"]: last + 1}})
        frames_until_pong(socket)
        await alice.ok("POST", f"/qchat/rooms/{room['id']}/kick", 204, json={"did": bob.did})
        secret = await alice.say(room["id"], "bob is gone")
        seen = [f["event"]["seq"] for f in frames_until_pong(socket) if f["type"] == "event"]
        assert secret["seq"] not in seen


async def test_an_ended_session_stops_receiving(
    http: httpx.AsyncClient, ws_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anarq.qchat import ws

    monkeypatch.setattr(ws, "SESSION_RECHECK_SECONDS", 0.0)
    alice, bob = await chatter(http, "alice"), await chatter(http, "bob")
    room = await alice.room(kind="direct", peer=bob.did, e2e=False)
    token = await bob.session()
    with ws_client.websocket_connect(
        "/qchat/ws", headers={"Authorization": f"Bearer {token}"}
    ) as socket:
        assert socket.receive_json()["type"] == "ready"
        socket.send_json({"type": "subscribe", "rooms": {room["id"]: 0}})
        frames_until_pong(socket)
        out = await http.delete(
            "/squid/sessions/current", headers={"Authorization": f"Bearer {token}"}
        )
        assert out.status_code == 204
        await alice.say(room["id"], "after logout")
        socket.send_json({"type": "ping"})
        frame = socket.receive()
        assert frame["type"] == "websocket.close" and frame["code"] == 4401


async def test_malformed_frames_get_an_error_and_the_connection_lives(
    http: httpx.AsyncClient, ws_client: TestClient
) -> None:
    bob = await chatter(http, "bob")
    with ws_client.websocket_connect(
        "/qchat/ws", headers={"Authorization": f"Bearer {await bob.session()}"}
    ) as socket:
        assert socket.receive_json()["type"] == "ready"
        socket.send_json({"type": "typing", "room": ["not", "a", "room"]})
        socket.send_text("not json")
        socket.send_bytes(b"\x00binary")
        errors = frames_until_pong(socket)
        assert [f["code"] for f in errors] == ["qchat.bad_frame"] * 3
