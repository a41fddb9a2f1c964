"""DAOs through the HTTP API, on both backends: a DAO nobody can sign as, proposals with
actions, signed votes, delegation, the lifecycle to execution (once, whole, or not at
all), cancellation, token DAOs, and offline re-counts."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from anarq.dao import voting
from anarq.dao.service import RETRY_EVERY, DaoService
from anarq.kernel.clock import rfc3339
from anarq.kernel.node import Node
from anarq.squid import documents
from tests.qdrive.test_drive import Person
from tests.support.money import fund, later

PI = 10**8
FAST = {"voting_period_seconds": 60, "timelock_seconds": 60, "quorum_bps": 5000}


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
def daos(node: Node) -> DaoService:
    svc: DaoService = node.service("dao")
    return svc


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def make_dao(creator: Person, *others: Person, **fields: Any) -> dict[str, Any]:
    body = {
        "name": fields.pop("name", "Commons"),
        "members": [{"did": p.did} for p in others],
        "params": {**FAST, **fields.pop("params", {})},
        **fields,
    }
    return await ok(await creator.send("POST", "/dao/daos", json=body), 201)


async def propose(who: Person, dao: str, **fields: Any) -> dict[str, Any]:
    body = {"title": fields.pop("title", "Pay the builder"), **fields}
    return await ok(await who.send("POST", f"/dao/daos/{dao}/proposals", json=body), 201)


def signed_vote(who: Person, proposal: dict[str, Any], choice: Any) -> dict[str, Any]:
    document = voting.vote_document(
        dao=proposal["dao"],
        proposal=proposal["id"],
        voter=who.did,
        choice=choice,
        issued_at=rfc3339(datetime.now(UTC)),
    )
    return documents.sign(document, who.signer.key)


async def vote(who: Person, proposal: dict[str, Any], choice: Any, status: int = 201) -> Any:
    return await ok(
        await who.send(
            "POST",
            f"/dao/proposals/{proposal['id']}/votes",
            json=signed_vote(who, proposal, choice),
        ),
        status,
    )


async def balance(http: httpx.AsyncClient, operator: dict[str, str], did: str) -> int:
    ref = await http.get("/qwallet/accounts/lookup", params={"owner": did, "asset": "PI"})
    if ref.status_code == 404:
        return 0
    account = await ok(await http.get(f"/qwallet/accounts/{ref.json()['id']}", headers=operator))
    return int(account["balance"])


async def books_ok(http: httpx.AsyncClient, operator: dict[str, str]) -> None:
    books = await ok(await http.get("/qwallet/books", headers=operator))
    assert books["ok"], books["problems"]


# A DAO and its treasury --------------------------------------------------------------------


async def test_a_passed_transfer_executes_once_after_the_timelock(
    http: httpx.AsyncClient,
    operator: dict[str, str],
    node: Node,
    daos: DaoService,
    alice: Person,
    bob: Person,
    carol: Person,
) -> None:
    dao = await make_dao(alice, bob)
    assert dao["members"] == 2 and dao["membership"] == "members"
    identity = (await ok(await http.get(f"/squid/identities/{dao['did']}")))["identity"]
    assert identity["type"] == "DAO" and identity["parent_did"] == alice.did
    await fund(http, operator, dao["did"], 10)
    pay = {"type": "transfer", "asset": "PI", "to": carol.did, "amount": str(3 * PI)}

    made = await propose(alice, dao["did"], actions=[pay])
    assert made["state"] == "active" and made["total_power"] == "2" and made["quorum"] == "1"
    await vote(alice, made, 0)
    await vote(bob, made, 1)
    counted = await ok(await http.get(f"/dao/proposals/{made['id']}/tally"))
    assert counted["totals"] == ["1", "1", "0"] and not counted["passed"]  # a tie
    with later(node, timedelta(seconds=61)):
        daos.govern()
    tied = await ok(await http.get(f"/dao/proposals/{made['id']}"))
    assert tied["state"] == "defeated"

    again = await propose(alice, dao["did"], actions=[pay], title="Pay the builder, again")
    await vote(alice, again, 0)
    await vote(bob, again, 2)  # abstains: counts for quorum only
    with later(node, timedelta(seconds=61)):
        daos.govern()
        queued = daos.proposal(again["id"])
        assert queued.state == "queued" and queued.eta is not None
        early = await alice.send("POST", f"/dao/proposals/{again['id']}/execute")
        assert early.status_code == 409
    with later(node, timedelta(seconds=125)):
        daos.govern()
        daos.govern()  # once: nothing is left to run

    done = await ok(await http.get(f"/dao/proposals/{again['id']}"))
    assert done["state"] == "executed" and done["executed_at"] is not None
    assert await balance(http, operator, carol.did) == 3 * PI - 3 * PI * 50 // 10_000
    treasury = (await ok(await http.get(f"/dao/daos/{dao['did']}")))["treasury"]
    assert [int(t["balance"]) for t in treasury if t["asset"] == "PI"] == [7 * PI]
    await books_ok(http, operator)


async def test_only_members_propose_and_only_the_snapshot_votes(
    http: httpx.AsyncClient, alice: Person, bob: Person, carol: Person
) -> None:
    dao = await make_dao(alice, bob, params={"voting_delay_seconds": 3600})
    outsider = await carol.send("POST", f"/dao/daos/{dao['did']}/proposals", json={"title": "x"})
    assert outsider.status_code == 403 and "voting power" in outsider.json()["detail"]
    made = await propose(alice, dao["did"])
    assert made["state"] == "pending"
    early = await alice.send(
        "POST", f"/dao/proposals/{made['id']}/votes", json=signed_vote(alice, made, 0)
    )
    assert early.status_code == 409 and early.json()["code"] == "dao.proposal_state"

    open_now = await propose(alice, (await make_dao(alice, bob, name="Now"))["did"])
    refused = await carol.send(
        "POST", f"/dao/proposals/{open_now['id']}/votes", json=signed_vote(carol, open_now, 0)
    )
    assert refused.status_code == 422 and "no voting power" in refused.json()["detail"]
    await vote(bob, open_now, 0)
    twice = await bob.send(
        "POST", f"/dao/proposals/{open_now['id']}/votes", json=signed_vote(bob, open_now, 1)
    )
    assert twice.status_code == 409 and twice.json()["code"] == "dao.already_voted"
    forged = signed_vote(alice, open_now, 0)
    forged["choice"] = 1
    tampered = await alice.send("POST", f"/dao/proposals/{open_now['id']}/votes", json=forged)
    assert tampered.status_code == 422 and "signature" in tampered.json()["detail"]
    by_proxy = signed_vote(alice, open_now, 0)
    relayed = await carol.send("POST", f"/dao/proposals/{open_now['id']}/votes", json=by_proxy)
    assert relayed.status_code == 201  # carried by anyone, counted as alice's signed vote
    anonymous = await http.post(f"/dao/proposals/{open_now['id']}/votes", json=by_proxy)
    assert anonymous.status_code == 401
    bad = await alice.send(
        "POST", f"/dao/daos/{dao['did']}/proposals", json={"title": "t", "voting": "borda"}
    )
    assert bad.status_code == 422


async def test_a_failing_action_leaves_nothing_half_done(
    http: httpx.AsyncClient,
    operator: dict[str, str],
    node: Node,
    daos: DaoService,
    alice: Person,
    bob: Person,
    carol: Person,
) -> None:
    dao = await make_dao(alice, bob, params={"timelock_seconds": 0})
    actions = [
        {"type": "add_member", "member": carol.did},
        {"type": "transfer", "asset": "PI", "to": carol.did, "amount": str(5 * PI)},
    ]
    made = await propose(alice, dao["did"], actions=actions)
    await vote(alice, made, 0)
    await vote(bob, made, 0)

    with later(node, timedelta(seconds=61)):
        daos.govern()  # closes the vote
        daos.govern()  # tries to execute: the treasury is empty

    failed = await ok(await http.get(f"/dao/proposals/{made['id']}"))
    assert failed["state"] == "queued" and "exceeds_credits" in failed["last_error"]
    members = await ok(await http.get(f"/dao/daos/{dao['did']}/members"))
    assert carol.did not in [m["did"] for m in members]  # the first action rolled back too
    await fund(http, operator, dao["did"], 5)
    with later(node, timedelta(seconds=61) + RETRY_EVERY * 2):
        daos.govern()

    done = await ok(await http.get(f"/dao/proposals/{made['id']}"))
    assert done["state"] == "executed" and done["last_error"] is None
    members = await ok(await http.get(f"/dao/daos/{dao['did']}/members"))
    assert carol.did in [m["did"] for m in members]
    await books_ok(http, operator)


async def test_delegation_counts_as_it_stood_when_the_proposal_was_made(
    http: httpx.AsyncClient, node: Node, daos: DaoService, alice: Person, bob: Person, carol: Person
) -> None:
    dao = await make_dao(
        alice, params={"proposal_threshold": "1"}, members=[{"did": bob.did, "weight": "100"}]
    )
    lent = await ok(
        await bob.send(
            "POST",
            f"/dao/daos/{dao['did']}/delegations",
            json={"delegate": carol.did, "share_bps": 2500},
        ),
        201,
    )
    too_much = await bob.send(
        "POST",
        f"/dao/daos/{dao['did']}/delegations",
        json={"delegate": alice.did, "share_bps": 8000},
    )
    assert too_much.status_code == 409
    power = await ok(await http.get(f"/dao/daos/{dao['did']}/power"))
    assert power == {alice.did: "1", bob.did: "75", carol.did: "25"}

    made = await propose(carol, dao["did"])  # carol holds power only through bob
    await ok(await bob.send("DELETE", f"/dao/delegations/{lent['id']}"))
    counted = await vote(carol, made, 0)
    assert counted["power"] == "25"  # the snapshot, not the delegation ended since
    expiring = {
        "delegate": alice.did,
        "share_bps": 10_000,
        "expires_at": rfc3339(datetime.now(UTC) + timedelta(hours=1)),
    }
    await ok(await bob.send("POST", f"/dao/daos/{dao['did']}/delegations", json=expiring), 201)
    assert daos.power(dao["did"])[alice.did] == 101
    assert daos.power(dao["did"], at=datetime.now(UTC) + timedelta(hours=2))[alice.did] == 1


async def test_votes_are_counted_again_offline_from_the_signed_ballots(
    http: httpx.AsyncClient, node: Node, daos: DaoService, alice: Person, bob: Person, carol: Person
) -> None:
    dao = await make_dao(alice, bob, carol)
    made = await propose(alice, dao["did"], voting="ranked", choices=["Ada", "Bo", "Cy"])
    await vote(alice, made, [0, 1])
    await vote(bob, made, [1, 0])
    await vote(carol, made, [2, 0])
    with later(node, timedelta(seconds=61)):
        daos.govern()
    ballots = await ok(await http.get(f"/dao/proposals/{made['id']}/ballots"))
    assert len(ballots["votes"]) == 3 and ballots["result"]["winner"] == 0

    counted, problems = voting.tally_offline(json.loads(json.dumps(ballots)))

    assert problems == [] and counted.as_json() == ballots["result"]
    forged = copy.deepcopy(ballots)
    forged["votes"][1]["choice"] = [2, 1]
    recounted, refused = voting.tally_offline(forged)
    assert len(refused) == 1 and "signature" in refused[0] and recounted.voters == 2
    padded = copy.deepcopy(ballots)
    padded["snapshot"]["power"][bob.did] = "1000"
    with pytest.raises(voting.BallotInvalid):
        voting.tally_offline(padded)


async def test_cancelling_is_for_the_proposer_and_the_cancellers(
    http: httpx.AsyncClient, node: Node, daos: DaoService, alice: Person, bob: Person, carol: Person
) -> None:
    dao = await make_dao(alice, bob, params={"cancellers": [carol.did]})
    made = await propose(alice, dao["did"], actions=[{"type": "add_member", "member": carol.did}])
    assert (await bob.send("POST", f"/dao/proposals/{made['id']}/cancel")).status_code == 403
    await vote(alice, made, 0)
    await vote(bob, made, 0)
    with later(node, timedelta(seconds=61)):
        daos.govern()
    late = await alice.send("POST", f"/dao/proposals/{made['id']}/cancel")
    assert late.status_code == 409  # the proposer's chance ended with the vote

    cancelled = await ok(await carol.send("POST", f"/dao/proposals/{made['id']}/cancel"))

    assert cancelled["state"] == "cancelled"
    with later(node, timedelta(seconds=200)):
        daos.govern()
    assert (await ok(await http.get(f"/dao/proposals/{made['id']}")))["state"] == "cancelled"


# Token DAOs and the other actions -------------------------------------------------------


async def test_a_token_dao_votes_by_balance_mints_changes_itself_and_grants(
    http: httpx.AsyncClient,
    operator: dict[str, str],
    node: Node,
    daos: DaoService,
    alice: Person,
    bob: Person,
    carol: Person,
) -> None:
    body = {
        "name": "Guild",
        "membership": "token",
        "issue": {"code": "GLD", "name": "Guild", "holders": {alice.did: "60", bob.did: "40"}},
        "params": {**FAST, "timelock_seconds": 0, "quorum_bps": 6000},
    }
    dao = await ok(await alice.send("POST", "/dao/daos", json=body), 201)
    assert dao["token"] == "GLD" and dao["members"] == 2
    holders = await ok(await http.get(f"/dao/daos/{dao['did']}/members"))
    assert {m["did"]: m["power"] for m in holders} == {alice.did: "60", bob.did: "40"}
    actions = [
        {"type": "mint", "asset": "GLD", "to": carol.did, "amount": "25"},
        {"type": "set_params", "params": {"quorum_bps": 3000}},
        {
            "type": "grant",
            "grantee": carol.did,
            "resource": f"dao:dao:{dao['did']}",
            "actions": ["read"],
        },
    ]
    made = await propose(alice, dao["did"], actions=actions)
    assert made["quorum"] == "60"
    await vote(alice, made, 0)  # 60 of 100: the quorum exactly
    with later(node, timedelta(seconds=61)):
        daos.govern()
        daos.govern()

    done = await ok(await http.get(f"/dao/proposals/{made['id']}"))
    assert done["state"] == "executed", done
    holders = await ok(await http.get(f"/dao/daos/{dao['did']}/members"))
    assert {m["did"]: m["power"] for m in holders}[carol.did] == "25"
    assert (await ok(await http.get(f"/dao/daos/{dao['did']}")))["params"]["quorum_bps"] == 3000
    grants = await ok(await carol.send("GET", "/qonsent/what-can", params={"actor": carol.did}))
    assert any(g["resource"] == f"dao:dao:{dao['did']}" for g in grants)
    await books_ok(http, operator)


async def test_impossible_actions_are_refused_when_proposed(
    alice: Person, bob: Person, carol: Person
) -> None:
    dao = await make_dao(alice, bob)
    for action in (
        {"type": "mint", "asset": "PI", "to": carol.did, "amount": "1"},
        {"type": "transfer", "asset": "NOPE", "to": carol.did, "amount": "1"},
        {"type": "transfer", "asset": "PI", "to": "did:key:z6MkNobody", "amount": "1"},
        {"type": "grant", "grantee": carol.did, "resource": "not a resource", "actions": ["read"]},
    ):
        refused = await alice.send(
            "POST", f"/dao/daos/{dao['did']}/proposals", json={"title": "t", "actions": [action]}
        )
        assert refused.status_code == 400, (action, refused.text)
    unknown = await alice.send(
        "POST",
        f"/dao/daos/{dao['did']}/proposals",
        json={"title": "t", "actions": [{"type": "self_destruct"}]},
    )
    assert unknown.status_code == 422


async def test_joining_leaving_and_bad_daos(
    http: httpx.AsyncClient, alice: Person, bob: Person
) -> None:
    closed = await make_dao(alice)
    assert (await bob.send("POST", f"/dao/daos/{closed['did']}/members")).status_code == 403
    club = await make_dao(alice, open=True, name="Club")
    joined = await ok(await bob.send("POST", f"/dao/daos/{club['did']}/members"), 201)
    assert joined["did"] == bob.did
    assert (await bob.send("POST", f"/dao/daos/{club['did']}/members")).status_code == 409
    assert (await bob.send("DELETE", f"/dao/daos/{club['did']}/members/me")).status_code == 204
    mixed = {
        "name": "X",
        "membership": "token",
        "token": "PI",
        "issue": {"code": "ZZ", "name": "z"},
    }
    assert (await alice.send("POST", "/dao/daos", json=mixed)).status_code == 422
    no_asset = {"name": "X", "membership": "token", "token": "NOPE"}
    assert (await alice.send("POST", "/dao/daos", json=no_asset)).status_code == 400
    stranger = {"name": "X", "members": [{"did": "did:key:z6MkNobody"}]}
    assert (await alice.send("POST", "/dao/daos", json=stranger)).status_code in (400, 404)
    assert (await http.post("/dao/daos", json={"name": "X"})).status_code == 401
    listed = await ok(await http.get("/dao/daos", params={"member": alice.did}))
    assert {d["did"] for d in listed} == {closed["did"], club["did"]}


async def test_erasure_leaves_every_dao_and_ends_delegations(
    http: httpx.AsyncClient, node: Node, daos: DaoService, alice: Person, bob: Person
) -> None:
    from anarq.kernel.guard import Context

    dao = await make_dao(alice, bob)
    await ok(
        await bob.send(
            "POST",
            f"/dao/daos/{dao['did']}/delegations",
            json={"delegate": alice.did, "share_bps": 5000},
        ),
        201,
    )
    made = await propose(alice, dao["did"])
    await vote(bob, made, 0)
    exported = {item.name for item in daos.export_subject(Context.system(), bob.did)}
    assert exported == {
        "dao/memberships.json",
        "dao/delegations.json",
        "dao/proposals.json",
        "dao/votes.json",
    }

    erased = daos.erase_subject(Context.system(), bob.did)

    assert erased == {"memberships": 1, "delegations": 1}
    members = await ok(await http.get(f"/dao/daos/{dao['did']}/members"))
    assert bob.did not in [m["did"] for m in members]
    assert daos.delegations(dao["did"]) == []
    assert (await ok(await http.get(f"/dao/proposals/{made['id']}")))["votes"] == 1  # it stays


async def test_a_passed_proposal_runs_a_workflow_as_the_dao(
    http: httpx.AsyncClient,
    operator: dict[str, str],
    node: Node,
    daos: DaoService,
    alice: Person,
    bob: Person,
    carol: Person,
) -> None:
    dao = await make_dao(alice, bob, params={"timelock_seconds": 0})
    await fund(http, operator, dao["did"], 10)
    workflow = {
        "name": "grants-round",
        "trigger": {"type": "manual"},
        "steps": [
            {
                "id": "pay",
                "action": "qwallet.pay",
                "with": {"to": "{{ trigger.data.to }}", "asset": "PI", "amount": str(2 * PI)},
            }
        ],
    }
    broken = {**workflow, "steps": [{"id": "x", "action": "rm.rf"}]}
    refused = await alice.send(
        "POST",
        f"/dao/daos/{dao['did']}/proposals",
        json={"title": "t", "actions": [{"type": "run_workflow", "definition": broken}]},
    )
    assert refused.status_code == 400 and "unknown action" in refused.json()["detail"]
    action = {"type": "run_workflow", "definition": workflow, "input": {"to": carol.did}}
    made = await propose(alice, dao["did"], actions=[action])
    await vote(alice, made, 0)
    await vote(bob, made, 0)

    with later(node, timedelta(seconds=61)):
        daos.govern()
        daos.govern()
        node.service("qflow").engine.work()  # the run the vote queued, as the DAO

    assert (await ok(await http.get(f"/dao/proposals/{made['id']}")))["state"] == "executed"
    assert await balance(http, operator, carol.did) == 2 * PI - 2 * PI * 50 // 10_000
    treasury = (await ok(await http.get(f"/dao/daos/{dao['did']}")))["treasury"]
    assert [int(t["balance"]) for t in treasury if t["asset"] == "PI"] == [8 * PI]


async def test_a_batch_takes_each_voter_once_across_batches(
    http: httpx.AsyncClient, alice: Person, bob: Person, carol: Person
) -> None:
    proposal = await propose(alice, (await make_dao(alice, bob))["did"])
    path = f"/dao/proposals/{proposal['id']}/votes/batch"
    first = [signed_vote(alice, proposal, 0), signed_vote(alice, proposal, 1)]
    result = await ok(await alice.send("POST", path, json={"votes": first}))
    assert result["accepted"] == 1
    assert [(r["index"], r["voter"]) for r in result["refused"]] == [(1, alice.did)]

    again = [signed_vote(bob, proposal, 0), signed_vote(alice, proposal, 2)]
    second = await ok(await alice.send("POST", path, json={"votes": again}))
    assert second["accepted"] == 1, "bob's vote is new; alice's was cast in the first batch"
    assert [(r["index"], r["reason"]) for r in second["refused"]] == [
        (1, f"{alice.did} voted already")
    ]
    outsider = [signed_vote(carol, proposal, 0)]
    third = await ok(await alice.send("POST", path, json={"votes": outsider}))
    assert third["accepted"] == 0 and "no voting power" in third["refused"][0]["reason"]
    tally = await ok(await http.get(f"/dao/proposals/{proposal['id']}/tally"))
    assert tally["voters"] == 2
