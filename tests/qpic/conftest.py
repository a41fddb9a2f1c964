"""Fixtures for QpiC: signed identities (the Qdrive tests' `Person`) with photo helpers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from anarq.kernel.node import Node
from anarq.qpic.service import QpicService
from tests.qdrive.test_drive import Person


class Photographer(Person):
    async def upload(self, name: str, data: bytes, **params: Any) -> dict[str, Any]:
        response = await self.send(
            "POST", "/qpic/upload", params={"name": name, **params}, content=data
        )
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
async def alice(http: httpx.AsyncClient) -> Photographer:
    person = Photographer(http, "alice")
    await person.register()
    return person


@pytest.fixture
async def bob(http: httpx.AsyncClient) -> Photographer:
    person = Photographer(http, "bob")
    await person.register()
    return person


@pytest.fixture
def qpic(node: Node) -> QpicService:
    service: QpicService = node.service("qpic")
    return service
