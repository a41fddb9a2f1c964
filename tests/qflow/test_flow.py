"""Qflow on both backends: workflows from JSON and YAML, each trigger, data between steps,
conditions, retries, the owner's permissions, versions, and runs that resume after a
crash at any step boundary with each effect once."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from anarq.kernel.node import Node
from anarq.qflow.engine import Engine
from anarq.qflow.service import QflowService
from tests.qdrive.test_drive import Person
from tests.support.money import fund as fund_did
from tests.support.money import holds, later

PI = 10**8


@pytest.fixture
async def alice(http: httpx.AsyncClient) -> Person:
    return await Person(http, "alice").register()


@pytest.fixture
async def bob(http: httpx.AsyncClient) -> Person:
    return await Person(http, "bob").register()


@pytest.fixture
async def carol(http: httpx.AsyncClient) -> Person:
    return await Person(http, "carol").register()


@pytest.fixture
def flows(node: Node) -> QflowService:
    svc: QflowService = node.service("qflow")
    return svc


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def fund(http: httpx.AsyncClient, operator: dict[str, str], who: Person, pi: int) -> None:
    await fund_did(http, operator, who.did, pi)


balance = holds


async def create(who: Person, definition: Any, status: int = 201) -> Any:
    return await ok(
        await who.send("POST", "/qflow/workflows", json={"definition": definition}), status
    )


def payroll(bob: Person, carol: Person) -> dict[str, Any]:
    """Three steps: pay bob, pay carol what bob got, then point a key at a CID."""
    return {
        "name": "payroll",
        "trigger": {"type": "manual"},
        "steps": [
            {
                "id": "bob",
                "action": "qwallet.pay",
                "with": {"to": bob.did, "asset": "PI", "amount": "{{ trigger.data.amount }}"},
            },
            {
                "id": "carol",
                "action": "qwallet.pay",
                "with": {"to": carol.did, "asset": "PI", "amount": "{{ steps.bob.output.amount }}"},
            },
            {
                "id": "log",
                "action": "qindex.point",
                "with": {"key": "payroll/last", "cid": "{{ trigger.data.cid }}"},
            },
        ],
    }


CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


async def test_a_manual_run_maps_data_between_steps_and_records_each(
    http: httpx.AsyncClient,
    operator: dict[str, str],
    flows: QflowService,
    alice: Person,
    bob: Person,
    carol: Person,
) -> None:
    await fund(http, operator, alice, 10)
    made = await create(alice, payroll(bob, carol))
    assert made["version"] == 1 and made["trigger"] == "manual"
    run = await ok(
        await alice.send(
            "POST",
            f"/qflow/workflows/{made['id']}/runs",
            json={"input": {"amount": str(PI), "cid": CID}, "id": "payroll-2026-12"},
        ),
        201,
    )
    again = await alice.send(
        "POST", f"/qflow/workflows/{made['id']}/runs", json={"input": {}, "id": "payroll-2026-12"}
    )
    assert again.status_code == 200 and again.json()["id"] == run["id"]

    assert flows.engine.work() == 1

    done = await ok(await alice.send("GET", f"/qflow/runs/{run['id']}"))
    assert done["status"] == "succeeded" and done["step"] == 3
    assert [(s["step"], s["status"]) for s in done["steps"]] == [
        ("bob", "succeeded"),
        ("carol", "succeeded"),
        ("log", "succeeded"),
    ]
    assert done["steps"][1]["input"]["amount"] == str(PI)
    assert await balance(alice) == 8 * PI
    assert await balance(bob) == await balance(carol) == PI - PI * 50 // 10_000
    pointer = await ok(await alice.send("GET", "/qindex/pointers/payroll/last"))
    assert pointer["cid"] == CID
    assert (await bob.send("GET", f"/qflow/runs/{run['id']}")).status_code == 404


async def test_a_yaml_event_workflow_acts_on_its_owners_events_only(
    node: Node, flows: QflowService, alice: Person, bob: Person, carol: Person
) -> None:
    definition = f"""
name: share-new-files
trigger:
  type: event
  event: qdrive.file.stored
steps:
  - id: share
    action: qdrive.share
    with:
      file: "{{{{ trigger.data.file_id }}}}"
      grantee: {bob.did}
