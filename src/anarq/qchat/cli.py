"""`anarq chat …`: rooms and messages from your identity; end-to-end rooms are encrypted here.

In an end-to-end room this command makes and seals group keys with your wallet's key,
encrypts what you send and decrypts what you read; the node sees ciphertext only.
`tail` signs in for a session and streams the room live over the WebSocket.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import typer

from anarq.cli.output import JSON_OPTION, URL_OPTION, console, emit_json, emit_table
from anarq.qchat.envelope import (
    ChatCryptoError,
    decrypt_text,
    encrypt_text,
    new_group_key,
    open_group_key,
    seal_group_key,
)
from anarq.qlock import RecipientKey, encode_signature, sign
from anarq.sdk import Client
from anarq.sdk.client import DEFAULT_URL
from anarq.squid.cli import signed_client

app = typer.Typer(no_args_is_help=True)
IDENTITY_OPTION = typer.Option(
    None, "--as", envvar="ANARQ_IDENTITY", help="Identity to act as [default: the active one]."
)
ROOM_COLUMNS = ["id", "name", "kind", "visibility", "e2e", "role", "state", "unread"]


# Client-side keys ----------------------------------------------------------------------------


def rotate_key(node: Client, room: dict[str, Any]) -> None:
    """Make the awaited epoch's group key and seal it to exactly the joined members."""
    members = node.request("GET", f"/qchat/rooms/{room['id']}/members")
    readers = [
        RecipientKey.from_bytes(
            base64.b64decode(node.request("GET", f"/qmail/keys/{m['did']}")["recipient_key"])
        )
        for m in members
        if m["state"] == "joined"
    ]
    envelope = seal_group_key(new_group_key(), room["id"], room["epoch"], readers)
    node.request(
        "POST",
        f"/qchat/rooms/{room['id']}/keys",
        json={"epoch": room["epoch"], "envelope": envelope},
    )


def group_keys(node: Client, room_id: str) -> dict[int, bytes]:
    signer = node.signer
    assert signer is not None
    mine = signer.key.derive_agreement_key()
    keys = {}
    for item in node.request("GET", f"/qchat/rooms/{room_id}/keys"):
        try:
            keys[item["epoch"]] = open_group_key(item["envelope"], room_id, item["epoch"], mine)
        except ChatCryptoError:
            continue  # sealed before you joined, or after you left
    return keys


def readable(event: dict[str, Any], room: dict[str, Any], keys: dict[int, bytes]) -> str:
    body = event.get("body")
    if event["kind"] == "member":
        return f"* {event['subject']} {body}"
    if body is None:
        return "(deleted)"
    if not room["e2e"] or event["kind"] in ("reaction", "unreaction"):
        return str(body)
    key = keys.get(event.get("epoch") or -1)
    if key is None:
        return "(cannot decrypt: no key for this epoch)"
    try:
        return decrypt_text(key, room["id"], body)
    except ChatCryptoError as exc:
        return f"(cannot decrypt: {exc})"


def _room(node: Client, room_id: str) -> dict[str, Any]:
    room: dict[str, Any] = node.request("GET", f"/qchat/rooms/{room_id}")
    return room


# Commands ------------------------------------------------------------------------------------


