"""HTTP routes of DAOs, mounted at `/dao`. Proposals, votes and counts are public."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from anarq.dao.models import (
    DaoCreate,
    DaoInfo,
    DelegateRequest,
    Delegation,
    Member,
    Proposal,
    ProposalCreate,
    VoteBatch,
    VoteBatchResult,
    VoteReceipt,
)
from anarq.dao.service import PAGE_MAX, DaoService
from anarq.dao.tables import DID_MAX
from anarq.gateway.auth import caller
from anarq.kernel.guard import Context

router = APIRouter()

DAO = Path(..., min_length=8, max_length=DID_MAX, description="The DAO's DID.")
PROPOSAL = Path(..., min_length=26, max_length=26, pattern=r"^[0-9A-Z]{26}$")
STATES = r"^(pending|active|succeeded|defeated|queued|executed|cancelled|expired)$"


async def service(request: Request) -> DaoService:
    svc: DaoService = request.app.state.node.service("dao")
    return svc


@router.get("/daos", response_model=list[DaoInfo], summary="DAOs on this node, newest first")
def daos(
    member: str | None = Query(None, min_length=8, max_length=DID_MAX, description="Of which"),
    limit: int = Query(50, ge=1, le=PAGE_MAX),
    svc: DaoService = Depends(service),
) -> list[DaoInfo]:
    return svc.daos(member=member, limit=limit)


@router.post("/daos", status_code=201, response_model=DaoInfo, summary="Create a DAO")
def create(
    body: DaoCreate, ctx: Context = Depends(caller), svc: DaoService = Depends(service)
) -> DaoInfo:
    return svc.create(ctx, body)


@router.get("/daos/{did}", response_model=DaoInfo, summary="A DAO: parameters and treasury")
def dao(did: str = DAO, svc: DaoService = Depends(service)) -> DaoInfo:
    return svc.dao(did)


@router.get("/daos/{did}/members", response_model=list[Member], summary="Members and weights")
def members(did: str = DAO, svc: DaoService = Depends(service)) -> list[Member]:
    return svc.members(did)


@router.post(
    "/daos/{did}/members", status_code=201, response_model=Member, summary="Join an open DAO"
)
def join(
    did: str = DAO, ctx: Context = Depends(caller), svc: DaoService = Depends(service)
) -> Member:
    return svc.join(ctx, did)


@router.delete("/daos/{did}/members/me", status_code=204, summary="Leave a DAO")
def leave(
    did: str = DAO, ctx: Context = Depends(caller), svc: DaoService = Depends(service)
) -> Response:
    svc.leave(ctx, did)
    return Response(status_code=204)


@router.get("/daos/{did}/power", summary="Voting power now, after delegations")
def power(did: str = DAO, svc: DaoService = Depends(service)) -> dict[str, str]:
    return {voter: str(amount) for voter, amount in sorted(svc.power(did).items())}


@router.get("/daos/{did}/delegations", response_model=list[Delegation], summary="Live delegations")
def delegations(
    did: str = DAO,
    of: str | None = Query(None, min_length=8, max_length=DID_MAX),
    svc: DaoService = Depends(service),
) -> list[Delegation]:
    return svc.delegations(did, of=of)


@router.post(
    "/daos/{did}/delegations",
    status_code=201,
    response_model=Delegation,
    summary="Lend a share of your voting power",
)
def delegate(
    body: DelegateRequest,
    did: str = DAO,
    ctx: Context = Depends(caller),
    svc: DaoService = Depends(service),
) -> Delegation:
    return svc.delegate(ctx, did, body)


@router.delete(
    "/delegations/{delegation_id}", response_model=Delegation, summary="End a delegation"
)
def undelegate(
    delegation_id: str = Path(..., min_length=26, max_length=26),
    ctx: Context = Depends(caller),
    svc: DaoService = Depends(service),
) -> Delegation:
    return svc.undelegate(ctx, delegation_id)


@router.get("/daos/{did}/proposals", response_model=list[Proposal], summary="A DAO's proposals")
def proposals(
    did: str = DAO,
    state: str | None = Query(None, pattern=STATES),
    limit: int = Query(50, ge=1, le=PAGE_MAX),
    svc: DaoService = Depends(service),
) -> list[Proposal]:
    return svc.proposals(did, state=state, limit=limit)


@router.post("/daos/{did}/proposals", status_code=201, response_model=Proposal, summary="Propose")
def propose(
    body: ProposalCreate,
    did: str = DAO,
    ctx: Context = Depends(caller),
    svc: DaoService = Depends(service),
) -> Proposal:
    return svc.propose(ctx, did, body)


@router.get("/proposals/{proposal_id}", response_model=Proposal, summary="A proposal")
def proposal(proposal_id: str = PROPOSAL, svc: DaoService = Depends(service)) -> Proposal:
    return svc.proposal(proposal_id)


@router.post(
    "/proposals/{proposal_id}/votes",
    status_code=201,
    response_model=VoteReceipt,
    summary="Cast a vote signed by its voter",
)
def vote(
    proposal_id: str = PROPOSAL,
    body: dict[str, Any] = Body(..., description="An anarq-vote/v1 document, signed."),
    ctx: Context = Depends(caller),
    svc: DaoService = Depends(service),
) -> VoteReceipt:
    return svc.vote(ctx, proposal_id, body)


@router.post(
    "/proposals/{proposal_id}/votes/batch",
    response_model=VoteBatchResult,
    summary="Cast up to 1,000 signed votes (a relay)",
)
def votes(
    body: VoteBatch,
    proposal_id: str = PROPOSAL,
    ctx: Context = Depends(caller),
    svc: DaoService = Depends(service),
) -> VoteBatchResult:
    return svc.votes(ctx, proposal_id, body.votes)


@router.get("/proposals/{proposal_id}/tally", summary="The count as it stands")
def tally(proposal_id: str = PROPOSAL, svc: DaoService = Depends(service)) -> dict[str, Any]:
    return svc.tally(proposal_id).as_json()


@router.get(
    "/proposals/{proposal_id}/ballots",
    summary="The signed snapshot and votes, to count again offline",
)
def ballots(proposal_id: str = PROPOSAL, svc: DaoService = Depends(service)) -> dict[str, Any]:
    return svc.ballots(proposal_id)


@router.post("/proposals/{proposal_id}/queue", response_model=Proposal, summary="Close the vote")
def queue(
    proposal_id: str = PROPOSAL, ctx: Context = Depends(caller), svc: DaoService = Depends(service)
) -> Proposal:
    return svc.queue(ctx, proposal_id)


@router.post("/proposals/{proposal_id}/execute", response_model=Proposal, summary="Execute now")
def execute(
    proposal_id: str = PROPOSAL, ctx: Context = Depends(caller), svc: DaoService = Depends(service)
) -> Proposal:
    return svc.execute(ctx, proposal_id)


@router.post("/proposals/{proposal_id}/cancel", response_model=Proposal, summary="Cancel")
def cancel(
    proposal_id: str = PROPOSAL, ctx: Context = Depends(caller), svc: DaoService = Depends(service)
) -> Proposal:
    return svc.cancel(ctx, proposal_id)
