"""`anarq dao …`: create and join DAOs, propose, vote (signed here, with your key),
delegate, follow a proposal to its execution, and count any proposal again offline."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from anarq.cli.output import JSON_OPTION, URL_OPTION, console, emit_fields, emit_json, emit_table
from anarq.dao import voting
from anarq.kernel.clock import rfc3339
from anarq.qonsent.cli import parse_duration
from anarq.qwallet.cli import IDENTITY_OPTION, asset_scale, to_units
from anarq.sdk import Client
from anarq.squid import documents
from anarq.squid.cli import signed_client

app = typer.Typer(no_args_is_help=True)

DAO_ARGUMENT = typer.Argument(..., help="The DAO's DID.")
PROPOSAL_ARGUMENT = typer.Argument(..., help="The proposal's id.")


def _seconds(text: str | None) -> int | None:
    return None if text is None else int(parse_duration(text).total_seconds())


def _pairs(items: list[str], what: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.rpartition("=")
        if not sep or not key or not value:
            raise typer.BadParameter(f"{what} is NAME=VALUE, not {item!r}")
        found[key] = value
    return found


@app.command("create")
def create(
    name: str = typer.Option(..., "--name"),
    member: list[str] = typer.Option(
        [], "--member", help="DID or DID=weight (repeatable); you are a member too."
    ),
    open_: bool = typer.Option(False, "--open", help="Anyone may join (a members DAO)."),
    token: str | None = typer.Option(None, "--token", help="Vote with this asset's balance."),
    issue: str | None = typer.Option(None, "--issue", help="Issue a governance token: CODE."),
    holder: list[str] = typer.Option(
        [], "--holder", help="With --issue: DID=amount minted at creation (repeatable)."
    ),
    threshold: str = typer.Option("1", "--threshold", help="Power needed to propose."),
    voting_delay: str | None = typer.Option(None, "--voting-delay", help="e.g. 1h [none]"),
    voting_period: str = typer.Option("3d", "--voting-period", help="e.g. 3d"),
    quorum_pct: float = typer.Option(20, "--quorum-pct", help="Share of all power that votes."),
    pass_pct: float = typer.Option(50, "--pass-pct", help="Share of For among For+Against."),
    timelock: str | None = typer.Option("1d", "--timelock", help="Wait before executing."),
    canceller: list[str] = typer.Option([], "--canceller", help="May cancel any proposal."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a DAO: a members DAO (one vote per weight) or a token DAO (one vote per unit)."""
    params = {
        "proposal_threshold": threshold,
        "voting_delay_seconds": _seconds(voting_delay) or 0,
        "voting_period_seconds": _seconds(voting_period),
        "quorum_bps": round(quorum_pct * 100),
        "pass_bps": round(pass_pct * 100),
        "timelock_seconds": _seconds(timelock) if timelock not in (None, "0") else 0,
        "cancellers": canceller,
    }
    body: dict[str, Any] = {"name": name, "params": params}
    if token or issue:
        body["membership"] = "token"
        if token:
            body["token"] = token
        else:
            held = {did: amount for did, amount in _pairs(holder, "--holder").items()}
            body["issue"] = {"code": issue, "name": f"{name} token", "holders": held}
    else:
        members = []
        for item in member:
            did, _, weight = item.partition("=")
            members.append({"did": did, "weight": weight or "1"})
        body.update({"membership": "members", "members": members, "open": open_})
    with signed_client(url, identity) as node:
        made = node.request("POST", "/dao/daos", json=body)
    if as_json:
        emit_json(made)
        return
    console.print(f"created DAO {made['name']!r} ({made['members']} members)")
    console.print(f"[dim]{made['did']}[/dim]")


