"""A chatting identity for tests: signed requests, its own keys, room keys it opens."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from anarq.qchat.envelope import (
    decrypt_text,
    encrypt_text,
    new_group_key,
    open_group_key,
    seal_group_key,
)
from anarq.qlock import RecipientKey, encode_signature, sign
from tests.qdrive.test_drive import Person


class Chatter(Person):
    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = await self.send(method, path, **kwargs)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    async def room(self, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.ok("POST", "/qchat/rooms", 201, json=fields)
        return result

    async def say(self, room_id: str, body: str, **fields: Any) -> dict[str, Any]:
        path = f"/qchat/rooms/{room_id}/messages"
        result: dict[str, Any] = await self.ok("POST", path, 201, json={"body": body, **fields})
        return result

    async def events(self, room_id: str, **params: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.ok(
            "GET", f"/qchat/rooms/{room_id}/events", params=params
        )
        return result

    async def session(self) -> str:
        challenge = (await self.http.get("/squid/sessions/challenge")).json()
        signature = encode_signature(sign(self.signer.key, challenge["sign"].encode()))
        body = {"did": self.did, "challenge": challenge["challenge"], "signature": signature}
        opened = await self.http.post("/squid/sessions", json=body)
        assert opened.status_code == 201, opened.text
        token: str = opened.json()["token"]
        return token

    # End-to-end rooms: what a member's client does ------------------------------------

    async def rotate(self, room_id: str) -> bytes:
        """Make the awaited epoch's key, seal it to the joined members, upload it."""
        room = await self.ok("GET", f"/qchat/rooms/{room_id}")
        members = await self.ok("GET", f"/qchat/rooms/{room_id}/members")
        readers = []
        for member in members:
            if member["state"] == "joined":
                key = (await self.http.get(f"/qmail/keys/{member['did']}")).json()
                readers.append(RecipientKey.from_bytes(base64.b64decode(key["recipient_key"])))
        group_key = new_group_key()
        envelope = seal_group_key(group_key, room_id, room["epoch"], readers)
        await self.ok(
            "POST",
            f"/qchat/rooms/{room_id}/keys",
            201,
            json={"epoch": room["epoch"], "envelope": envelope},
        )
        return group_key

    async def group_keys(self, room_id: str) -> dict[int, bytes]:
        """Every epoch key this identity can open."""
        opened = {}
        for item in await self.ok("GET", f"/qchat/rooms/{room_id}/keys"):
            try:
                opened[item["epoch"]] = open_group_key(
                    item["envelope"], room_id, item["epoch"], self.signer.key.derive_agreement_key()
                )
            except Exception:
                continue
        return opened

    async def say_secret(self, room_id: str, text: str) -> dict[str, Any]:
        room = await self.ok("GET", f"/qchat/rooms/{room_id}")
        key = (await self.group_keys(room_id))[room["epoch"]]
        return await self.say(room_id, encrypt_text(key, room_id, room["epoch"], text))

    @staticmethod
    def read_secret(key: bytes, room_id: str, event: dict[str, Any]) -> str:
        return decrypt_text(key, room_id, event["body"])


async def chatter(http: httpx.AsyncClient, name: str) -> Chatter:
    person = Chatter(http, name)
    await person.register()
    return person
