"""DAO: communities that decide together, and whose decisions carry themselves out.

A DAO is a sQuid identity of type DAO whose key nobody keeps: it is generated when the
DAO is made, signs its consent to be a sub-identity of its creator, and is dropped. So no
person can act as the DAO; the node acts for it, and only to carry out proposals its
members passed. Its treasury is its own Qwallet accounts.

Voting power is a member's weight, or a token's balance, plus what others delegated to
it (a share of their own power, until an expiry), as it stood when the proposal was
made: the node writes that snapshot, signed, with the proposal. Votes are documents
signed by their voters; the signed snapshot and votes can be exported and counted again
anywhere (`voting.tally_offline`).

A proposal is `pending` until its voting delay passes, `active` for its voting period,
then `succeeded` or `defeated`. One that succeeded with actions is `queued` with an `eta`
after the DAO's timelock, and the node executes it once the eta passes: all its actions
in one transaction (treasury transfers and mints through Qwallet's ledger agent,
parameter and membership changes, Qonsent grants by the DAO), or none of them. A failed
attempt is retried until the execution grace ends (`expired`). The proposer, or one of
the DAO's cancellers, may cancel it before it executes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from anarq.dao import tables, voting
from anarq.dao.execution import Executor
from anarq.dao.models import (
    Account,
    DaoCreate,
    DaoInfo,
    DelegateRequest,
    Delegation,
    Member,
    Params,
    Proposal,
    ProposalCreate,
    VoteBatchResult,
    VoteReceipt,
    VoteRefusal,
)
from anarq.kernel import Kernel
from anarq.kernel.clock import rfc3339
from anarq.kernel.db import insert_new
from anarq.kernel.errors import AnarqError, BadRequest, Conflict, Forbidden, NotFound
from anarq.kernel.guard import Actor, Context
from anarq.kernel.ids import new_id
from anarq.kernel.subject import ExportItem, json_item
from anarq.node.service import NodeService
from anarq.qflow.service import QflowService
from anarq.qlock import SigningKey, encode_signature, sign
from anarq.qonsent.service import QonsentService
from anarq.qwallet.models import IssueRequest, MintRequest
from anarq.qwallet.service import WalletService
from anarq.squid import documents
from anarq.squid.didkey import did_from_ed25519
from anarq.squid.models import IdentityType, SubIdentityRequest
from anarq.squid.service import SquidService, sub_statement

log = logging.getLogger(__name__)

OPEN_STATES = ("pending", "active")
GOVERNANCE_EVERY_SECONDS = 1.0
GOVERNANCE_BATCH = 50
RETRY_EVERY = timedelta(seconds=60)
PAGE_MAX = 100

_d, _m, _dl, _p = tables.daos, tables.members, tables.delegations, tables.proposals
_pw, _v = tables.power, tables.votes
# A proposal's columns but its snapshot (megabytes at 100,000 voters): read only to export.
_PROPOSAL = [column for column in _p.c if column.name != "snapshot"]


def dao_resource(did: str) -> str:
    return f"dao:dao:{did}"


def proposal_resource(proposal_id: str) -> str:
    return f"dao:proposal:{proposal_id}"


class VoteRefused(AnarqError):
    code = "dao.vote_refused"
    status = 422
    title = "Vote refused"


class AlreadyVoted(Conflict):
    code = "dao.already_voted"


class ProposalState(Conflict):
    code = "dao.proposal_state"


class DaoService:
    erase_order = 70

    def __init__(
        self,
        kernel: Kernel,
        node: NodeService,
        squid: SquidService,
        qonsent: QonsentService,
        wallet: WalletService,
        qflow: QflowService,
    ) -> None:
        self.k = kernel
        self.node = node
        self.squid = squid
        self.qonsent = qonsent
        self.wallet = wallet
        self.executor = Executor(kernel, squid, qonsent, wallet, qflow)

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """A guard policy: identities may act on DAOs and proposals (the service checks who
        may do what: a member joins, a signed vote counts, the DAO itself executes)."""
        return ctx.actor.kind == "identity" and resource.startswith(("dao:dao:", "dao:proposal:"))

    # DAOs --------------------------------------------------------------------------------

    def create(self, ctx: Context, request: DaoCreate) -> DaoInfo:
        """A new DAO, a sub-identity of its creator whose key is dropped at once."""
        creator = ctx.identity("a DAO")
        members = {m.did: m.weight for m in request.members}
        if request.membership == "members":
            members.setdefault(creator, 1)
        for did in [*members, *(request.issue.holders if request.issue else {})]:
            self._require_identity(did)
        for did in request.params.cancellers:
            self._require_identity(did)
        if request.token is not None:
            self._require_asset(request.token)
        if request.issue is not None:
            try:
                self.wallet.asset(request.issue.code)
                raise Conflict(f"asset {request.issue.code} exists: name a new code")
            except NotFound:
                pass
        dao = self._new_dao_identity(ctx, creator, request.name)
        now = self.k.clock.now()
        token = request.token or (request.issue.code if request.issue else None)
        with self.k.change(ctx, "write", dao_resource(dao)) as tx:
            tx.execute(
                insert(_d).values(
                    did=dao,
                    name=request.name,
                    creator=creator,
                    membership=request.membership,
                    token=token,
                    open=int(request.open),
                    params=request.params.model_dump_json(),
                    created_at=now,
                    updated_at=now,
                )
            )
            for did, weight in members.items():
                tx.execute(
                    insert(_m).values(dao=dao, member=did, weight=str(weight), joined_at=now)
                )
            self.qonsent.register_owner(tx, dao_resource(dao), dao)
            self._announce(tx, ctx, "dao.dao.created", dao, {"dao": dao, "name": request.name})
        if request.issue is not None:
            self._issue_token(dao, request)
        return self.dao(dao)

    def _new_dao_identity(self, ctx: Context, creator: str, name: str) -> str:
        key = SigningKey.generate(hybrid=False)
        did = did_from_ed25519(key.verify_key.ed25519_bytes())
        proof = encode_signature(sign(key, sub_statement(creator, did)))
        self.squid.create_sub(
            ctx, creator, SubIdentityRequest(did=did, type=IdentityType.DAO, name=name, proof=proof)
        )
        return did  # the key goes out of scope here: nobody can sign as the DAO

    def _issue_token(self, dao: str, request: DaoCreate) -> None:
        assert request.issue is not None
        issue = request.issue
        as_dao = self._as(dao)
        self.wallet.issue(
            as_dao,
            IssueRequest(
                code=issue.code, name=issue.name, scale=issue.scale, supply_cap=issue.supply_cap
            ),
        )
        for n, (did, amount) in enumerate(issue.holders.items()):
            self.wallet.mint(
                as_dao,
                issue.code,
                MintRequest(id=f"dao-{issue.code}-genesis-{n}", to=did, amount=amount),
            )

    def dao(self, did: str) -> DaoInfo:
        row = self._dao_row(did)
        with self.k.db.read() as conn:
            count = conn.execute(select(func.count()).where(_m.c.dao == did)).scalar_one()
        treasury = [
            Account(asset=a.asset, account=a.id, balance=a.balance or 0)
            for a in self.wallet.accounts(self._as(did))
            if a.name == "main"
        ]
        members = len(self._own_power(row)) if row["membership"] == "token" else int(count)
        return DaoInfo(
            did=row["did"],
            name=row["name"],
            creator=row["creator"],
            membership=row["membership"],
            token=row["token"],
            open=bool(row["open"]),
            params=Params.model_validate_json(row["params"]),
            members=members,
            treasury=treasury,
            created_at=row["created_at"],
        )

    def daos(self, *, member: str | None = None, limit: int = PAGE_MAX) -> list[DaoInfo]:
        query = (
            select(_d.c.did).order_by(_d.c.created_at.desc()).limit(max(1, min(limit, PAGE_MAX)))
        )
        if member is not None:
            query = query.where(_d.c.did.in_(select(_m.c.dao).where(_m.c.member == member)))
        with self.k.db.read() as conn:
            dids = list(conn.execute(query).scalars())
        return [self.dao(did) for did in dids]

    def participation(self, did: str) -> dict[str, int]:
        """What reputation counts of an identity's governance here: votes cast,
        proposals of its own executed, DAOs it is a member of."""
        with self.k.db.read() as conn:
            votes = conn.execute(select(func.count()).select_from(_v).where(_v.c.voter == did))
            executed = conn.execute(
                select(func.count())
                .select_from(_p)
                .where(_p.c.proposer == did, _p.c.state == "executed")
            )
            memberships = conn.execute(
                select(func.count(func.distinct(_m.c.dao))).where(_m.c.member == did)
            )
            return {
                "votes": int(votes.scalar_one()),
                "executed": int(executed.scalar_one()),
                "memberships": int(memberships.scalar_one()),
            }

    def members(self, did: str) -> list[Member]:
        row = self._dao_row(did)
        if row["membership"] == "token":
            return [
                Member(did=owner, power=amount)
                for owner, amount in sorted(self._own_power(row).items())
            ]
        with self.k.db.read() as conn:
            rows = conn.execute(select(_m).where(_m.c.dao == did).order_by(_m.c.joined_at))
            return [Member(did=r.member, power=int(r.weight), joined_at=r.joined_at) for r in rows]

    def join(self, ctx: Context, did: str) -> Member:
        """Join an open members DAO, with weight 1."""
        me = ctx.identity("a membership")
        row = self._dao_row(did)
        if row["membership"] != "members" or not row["open"]:
            raise Forbidden("this DAO takes members by vote only (an add_member proposal)")
        now = self.k.clock.now()
        try:
            with self.k.change(ctx, "write", dao_resource(did)) as tx:
                tx.execute(insert(_m).values(dao=did, member=me, weight="1", joined_at=now))
                self._announce(tx, ctx, "dao.member.joined", did, {"dao": did, "member": me})
        except IntegrityError:
            raise Conflict("you are a member already") from None
        return Member(did=me, power=1, joined_at=now)

    def leave(self, ctx: Context, did: str) -> None:
        me = ctx.identity("a membership")
        self._dao_row(did)
        with self.k.change(ctx, "write", dao_resource(did)) as tx:
            gone = tx.execute(delete(_m).where(_m.c.dao == did, _m.c.member == me)).rowcount
            if not gone:
                raise NotFound("you are not a member")
            self._announce(tx, ctx, "dao.member.left", did, {"dao": did, "member": me})

    # Delegation --------------------------------------------------------------------------

    def delegate(self, ctx: Context, did: str, request: DelegateRequest) -> Delegation:
        """Lend a share of your own voting power to another identity, until an expiry
        (proposals made meanwhile count it as theirs); shares add up to at most all of it."""
        me = ctx.identity("a delegation")
        self._dao_row(did)
        if request.delegate == me:
            raise BadRequest("delegate to someone else")
        self._require_identity(request.delegate)
        now = self.k.clock.now()
        if request.expires_at is not None and request.expires_at <= now:
            raise BadRequest("expires_at is in the past")
        row = {
            "id": new_id(),
            "dao": did,
            "delegator": me,
            "delegate": request.delegate,
            "share_bps": request.share_bps,
            "expires_at": request.expires_at,
            "created_at": now,
            "revoked_at": None,
        }
        with self.k.change(ctx, "write", dao_resource(did)) as tx:
            held = sum(
                d["share_bps"] for d in self._live_delegations(tx, did, now) if d["delegator"] == me
            )
            if held + request.share_bps > voting.BPS:
                raise Conflict(
                    f"you lent {held / 100:g} % of your power already: at most "
                    f"{(voting.BPS - held) / 100:g} % more"
                )
            tx.execute(insert(_dl).values(**row))
            self._announce(tx, ctx, "dao.delegation.created", did, {"dao": did, "id": row["id"]})
        return Delegation(**row)

    def undelegate(self, ctx: Context, delegation_id: str) -> Delegation:
        me = ctx.identity("a delegation")
        with self.k.db.read() as conn:
            row = conn.execute(select(_dl).where(_dl.c.id == delegation_id)).mappings().first()
        if row is None or row["delegator"] != me:
            raise NotFound(f"no delegation {delegation_id} of yours")
        now = self.k.clock.now()
        with self.k.change(ctx, "write", dao_resource(row["dao"])) as tx:
            tx.execute(
                update(_dl)
                .where(_dl.c.id == delegation_id, _dl.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return Delegation(**{**row, "revoked_at": row["revoked_at"] or now})

    def delegations(self, did: str, *, of: str | None = None) -> list[Delegation]:
        now = self.k.clock.now()
        with self.k.db.read() as conn:
            rows = self._live_delegations(conn, did, now)
        return [
            Delegation(**r) for r in rows if of is None or of in (r["delegator"], r["delegate"])
        ]

    def _live_delegations(self, conn: Connection, did: str, now: datetime) -> list[RowMapping]:
        return list(
            conn.execute(
                select(_dl)
                .where(
                    _dl.c.dao == did,
                    _dl.c.revoked_at.is_(None),
                    or_(_dl.c.expires_at.is_(None), _dl.c.expires_at > now),
                )
                .order_by(_dl.c.created_at)
            ).mappings()
        )

    # Power -------------------------------------------------------------------------------

    def _own_power(self, row: RowMapping) -> dict[str, int]:
        if row["membership"] == "token":
            held = self.wallet.holders(row["token"])
            held.pop(row["did"], None)  # the DAO's own treasury does not vote
            held.pop(self.node.identity.did, None)
            return held
        with self.k.db.read() as conn:
            return {
                r.member: int(r.weight)
                for r in conn.execute(
                    select(_m.c.member, _m.c.weight).where(_m.c.dao == row["did"])
                )
            }

    def power(self, did: str, at: datetime | None = None) -> dict[str, int]:
        """Each voter's power now: its own, less what it lent, plus what it was lent."""
        row = self._dao_row(did)
        own = self._own_power(row)
        with self.k.db.read() as conn:
            lent = self._live_delegations(conn, did, at or self.k.clock.now())
        return _with_delegations(own, lent)

    # Proposals ---------------------------------------------------------------------------

    def propose(self, ctx: Context, did: str, request: ProposalCreate) -> Proposal:
        """A proposal, with voting power snapshotted now; the proposer needs the DAO's
        proposal threshold of power."""
        proposer = ctx.identity("a proposal")
        row = self._dao_row(did)
        params = Params.model_validate_json(row["params"])
        self.executor.check(did, request.actions)
        power = self.power(did)
        mine = power.get(proposer, 0)
        if mine < max(1, params.proposal_threshold):
            raise Forbidden(
                f"proposing takes {max(1, params.proposal_threshold)} voting power; you hold {mine}"
            )
        total = sum(power.values())
        quorum = (
            params.quorum if params.quorum is not None else total * params.quorum_bps // voting.BPS
        )
        rules = voting.Rules(request.voting, tuple(request.choices), quorum, params.pass_bps)
        proposal_id = new_id()
        now = self.k.clock.now()
        starts = now + timedelta(seconds=params.voting_delay_seconds)
        ends = starts + timedelta(seconds=params.voting_period_seconds)
        snapshot = documents.sign(
            {
                "version": voting.SNAPSHOT_VERSION,
                "issuer": self.node.identity.did,
                "dao": did,
                "proposal": proposal_id,
                "taken_at": rfc3339(now),
                "rules": rules.as_json(),
                "power": {voter: str(amount) for voter, amount in sorted(power.items())},
                "total": str(total),
            },
            self.node.identity.signing_key(),
        )
        actions = [a.model_dump(mode="json") for a in request.actions]
        with self.k.change(ctx, "write", dao_resource(did)) as tx:
            tx.execute(
                insert(_p).values(
                    id=proposal_id,
                    dao=did,
                    proposer=proposer,
                    title=request.title,
                    body=request.body,
                    rules=json.dumps(rules.as_json()),
                    actions=json.dumps(actions),
                    state="pending" if starts > now else "active",
                    snapshot=json.dumps(snapshot, separators=(",", ":")),
                    total_power=str(total),
                    starts_at=starts,
                    ends_at=ends,
                    created_at=now,
                    updated_at=now,
                )
            )
            if power:
                tx.execute(
                    insert(_pw),
                    [
                        {"proposal": proposal_id, "voter": voter, "power": str(amount)}
                        for voter, amount in power.items()
                    ],
                )
            self._announce(
                tx, ctx, "dao.proposal.created", did, {"dao": did, "proposal": proposal_id}
            )
        return self.proposal(proposal_id)

    def proposal(self, proposal_id: str) -> Proposal:
        row = self._settled_row(proposal_id)
        with self.k.db.read() as conn:
            votes = conn.execute(
                select(func.count()).where(_v.c.proposal == proposal_id)
            ).scalar_one()
        rules = voting.Rules.from_json(json.loads(row["rules"]))
        return Proposal(
            id=row["id"],
            dao=row["dao"],
            proposer=row["proposer"],
            title=row["title"],
            body=row["body"],
            voting=rules.voting,
            choices=list(rules.choices),
            quorum=rules.quorum,
            pass_bps=rules.pass_bps,
            total_power=int(row["total_power"]),
            actions=json.loads(row["actions"]),
            state=row["state"],
            starts_at=row["starts_at"],
            ends_at=row["ends_at"],
            eta=row["eta"],
            executed_at=row["executed_at"],
            last_error=row["last_error"],
            result=json.loads(row["result"]) if row["result"] else None,
            votes=int(votes),
            created_at=row["created_at"],
        )

    def proposals(
        self, did: str, *, state: str | None = None, limit: int = PAGE_MAX
    ) -> list[Proposal]:
        self._dao_row(did)
        query = select(_p.c.id).where(_p.c.dao == did)
        if state is not None:
            query = query.where(_p.c.state == state)
        query = query.order_by(_p.c.created_at.desc()).limit(max(1, min(limit, PAGE_MAX)))
        with self.k.db.read() as conn:
            ids = list(conn.execute(query).scalars())
        return [self.proposal(i) for i in ids]

    def cancel(self, ctx: Context, proposal_id: str) -> Proposal:
        """The proposer (before voting ends) or a canceller of the DAO (before it executes)."""
        me = ctx.identity("a proposal")
        row = self._settled_row(proposal_id)
        params = Params.model_validate_json(self._dao_row(row["dao"])["params"])
        canceller = me in params.cancellers
        if me != row["proposer"] and not canceller:
            raise Forbidden("only the proposer or one of the DAO's cancellers may cancel")
        allowed = ("pending", "active", "succeeded", "queued") if canceller else OPEN_STATES
        with self.k.change(ctx, "write", proposal_resource(proposal_id)) as tx:
            self._transition(tx, proposal_id, allowed, state="cancelled", eta=None)
            self._announce(tx, ctx, "dao.proposal.cancelled", row["dao"], {"proposal": proposal_id})
        return self.proposal(proposal_id)

    # Votes -------------------------------------------------------------------------------

    def vote(self, ctx: Context, proposal_id: str, document: dict[str, Any]) -> VoteReceipt:
        """Cast one signed vote (its voter's signature is what counts; anyone may carry it)."""
        result = self.votes(ctx, proposal_id, [document])
        if result.refused:
            reason = result.refused[0].reason
            if "voted already" in reason:
                raise AlreadyVoted(reason)
            raise VoteRefused(reason)
        with self.k.db.read() as conn:
            row = (
                conn.execute(
                    select(_v).where(_v.c.proposal == proposal_id, _v.c.voter == document["voter"])
                )
                .mappings()
                .one()
            )
        return VoteReceipt(
            proposal=proposal_id,
            voter=row["voter"],
            power=int(row["power"]),
            choice=json.loads(row["choice"]),
        )

    def votes(
        self, ctx: Context, proposal_id: str, votes: Sequence[dict[str, Any]]
    ) -> VoteBatchResult:
        """Cast signed votes in a batch; each is checked (format, signature, the voter's
        power at the snapshot, one vote each) and stored, or refused with the reason."""
        if not ctx.actor.authenticated:
            ctx.identity("a vote")  # 401: votes are carried by a signed request
        row = self._settled_row(proposal_id)
        now = self.k.clock.now()
        if row["state"] != "active" or not row["starts_at"] <= now < row["ends_at"]:
            raise ProposalState(f"proposal {proposal_id} is {row['state']}: it takes no votes")
        rules = voting.Rules.from_json(json.loads(row["rules"]))
        refused: list[VoteRefusal] = []
        checked: dict[str, tuple[Any, dict[str, Any], int]] = {}
        for n, document in enumerate(votes):
            try:
                voter, choice = voting.check_vote(
                    document, dao=row["dao"], proposal=proposal_id, rules=rules
                )
            except voting.BallotInvalid as exc:
                refused.append(VoteRefusal(index=n, voter=_voter_of(document), reason=str(exc)))
                continue
            if voter in checked:
                refused.append(VoteRefusal(index=n, voter=voter, reason=f"{voter} voted already"))
                continue
            checked[voter] = (choice, document, n)
        with self.k.change(ctx, "write", proposal_resource(proposal_id)) as tx:
            held = {
                r.voter: int(r.power)
                for r in tx.execute(
                    select(_pw.c.voter, _pw.c.power).where(
                        _pw.c.proposal == proposal_id, _pw.c.voter.in_(list(checked))
                    )
                )
            }
            rows = []
            for voter, (choice, document, n) in checked.items():
                if held.get(voter, 0) <= 0:
                    refused.append(
                        VoteRefusal(index=n, voter=voter, reason="no voting power at the snapshot")
                    )
                else:
                    rows.append(
                        {
                            "proposal": proposal_id,
                            "voter": voter,
                            "choice": json.dumps(choice),
                            "power": str(held[voter]),
                            "document": json.dumps(document, separators=(",", ":")),
                            "cast_at": now,
                        }
                    )
            # One vote each: a voter whose vote is in already is not inserted again.
            inserted = insert_new(tx, _v, rows, _v.c.voter)
            for voter in (str(r["voter"]) for r in rows):
                if voter not in inserted:
                    n = checked[voter][2]
                    refused.append(
                        VoteRefusal(index=n, voter=voter, reason=f"{voter} voted already")
                    )
        refused.sort(key=lambda r: r.index)
        return VoteBatchResult(accepted=len(inserted), refused=refused)

    def tally(self, proposal_id: str) -> voting.Tally:
        """The count as it stands (final once voting ended)."""
        row = self._settled_row(proposal_id)
        return self._count(row)

    def _count(self, row: RowMapping) -> voting.Tally:
        rules = voting.Rules.from_json(json.loads(row["rules"]))
        with self.k.db.read() as conn:
            ballots = [
                (int(power), json.loads(choice))
                for power, choice in conn.execute(
                    select(_v.c.power, _v.c.choice).where(_v.c.proposal == row["id"])
                )
            ]
        return voting.count(rules, ballots)

    def ballots(self, proposal_id: str) -> dict[str, Any]:
        """What an offline tally needs: the signed snapshot and every signed vote."""
        row = self._settled_row(proposal_id)
        with self.k.db.read() as conn:
            snapshot = conn.execute(
                select(_p.c.snapshot).where(_p.c.id == proposal_id)
            ).scalar_one()
            documents_ = [
                json.loads(d)
                for d in conn.execute(
                    select(_v.c.document).where(_v.c.proposal == proposal_id).order_by(_v.c.voter)
                ).scalars()
            ]
        return {
            "snapshot": json.loads(snapshot),
            "votes": documents_,
            "result": json.loads(row["result"]) if row["result"] else None,
        }

    # The lifecycle -----------------------------------------------------------------------

    def _settled_row(self, proposal_id: str) -> RowMapping:
        """The proposal's row, its lifecycle brought up to now first (start, end, queue)."""
        row = self._proposal_row(proposal_id)
        if row["state"] in OPEN_STATES and self._due(row):
            self._advance(row)
            row = self._proposal_row(proposal_id)
        return row

    def _due(self, row: RowMapping) -> bool:
        now = self.k.clock.now()
        return bool(
            (row["state"] == "pending" and now >= row["starts_at"]) or now >= row["ends_at"]
        )

    def _advance(self, row: RowMapping) -> None:
        now = self.k.clock.now()
        ctx = Context.system()
        if now < row["ends_at"]:
            with self.k.db.write() as tx:
                tx.execute(
                    update(_p)
                    .where(_p.c.id == row["id"], _p.c.state == "pending")
                    .values(state="active", updated_at=now)
                )
            return
        tally = self._count(row)
        actions = json.loads(row["actions"])
        params = Params.model_validate_json(self._dao_row(row["dao"])["params"])
        if tally.passed and actions:
            state, eta = "queued", row["ends_at"] + timedelta(seconds=params.timelock_seconds)
        else:
            state, eta = ("succeeded" if tally.passed else "defeated"), None
        with self.k.change(ctx, "write", proposal_resource(row["id"])) as tx:
            moved = tx.execute(
                update(_p)
                .where(_p.c.id == row["id"], _p.c.state.in_(OPEN_STATES))
                .values(state=state, eta=eta, result=json.dumps(tally.as_json()), updated_at=now)
            ).rowcount
            if moved:
                self._announce(
                    tx, ctx, f"dao.proposal.{state}", row["dao"], {"proposal": row["id"]}
                )

    def queue(self, ctx: Context, proposal_id: str) -> Proposal:
        """Close a proposal whose voting ended (the node does it on its own within a
        second): counted, and queued behind the timelock if it passed with actions."""
        row = self._settled_row(proposal_id)
        if row["state"] in OPEN_STATES:
            raise ProposalState(f"voting on {proposal_id} ends at {rfc3339(row['ends_at'])}")
        return self.proposal(proposal_id)

    def execute(self, ctx: Context, proposal_id: str) -> Proposal:
        """Carry out a queued proposal whose timelock has passed (the node does it on its
        own); once, all its actions in one transaction, or none."""
        row = self._settled_row(proposal_id)
        if row["state"] != "queued":
            raise ProposalState(f"proposal {proposal_id} is {row['state']}, not queued")
        if row["eta"] > self.k.clock.now():
            raise ProposalState(f"proposal {proposal_id} executes from {rfc3339(row['eta'])}")
        error = self._execute(row)
        if error is not None:
            raise ProposalState(f"proposal {proposal_id} did not execute: {error}")
        return self.proposal(proposal_id)

    def _execute(self, row: RowMapping) -> str | None:
        """Run the actions as the DAO in one transaction; the error, if it failed."""
        as_dao = self._as(row["dao"])
        actions = json.loads(row["actions"])
        now = self.k.clock.now()
        try:
            with self.wallet.agent(
                as_dao, "execute", proposal_resource(row["id"]), parties=[row["dao"]]
            ) as agent:
                self._transition(
                    agent.tx,
                    row["id"],
                    ("queued",),
                    state="executed",
                    executed_at=now,
                    last_error=None,
                )
                self.executor.run(agent, row["dao"], row["id"], actions)
                self._announce(
                    agent.tx, as_dao, "dao.proposal.executed", row["dao"], {"proposal": row["id"]}
                )
        except AnarqError as exc:
            params = Params.model_validate_json(self._dao_row(row["dao"])["params"])
            late = now >= row["eta"] + timedelta(seconds=params.execution_grace_seconds)
            with self.k.db.write() as tx:
                tx.execute(
                    update(_p)
                    .where(_p.c.id == row["id"], _p.c.state == "queued")
                    .values(
                        state="expired" if late else "queued",
                        last_error=f"{exc.code}: {exc.detail}"[:2000],
                        updated_at=now,
                    )
                )
            return f"{exc.code}: {exc.detail}"
        return None

    def govern(self, limit: int = GOVERNANCE_BATCH) -> int:
        """Advance every proposal that is due: start, close and count, execute. How many."""
        now = self.k.clock.now()
        with self.k.db.read() as conn:
            due = list(
                conn.execute(
                    select(*_PROPOSAL)
                    .where(
                        or_(
                            (_p.c.state == "pending") & (_p.c.starts_at <= now),
                            _p.c.state.in_(OPEN_STATES) & (_p.c.ends_at <= now),
                            (_p.c.state == "queued")
                            & (_p.c.eta <= now)
                            # a failed attempt is tried again a minute later
                            & (_p.c.last_error.is_(None) | (_p.c.updated_at <= now - RETRY_EVERY)),
                        )
                    )
                    .limit(limit)
                ).mappings()
            )
        for row in due:
            try:
                if row["state"] == "queued":
                    self._execute(row)
                else:
                    self._advance(row)
            except AnarqError as exc:
                log.warning("proposal %s: %s", row["id"], exc.detail)
        return len(due)

    async def run_governance(self, stop: asyncio.Event) -> None:
        """Background task: start, close and execute proposals on time."""
        while not stop.is_set():
            try:
                while await asyncio.to_thread(self.govern) == GOVERNANCE_BATCH:
                    pass
            except Exception:
                log.exception("advancing proposals failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), GOVERNANCE_EVERY_SECONDS)
            except TimeoutError:
                continue

    # Data-subject requests ---------------------------------------------------------------

    def export_subject(self, ctx: Context, did: str) -> Iterator[ExportItem]:
        """Memberships, delegations, proposals made and votes cast by the person."""
        with self.k.db.read() as conn:
            memberships = [
                dict(r) for r in conn.execute(select(_m).where(_m.c.member == did)).mappings()
            ]
            lent = [
                dict(r)
                for r in conn.execute(
                    select(_dl).where(or_(_dl.c.delegator == did, _dl.c.delegate == did))
                ).mappings()
            ]
            made = [
                dict(r)
                for r in conn.execute(
                    select(_p.c.id, _p.c.dao, _p.c.title, _p.c.state, _p.c.created_at).where(
                        _p.c.proposer == did
                    )
                ).mappings()
            ]
            cast = [dict(r) for r in conn.execute(select(_v).where(_v.c.voter == did)).mappings()]
        yield json_item("dao/memberships.json", memberships)
        yield json_item("dao/delegations.json", lent)
        yield json_item("dao/proposals.json", made)
        yield json_item("dao/votes.json", cast)

    def erase_subject(self, ctx: Context, did: str) -> dict[str, int]:
        """Leave every DAO and end every delegation. Votes cast stay: a signed vote is part
        of a decision other members rely on (and anyone may have counted it)."""
        now = self.k.clock.now()
        with self.k.change(ctx, "write", f"dao:member:{did}") as tx:
            left = tx.execute(delete(_m).where(_m.c.member == did)).rowcount
            ended = tx.execute(
                update(_dl)
                .where(
                    or_(_dl.c.delegator == did, _dl.c.delegate == did), _dl.c.revoked_at.is_(None)
                )
                .values(revoked_at=now)
            ).rowcount
        return {"memberships": int(left), "delegations": int(ended)}

    # Rows and helpers --------------------------------------------------------------------

    def _dao_row(self, did: str) -> RowMapping:
        with self.k.db.read() as conn:
            row = conn.execute(select(_d).where(_d.c.did == did)).mappings().first()
        if row is None:
            raise NotFound(f"no DAO {did[:200]}")
        return row

    def _proposal_row(self, proposal_id: str) -> RowMapping:
        with self.k.db.read() as conn:
            row = conn.execute(select(*_PROPOSAL).where(_p.c.id == proposal_id)).mappings().first()
        if row is None:
            raise NotFound(f"no proposal {proposal_id}")
        return row

    def _transition(
        self, tx: Connection, proposal_id: str, allowed: tuple[str, ...], **values: Any
    ) -> None:
        moved = tx.execute(
            update(_p)
            .where(_p.c.id == proposal_id, _p.c.state.in_(allowed))
            .values(updated_at=self.k.clock.now(), **values)
        ).rowcount
        if moved != 1:
            raise ProposalState(f"proposal {proposal_id} has moved on: look at it again")

    def _as(self, dao: str) -> Context:
        """The DAO acting: only this service makes such a context, to carry out votes."""
        return Context(actor=Actor(id=dao, kind="identity"))

    def _require_identity(self, did: str) -> None:
        identity = self.squid.identity(did)
        if identity.revoked_at is not None:
            raise BadRequest(f"{did} has been revoked")

    def _require_asset(self, code: str) -> None:
        try:
            self.wallet.asset(code)
        except NotFound:
            raise BadRequest(f"no asset {code} on this node") from None

    def _announce(
        self, tx: Connection, ctx: Context, kind: str, dao: str, data: dict[str, Any]
    ) -> None:
        self.k.bus.publish(
            tx,
            kind,
            data,
            actor=ctx.actor.id,
            subject=dao_resource(dao),
            correlation_id=ctx.correlation_id or ctx.request_id,
        )


def _with_delegations(own: dict[str, int], lent: Sequence[RowMapping]) -> dict[str, int]:
    """Power after delegations: each delegator keeps the share it did not lend, and each
    delegate adds the shares lent to it (one level: lent power is not lent on)."""
    power = dict(own)
    for d in lent:
        base = own.get(d["delegator"], 0)
        moved = base * d["share_bps"] // voting.BPS
        if moved <= 0:
            continue
        power[d["delegator"]] = power.get(d["delegator"], 0) - moved
        power[d["delegate"]] = power.get(d["delegate"], 0) + moved
    return {voter: amount for voter, amount in power.items() if amount > 0}


def _voter_of(document: Any) -> str | None:
    if isinstance(document, dict) and isinstance(document.get("voter"), str):
        return str(document["voter"])[:200]
    return None