@app.command("ls")
def ls(
    mine: bool = typer.Option(False, "--mine", help="Only DAOs you are a member of."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """DAOs on the node."""
    with signed_client(url, identity) as node:
        params = {"member": node.signer.did} if mine and node.signer else {}
        found: list[dict[str, Any]] = node.request("GET", "/dao/daos", params=params)
    if as_json:
        emit_json(found)
        return
    emit_table(found, ["did", "name", "membership", "members"], title="DAOs", whole=["did"])


@app.command("join")
def join(
    dao: str = DAO_ARGUMENT, identity: str | None = IDENTITY_OPTION, url: str | None = URL_OPTION
) -> None:
    """Join an open members DAO."""
    with signed_client(url, identity) as node:
        node.request("POST", f"/dao/daos/{dao}/members")
    console.print(f"joined {dao}")


@app.command("leave")
def leave(
    dao: str = DAO_ARGUMENT, identity: str | None = IDENTITY_OPTION, url: str | None = URL_OPTION
) -> None:
    """Leave a members DAO."""
    with signed_client(url, identity) as node:
        node.request("DELETE", f"/dao/daos/{dao}/members/me")
    console.print(f"left {dao}")


@app.command("members")
def members(
    dao: str = DAO_ARGUMENT,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Members and their power (a token DAO: its holders)."""
    with signed_client(url, identity) as node:
        found: list[dict[str, Any]] = node.request("GET", f"/dao/daos/{dao}/members")
    emit_json(found) if as_json else emit_table(
        found, ["did", "power"], title="members", whole=["did"]
    )


@app.command("delegate")
def delegate(
    dao: str = DAO_ARGUMENT,
    to: str = typer.Option(..., "--to", help="Whom to lend your voting power to."),
    share: float = typer.Option(100, "--share", help="Percent of your own power."),
    expires: str | None = typer.Option(None, "--expires", help="e.g. 30d [never]"),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Lend a share of your voting power (proposals made while it lasts count it)."""
    body: dict[str, Any] = {"delegate": to, "share_bps": round(share * 100)}
    if expires:
        body["expires_at"] = rfc3339(datetime.now(UTC) + parse_duration(expires))
    with signed_client(url, identity) as node:
        made = node.request("POST", f"/dao/daos/{dao}/delegations", json=body)
    emit_json(made) if as_json else console.print(f"lent {share:g} % of your power to {to}")


def _actions(
    node: Client, pay: list[str], actions: list[str], actions_file: Path | None
) -> list[Any]:
    found: list[Any] = []
    for item in pay:
        to, _, rest = item.rpartition("=")
        amount, _, asset = rest.partition(":")
        if not to or not amount:
            raise typer.BadParameter(f"--pay is DID=AMOUNT[:ASSET], not {item!r}")
        asset = asset or "PI"
        units = to_units(amount, asset_scale(node, asset))
        found.append({"type": "transfer", "to": to, "asset": asset, "amount": str(units)})
    for text in actions:
        try:
            found.append(json.loads(text))
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"--action is not JSON: {exc}") from None
    if actions_file is not None:
        loaded = json.loads(actions_file.read_text())
        found.extend(loaded if isinstance(loaded, list) else [loaded])
    return found


@app.command("propose")
def propose(
    dao: str = DAO_ARGUMENT,
    title: str = typer.Option(..., "--title"),
    body: str = typer.Option("", "--body"),
    voting_type: str = typer.Option(
        "single", "--voting", help="single, approval, weighted, quadratic or ranked."
    ),
    choice: list[str] = typer.Option(
        [], "--choice", help="A choice (repeatable) [For, Against, Abstain]."
    ),
    pay: list[str] = typer.Option(
        [], "--pay", help="From the treasury: DID=AMOUNT[:ASSET], e.g. did:key:z…=2.5:PI."
    ),
    action: list[str] = typer.Option([], "--action", help="An action as JSON (repeatable)."),
    actions_file: Path | None = typer.Option(
        None, "--actions-file", help="A JSON list of actions."
    ),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Propose; if choice 0 wins, the actions run once after the timelock."""
    with signed_client(url, identity) as node:
        request: dict[str, Any] = {
            "title": title,
            "body": body,
            "voting": voting_type,
            "actions": _actions(node, pay, action, actions_file),
        }
        if choice:
            request["choices"] = choice
        made = node.request("POST", f"/dao/daos/{dao}/proposals", json=request)
    if as_json:
        emit_json(made)
        return
    console.print(f"proposed {made['title']!r}: voting {made['starts_at']} to {made['ends_at']}")
    console.print(f"[dim]proposal {made['id']}[/dim]")


@app.command("proposals")
def proposals(
    dao: str = DAO_ARGUMENT,
    state: str | None = typer.Option(None, "--state"),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """A DAO's proposals, newest first."""
    with signed_client(url, identity) as node:
        found: list[dict[str, Any]] = node.request(
            "GET", f"/dao/daos/{dao}/proposals", params={"state": state} if state else {}
        )
    if as_json:
        emit_json(found)
        return
    rows = [{**p, "ends": p["ends_at"][:16].replace("T", " ")} for p in found]
    emit_table(rows, ["id", "title", "state", "votes", "ends"], title="proposals", whole=["id"])


@app.command("show")
def show(
    proposal: str = PROPOSAL_ARGUMENT,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """A proposal: its rules, state, actions and count."""
    with signed_client(url, identity) as node:
        made: dict[str, Any] = node.request("GET", f"/dao/proposals/{proposal}")
        count = node.request("GET", f"/dao/proposals/{proposal}/tally")
    if as_json:
        emit_json({**made, "tally": count})
        return
    emit_fields(
        {
            "proposal": made["id"],
            "title": made["title"],
            "state": made["state"],
            "voting": f"{made['voting']}: "
            + ", ".join(f"{i} {c} ({count['totals'][i]})" for i, c in enumerate(made["choices"])),
            "turnout": f"{count['turnout']} of {made['total_power']} (quorum {made['quorum']})",
            "passes": "yes" if count["passed"] else "no",
            "ends": made["ends_at"],
            "executes": made["eta"] or "",
            "actions": json.dumps(made["actions"]),
            "error": made["last_error"] or "",
        }
    )


@app.command("vote")
def vote(
    proposal: str = PROPOSAL_ARGUMENT,
    choice: list[int] = typer.Option(
        [], "--choice", help="A choice's number; repeat for approval, or in order for ranked."
    ),
    weight: list[str] = typer.Option([], "--weight", help="Weighted/quadratic: CHOICE=PARTS."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Vote: the ballot is signed here with your key, and counts as signed."""
    with signed_client(url, identity) as node:
        made: dict[str, Any] = node.request("GET", f"/dao/proposals/{proposal}")
        kind = made["voting"]
        if kind in ("weighted", "quadratic"):
            ballot: Any = {k: int(v) for k, v in _pairs(weight, "--weight").items()}
        elif kind == "single":
            if len(choice) != 1:
                raise typer.BadParameter("a single-choice vote names one --choice")
            ballot = choice[0]
        else:
            ballot = choice
        assert node.signer is not None
        document = voting.vote_document(
            dao=made["dao"],
            proposal=proposal,
            voter=node.signer.did,
            choice=ballot,
            issued_at=rfc3339(datetime.now(UTC)),
        )
        receipt = node.request(
            "POST",
            f"/dao/proposals/{proposal}/votes",
            json=documents.sign(document, node.signer.key),
        )
    emit_json(receipt) if as_json else console.print(f"voted with {receipt['power']} power")


def _act(verb: str, proposal: str, url: str | None, identity: str | None, as_json: bool) -> None:
    with signed_client(url, identity) as node:
        made = node.request("POST", f"/dao/proposals/{proposal}/{verb}")
    emit_json(made) if as_json else console.print(f"proposal {proposal} is {made['state']}")


@app.command("queue")
def queue(
    proposal: str = PROPOSAL_ARGUMENT,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Close a vote that ended: counted, and queued behind the timelock if it passed."""
    _act("queue", proposal, url, identity, as_json)


@app.command("execute")
def execute(
    proposal: str = PROPOSAL_ARGUMENT,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Execute a queued proposal whose timelock passed (the node does it on its own)."""
    _act("execute", proposal, url, identity, as_json)


@app.command("cancel")
def cancel(
    proposal: str = PROPOSAL_ARGUMENT,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Cancel a proposal (its proposer, or one of the DAO's cancellers)."""
    _act("cancel", proposal, url, identity, as_json)


@app.command("tally")
def tally(
    proposal: str | None = typer.Argument(None, help="The proposal (to count on the node)."),
    offline: Path | None = typer.Option(
        None, "--offline", exists=True, dir_okay=False, help="Count an exported ballots file."
    ),
    export: Path | None = typer.Option(None, "--export", help="Save the ballots to this file."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The count of a proposal; `--export` saves its signed snapshot and votes, and
    `--offline FILE` checks every signature in such a file and counts it again here."""
    if offline is not None:
        ballots = json.loads(offline.read_text())
        try:
            counted, problems = voting.tally_offline(ballots)
        except voting.BallotInvalid as exc:
            console.print(f"[red]cannot count[/red]: {exc}")
            raise typer.Exit(1) from None
        recorded = ballots.get("result")
        agrees = recorded is None or {k: v for k, v in recorded.items() if k != "rounds"} == {
            k: v for k, v in counted.as_json().items() if k != "rounds"
        }
        report = {**counted.as_json(), "refused": problems, "matches_node": agrees}
        if as_json:
            emit_json(report)
        else:
            emit_fields(
                {
                    "totals": ", ".join(counted.as_json()["totals"]),
                    "turnout": counted.turnout,
                    "voters": counted.voters,
                    "passed": "yes" if counted.passed else "no",
                    "refused": len(problems),
                    "the node's result": "the same" if agrees else "DIFFERENT",
                }
            )
        raise typer.Exit(0 if agrees else 1)
    if proposal is None:
        raise typer.BadParameter("name a proposal, or --offline FILE")
    with signed_client(url, identity) as node:
        if export is not None:
            ballots = node.request("GET", f"/dao/proposals/{proposal}/ballots")
            export.write_text(json.dumps(ballots))
            console.print(
                f"wrote {len(ballots['votes'])} signed votes and the snapshot to {export}"
            )
            return
        count = node.request("GET", f"/dao/proposals/{proposal}/tally")
    if as_json:
        emit_json(count)
    else:
        sys.stdout.write(json.dumps(count, indent=2) + "\n")