@app.command("rooms")
def rooms(
    public: bool = typer.Option(False, "--public", help="The node's public rooms."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Your rooms with unread counts (or the public ones)."""
    with signed_client(url, identity) as node:
        found = node.request("GET", "/qchat/rooms", params={"public": public})
    if as_json:
        emit_json(found)
    else:
        emit_table(found, ROOM_COLUMNS, title="rooms")


@app.command("create")
def create(
    name: str = typer.Option("", "--name"),
    direct: str | None = typer.Option(None, "--direct", help="A direct room with this DID."),
    public: bool = typer.Option(False, "--public", help="Anyone may join."),
    plain: bool = typer.Option(False, "--plain", help="Not end-to-end: the node reads it."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a room (end-to-end encrypted unless --plain)."""
    body: dict[str, Any] = {"name": name, "e2e": not plain}
    if direct:
        body.update(kind="direct", peer=direct)
    else:
        body["visibility"] = "public" if public else "invite"
    with signed_client(url, identity) as node:
        room = node.request("POST", "/qchat/rooms", json=body)
        if room["e2e"]:
            rotate_key(node, room)
            room = _room(node, room["id"])
    if as_json:
        emit_json(room)
    else:
        console.print(f"room {room['id']}")


@app.command("invite")
def invite(
    room_id: str, did: str, identity: str | None = IDENTITY_OPTION, url: str | None = URL_OPTION
) -> None:
    """Invite an identity to a room."""
    with signed_client(url, identity) as node:
        node.request("POST", f"/qchat/rooms/{room_id}/invites", json={"did": did})
    console.print(f"invited {did}")


@app.command("join")
def join(
    room_id: str, identity: str | None = IDENTITY_OPTION, url: str | None = URL_OPTION
) -> None:
    """Join a public room or one you are invited to."""
    with signed_client(url, identity) as node:
        node.request("POST", f"/qchat/rooms/{room_id}/join")
    console.print(f"joined {room_id}")


@app.command("leave")
def leave(
    room_id: str, identity: str | None = IDENTITY_OPTION, url: str | None = URL_OPTION
) -> None:
    """Leave a room."""
    with signed_client(url, identity) as node:
        node.request("POST", f"/qchat/rooms/{room_id}/leave")
    console.print(f"left {room_id}")


def _moderate(verb: str, room_id: str, did: str, identity: str | None, url: str | None) -> None:
    with signed_client(url, identity) as node:
        node.request("POST", f"/qchat/rooms/{room_id}/{verb}", json={"did": did})
        room = _room(node, room_id)
        if room["e2e"] and not room["key_ready"]:
            rotate_key(node, room)  # the removed member gets no key to what follows
    console.print(f"{verb}: {did}")


@app.command("kick")
def kick(
    room_id: str, did: str, identity: str | None = IDENTITY_OPTION, url: str | None = URL_OPTION
) -> None:
    """Remove a member (and rotate the room key)."""
    _moderate("kick", room_id, did, identity, url)


@app.command("ban")
def ban(
    room_id: str, did: str, identity: str | None = IDENTITY_OPTION, url: str | None = URL_OPTION
) -> None:
    """Remove an identity for good (and rotate the room key)."""
    _moderate("ban", room_id, did, identity, url)


@app.command("mute")
def mute(
    room_id: str,
    did: str,
    undo: bool = typer.Option(False, "--undo", help="Unmute."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Take away (or with --undo give back) a member's right to write."""
    _moderate("unmute" if undo else "mute", room_id, did, identity, url)


@app.command("send")
def send(
    room_id: str,
    text: str,
    reply_to: int | None = typer.Option(None, "--reply-to", help="The seq replied to."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Send a message (encrypted here in an end-to-end room)."""
    with signed_client(url, identity) as node:
        room = _room(node, room_id)
        body = text
        if room["e2e"]:
            if not room["key_ready"]:
                rotate_key(node, room)
                room = _room(node, room_id)
            key = group_keys(node, room_id)[room["epoch"]]
            body = encrypt_text(key, room_id, room["epoch"], text)
        request: dict[str, Any] = {"body": body}
        if reply_to is not None:
            request["reply_to"] = reply_to
        event = node.request("POST", f"/qchat/rooms/{room_id}/messages", json=request)
    if as_json:
        emit_json(event)
    else:
        console.print(f"sent #{event['seq']}")


@app.command("history")
def history(
    room_id: str,
    before: int | None = typer.Option(None, "--before"),
    limit: int = typer.Option(50, min=1, max=200),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The room's recent events, decrypted here."""
    params: dict[str, Any] = {"limit": limit}
    if before is not None:
        params["before"] = before
    with signed_client(url, identity) as node:
        room = _room(node, room_id)
        page = node.request("GET", f"/qchat/rooms/{room_id}/events", params=params)
        keys = group_keys(node, room_id) if room["e2e"] else {}
    rows = [{**e, "text": readable(e, room, keys)} for e in page["events"]]
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, ["seq", "sender", "kind", "text"], title=room["name"] or room_id)


@app.command("tail")
def tail(
    room_id: str,
    after: int | None = typer.Option(None, "--after", help="Resume after this seq."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Stream the room live over the WebSocket until Ctrl-C (one JSON line per event)."""
    from websockets.sync.client import connect

    with signed_client(url, identity) as node:
        signer = node.signer
        assert signer is not None
        room = _room(node, room_id)
        challenge = node.request("GET", "/squid/sessions/challenge")
        signature = encode_signature(sign(signer.key, challenge["sign"].encode()))
        session = node.request(
            "POST",
            "/squid/sessions",
            json={"did": signer.did, "challenge": challenge["challenge"], "signature": signature},
        )
        keys = group_keys(node, room_id) if room["e2e"] else {}
        ws_url = (url or DEFAULT_URL).replace("http", "ws", 1).rstrip("/") + "/qchat/ws"
        start = room["last_seq"] if after is None else after
        try:
            with connect(
                ws_url, additional_headers={"Authorization": f"Bearer {session['token']}"}
            ) as socket:
                socket.send(json.dumps({"type": "subscribe", "rooms": {room_id: start}}))
                for raw in socket:
                    frame = json.loads(raw)
                    if frame.get("type") != "event":
                        continue
                    event = frame["event"]
                    if event["kind"] == "key":
                        keys = group_keys(node, room_id)
                    line = {**event, "text": readable(event, room, keys)}
                    print(json.dumps(line), flush=True)
        except KeyboardInterrupt:
            pass
