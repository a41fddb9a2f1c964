"""The node module through its service and its HTTP routes."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from anarq.kernel.errors import BadRequest, Forbidden, NotFound, Unauthenticated
from anarq.kernel.guard import ANONYMOUS, Actor, Context
from anarq.kernel.node import Node
from anarq.kernel.tables import outbox
from anarq.node.models import ProfileUpdate
from anarq.node.service import NodeService

PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture
def svc(node: Node) -> NodeService:
    return node.service("node")


def operator_ctx() -> Context:
    return Context(actor=Actor(id="operator", kind="operator"))


def event_types(node: Node) -> list[str]:
    with node.kernel.db.read() as conn:
        return [row.type for row in conn.execute(select(outbox.c.type).order_by(outbox.c.seq))]


def test_profile_defaults_to_the_configured_name(svc: NodeService) -> None:
    profile = svc.profile()
    assert profile.name == svc.k.settings.node_name
    assert profile.revision == 0


def test_operator_updates_profile_and_an_event_is_published(node: Node, svc: NodeService) -> None:
    profile = svc.update_profile(operator_ctx(), ProfileUpdate(name="Commons", contact="ops@x"))
    assert (profile.name, profile.contact, profile.revision) == ("Commons", "ops@x", 1)
    profile = svc.update_profile(operator_ctx(), ProfileUpdate(description="A node"))
    assert (profile.name, profile.description, profile.revision) == ("Commons", "A node", 2)
    assert event_types(node) == ["node.profile.updated", "node.profile.updated"]


def test_anonymous_change_is_refused_and_changes_nothing(node: Node, svc: NodeService) -> None:
    with pytest.raises(Unauthenticated):
        svc.update_profile(Context(actor=ANONYMOUS), ProfileUpdate(name="Hijacked"))
    assert svc.profile().revision == 0
    assert event_types(node) == []


def test_identity_without_rights_is_forbidden(svc: NodeService) -> None:
    with pytest.raises(Forbidden):
        svc.update_profile(
            Context(actor=Actor(id="did:key:z6Mk", kind="identity")), ProfileUpdate(name="x")
        )


def test_empty_change_is_a_bad_request(svc: NodeService) -> None:
    with pytest.raises(BadRequest):
        svc.update_profile(operator_ctx(), ProfileUpdate())


def test_avatar_is_stored_as_a_blob(node: Node, svc: NodeService) -> None:
    profile = svc.set_avatar(operator_ctx(), PNG_1X1, "image/png")
    cid, media_type = svc.avatar()
    assert cid == profile.avatar_cid
    assert media_type == "image/png"
    assert b"".join(node.kernel.blobs.open(cid)) == PNG_1X1


def test_avatar_of_wrong_type_is_refused(svc: NodeService) -> None:
    from anarq.kernel.errors import UnsupportedMediaType

    with pytest.raises(UnsupportedMediaType):
        svc.set_avatar(operator_ctx(), b"<svg/>", "image/svg+xml")
    with pytest.raises(NotFound):
        svc.avatar()


async def test_activity_counts_each_event_once(node: Node, svc: NodeService) -> None:
    svc.update_profile(operator_ctx(), ProfileUpdate(name="One"))
    svc.update_profile(operator_ctx(), ProfileUpdate(name="Two"))
    for _ in range(150):  # up to ~15 s on a loaded machine; usually the first pass
        await node.kernel.bus.run_pending()
        counts = {row.event_type: row.count for row in svc.activity(operator_ctx())}
        if counts.get("node.profile.updated") == 2:
            break
        await asyncio.sleep(0.1)
    await node.kernel.bus.run_pending()
    counts = {row.event_type: row.count for row in svc.activity(operator_ctx())}
    assert counts == {"node.profile.updated": 2}


def test_workers_register_and_stop(svc: NodeService) -> None:
    svc.register_worker("http://127.0.0.1:1")
    [worker] = svc.workers(operator_ctx())
    assert worker.id == svc.worker_id and worker.alive
    svc.unregister_worker()
    assert svc.workers(operator_ctx()) == []
    assert len(svc.workers(operator_ctx(), include_stopped=True)) == 1


def test_operator_tokens_authenticate_until_revoked(svc: NodeService) -> None:
    issued = svc.issue_operator_token(Context.system(), "laptop")
    assert svc.authenticate_bearer(issued.token) == Actor(id="operator", kind="operator")
    assert svc.authenticate_bearer(issued.token + "x") is None
    listed = svc.operator_tokens(Context.system())
    assert [t.label for t in listed] == ["laptop"]
    assert issued.token not in str(listed)
    svc.revoke_operator_token(Context.system(), issued.id)
    assert svc.authenticate_bearer(issued.token) is None
    with pytest.raises(NotFound):
        svc.revoke_operator_token(Context.system(), issued.id)


# Through HTTP ---------------------------------------------------------------------------


async def test_http_profile_round_trip(http: httpx.AsyncClient, operator: dict[str, str]) -> None:
    response = await http.patch("/node/profile", json={"name": "Over HTTP"}, headers=operator)
    assert response.status_code == 200, response.text
    assert (await http.get("/node/profile")).json()["name"] == "Over HTTP"
    assert (await http.get("/node/info")).json()["name"] == "Over HTTP"


async def test_http_avatar_upload_and_download(
    http: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    response = await http.put(
        "/node/avatar", content=PNG_1X1, headers={**operator, "Content-Type": "image/png"}
    )
    assert response.status_code == 200, response.text
    image = await http.get("/node/avatar")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content == PNG_1X1


async def test_http_operator_reads_need_the_token(
    http: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    assert (await http.get("/node/workers")).status_code == 401
    assert (await http.get("/node/activity")).status_code == 401
    assert (await http.get("/node/workers", headers=operator)).status_code == 200
    assert (await http.get("/node/activity", headers=operator)).status_code == 200