"""
    made = await create(alice, definition)
    assert made["event"] == "qdrive.file.stored"
    mine = await alice.put("/inbox/report.txt", b"for bob too")
    theirs = await carol.put("/inbox/private.txt", b"carol's own")
    await node.kernel.bus.run_pending()
    flows.engine.work()

    assert (await bob.read(mine["id"])).content == b"for bob too"
    assert (await bob.read(theirs["id"])).status_code in (403, 404)
    page = await ok(await alice.send("GET", f"/qflow/workflows/{made['id']}/runs"))
    assert [r["status"] for r in page["runs"]] == ["succeeded"]
    # The same event delivered again starts no second run.
    await node.kernel.bus.run_pending()
    assert (
        len((await ok(await alice.send("GET", f"/qflow/workflows/{made['id']}/runs")))["runs"]) == 1
    )


async def test_conditions_skip_steps_and_a_refused_action_fails_the_run(
    flows: QflowService, alice: Person, bob: Person
) -> None:
    theirs = await bob.put("/bobs.txt", b"bob's")
    definition = {
        "name": "overreach",
        "trigger": {"type": "manual"},
        "steps": [
            {
                "id": "maybe",
                "action": "qindex.point",
                "with": {"key": "skipped", "cid": CID},
                "if": {"path": "trigger.data.go", "op": "eq", "value": True},
            },
            {
                "id": "grab",
                "action": "qdrive.share",
                "with": {"file": theirs["id"], "grantee": alice.did},
                "retry": {"attempts": 5, "backoff_seconds": 0},
            },
        ],
    }
    made = await create(alice, definition)
    run = await ok(await alice.send("POST", f"/qflow/workflows/{made['id']}/runs", json={}), 201)

    flows.engine.work()

    failed = await ok(await alice.send("GET", f"/qflow/runs/{run['id']}"))
    assert failed["status"] == "failed" and "grab" in failed["error"]
    assert [(s["step"], s["status"]) for s in failed["steps"]] == [
        ("maybe", "skipped"),
        ("grab", "failed"),  # once: a refusal is not retried
    ]
    assert (await alice.read(theirs["id"])).status_code in (403, 404)


async def test_failures_retry_with_backoff_until_they_succeed(
    http: httpx.AsyncClient,
    operator: dict[str, str],
    node: Node,
    flows: QflowService,
    alice: Person,
    bob: Person,
) -> None:
    definition = {
        "name": "pay-when-funded",
        "trigger": {"type": "manual"},
        "steps": [
            {
                "id": "pay",
                "action": "qwallet.pay",
                "with": {"to": bob.did, "asset": "PI", "amount": str(PI)},
                "retry": {"attempts": 3, "backoff_seconds": 10, "factor": 2},
            }
        ],
    }
    await ok(await alice.send("POST", "/qwallet/accounts", json={"asset": "PI"}), 201)
    made = await create(alice, definition)
    run = await ok(await alice.send("POST", f"/qflow/workflows/{made['id']}/runs", json={}), 201)

    flows.engine.work()  # exceeds_credits: waits 10 s
    assert flows.engine.work() == 0
    await fund(http, operator, alice, 1)
    with later(node, timedelta(seconds=11)):
        flows.engine.work()

    done = await ok(await alice.send("GET", f"/qflow/runs/{run['id']}"))
    assert done["status"] == "succeeded"
    assert [(s["attempt"], s["status"]) for s in done["steps"]] == [(1, "failed"), (2, "succeeded")]
    assert "exceeds_credits" in done["steps"][0]["error"]
    assert await balance(bob) == PI - PI * 50 // 10_000


class Crash(BaseException):
    """The process dies: nothing after this point runs (BaseException: no handler eats it)."""


@pytest.mark.parametrize("step", ["bob", "carol", "log"])
@pytest.mark.parametrize("phase", ["started", "acted", "recorded"])
async def test_a_crash_at_any_step_boundary_resumes_with_each_effect_once(
    http: httpx.AsyncClient,
    operator: dict[str, str],
    node: Node,
    flows: QflowService,
    alice: Person,
    bob: Person,
    carol: Person,
    step: str,
    phase: str,
) -> None:
    await fund(http, operator, alice, 10)
    made = await create(alice, payroll(bob, carol))
    input_ = {"input": {"amount": str(PI), "cid": CID}}
    run = await ok(
        await alice.send("POST", f"/qflow/workflows/{made['id']}/runs", json=input_), 201
    )

    def die_at(run_id: str, at_step: str, at_phase: str) -> None:
        if (at_step, at_phase) == (step, phase):
            raise Crash

    flows.engine.probe = die_at
    with pytest.raises(Crash):
        flows.engine.work()
    restarted = Engine(node.kernel, flows.engine.services)  # a new process, the same data
    assert restarted.work() == 0  # the dead worker's lease still holds
    with later(node, timedelta(seconds=31)):
        finished = (step, phase) == ("log", "recorded")  # it died after the run's end
        assert restarted.work() == (0 if finished else 1)

    done = await ok(await alice.send("GET", f"/qflow/runs/{run['id']}"))
    assert done["status"] == "succeeded", done
    assert await balance(alice) == 8 * PI  # two payments, never three or four
    assert await balance(bob) == await balance(carol) == PI - PI * 50 // 10_000
    versions = await ok(await alice.send("GET", "/qindex/pointers/payroll/last"))
    assert versions["version"] == 1
    books = await ok(await http.get("/qwallet/books", headers=operator))
    assert books["ok"], books["problems"]


async def test_schedules_start_one_run_per_tick(
    node: Node, flows: QflowService, alice: Person
) -> None:
    definition = {
        "name": "hourly",
        "trigger": {"type": "schedule", "every_seconds": 3600},
        "steps": [{"id": "mark", "action": "qindex.point", "with": {"key": "tick", "cid": CID}}],
    }
    made = await create(alice, definition)
    assert flows.tick() == 0
    with later(node, timedelta(seconds=3601)):
        assert flows.tick() == 1
        assert flows.tick() == 0  # the next tick is an hour on
        flows.engine.work()
    page = await ok(await alice.send("GET", f"/qflow/workflows/{made['id']}/runs"))
    assert [r["status"] for r in page["runs"]] == ["succeeded"]
    assert page["runs"][0]["trigger"]["type"] == "schedule"


async def test_webhooks_need_their_signature_and_run_once_per_delivery(
    http: httpx.AsyncClient, flows: QflowService, alice: Person
) -> None:
    definition = {
        "name": "on-deploy",
        "trigger": {"type": "webhook"},
        "steps": [
            {
                "id": "mark",
                "action": "qindex.point",
                "with": {"key": "deploy", "cid": "{{ trigger.data.cid }}"},
            }
        ],
    }
    made = await create(alice, definition)
    secret = made["hook_secret"]
    assert secret and made["hook_url"] == f"/qflow/hooks/{made['id']}"
    assert (await ok(await alice.send("GET", f"/qflow/workflows/{made['id']}")))[
        "hook_secret"
    ] is None
    body = json.dumps({"cid": CID, "password": "hunter2"}).encode()
    signature = "sha256=" + hmac.new(bytes.fromhex(secret), body, hashlib.sha256).hexdigest()
    headers = {
        "X-Qflow-Signature": signature,
        "X-Qflow-Delivery": "d-1",
        "content-type": "application/json",
    }

    forged = await http.post(
        made["hook_url"], content=body, headers={**headers, "X-Qflow-Signature": "sha256=00"}
    )
    assert forged.status_code == 401 and forged.json()["code"] == "qflow.hook_refused"
    first = await ok(await http.post(made["hook_url"], content=body, headers=headers), 202)
    replay = await ok(await http.post(made["hook_url"], content=body, headers=headers), 202)
    assert replay["run"] == "duplicate" and first["run"] != "duplicate"

    flows.engine.work()
    shown = await ok(await alice.send("GET", f"/qflow/runs/{first['run']}"))
    assert shown["status"] == "succeeded"
    assert shown["trigger"]["data"]["password"] == "[redacted]"  # never in history


async def test_versions_diff_and_rollback_while_runs_keep_their_version(
    flows: QflowService, alice: Person
) -> None:
    first = {
        "name": "pointer",
        "trigger": {"type": "manual"},
        "steps": [{"id": "mark", "action": "qindex.point", "with": {"key": "v", "cid": CID}}],
    }
    made = await create(alice, first)
    run = await ok(await alice.send("POST", f"/qflow/workflows/{made['id']}/runs", json={}), 201)
    second = json.loads(json.dumps(first))
    second["steps"][0]["with"]["key"] = "w"
    changed = await ok(
        await alice.send(
            "PUT", f"/qflow/workflows/{made['id']}", json={"definition": second, "note": "key w"}
        )
    )
    assert changed["version"] == 2
    diff = await ok(
        await alice.send("GET", f"/qflow/workflows/{made['id']}/diff", params={"from": 1})
    )
    assert '-        "key": "v"' in diff["diff"] and '+        "key": "w"' in diff["diff"]

    flows.engine.work()  # the run made at version 1 points `v`
    assert (await alice.send("GET", "/qindex/pointers/v")).status_code == 200
    back = await ok(
        await alice.send("POST", f"/qflow/workflows/{made['id']}/rollback", json={"version": 1})
    )
    assert back["version"] == 3 and back["definition"] == made["definition"]
    history = await ok(await alice.send("GET", f"/qflow/workflows/{made['id']}/versions"))
    assert [v["version"] for v in history] == [3, 2, 1] and history[0][
        "note"
    ] == "rolled back to version 1"
    assert (await ok(await alice.send("GET", f"/qflow/runs/{run['id']}")))["version"] == 1


async def test_bad_definitions_are_refused_with_what_is_wrong(
    http: httpx.AsyncClient, alice: Person, bob: Person
) -> None:
    step = {"id": "a", "action": "qindex.point", "with": {"key": "k", "cid": CID}}
    cases = [
        (
            {
                "name": "x",
                "trigger": {"type": "manual"},
                "steps": [{**step, "action": "shell.run"}],
            },
            "unknown action",
        ),
        ("name: [unclosed", "neither JSON nor YAML"),
        ({"name": "x", "trigger": {"type": "cron"}, "steps": [step]}, "trigger"),
        (
            {
                "name": "x",
                "trigger": {"type": "manual"},
                "steps": [{**step, "with": {"key": "{{ steps.later.output }}", "cid": CID}}],
            },
            "no earlier step",
        ),
        ({"name": "x", "trigger": {"type": "manual"}, "steps": [step, step]}, "distinct"),
        ({"name": "Bad Name", "trigger": {"type": "manual"}, "steps": [step]}, "name"),
    ]
    for definition, words in cases:
        refused = await alice.send("POST", "/qflow/workflows", json={"definition": definition})
        assert refused.status_code == 400, (definition, refused.text)
        assert words in refused.json()["detail"], refused.json()["detail"]
    good = {"name": "fine", "trigger": {"type": "manual"}, "steps": [step]}
    made = await create(alice, good)
    assert (
        await alice.send("POST", "/qflow/workflows", json={"definition": good})
    ).status_code == 409
    assert (await bob.send("GET", f"/qflow/workflows/{made['id']}")).status_code == 404
    assert (await http.get("/qflow/workflows")).status_code == 401
    actions = await ok(await http.get("/qflow/actions"))
    assert {"qwallet.pay", "qdrive.share", "qpic.strip"} <= {a["name"] for a in actions}


async def test_a_disabled_workflows_runs_wait_until_it_is_enabled(
    flows: QflowService, alice: Person
) -> None:
    definition = {
        "name": "paused",
        "trigger": {"type": "manual"},
        "steps": [{"id": "mark", "action": "qindex.point", "with": {"key": "p", "cid": CID}}],
    }
    made = await ok(
        await alice.send(
            "POST", "/qflow/workflows", json={"definition": definition, "enabled": False}
        ),
        201,
    )
    run = await ok(await alice.send("POST", f"/qflow/workflows/{made['id']}/runs", json={}), 201)
    assert flows.engine.work() == 0
    await ok(await alice.send("POST", f"/qflow/workflows/{made['id']}/enable"))
    assert flows.engine.work() == 1
    assert (await ok(await alice.send("GET", f"/qflow/runs/{run['id']}")))["status"] == "succeeded"
