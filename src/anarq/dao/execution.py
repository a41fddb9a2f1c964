"""What a passed proposal does: its actions, carried out as the DAO, in one transaction.

Each action is checked when the proposal is made (the asset exists, the DAO issued what
it would mint, the recipient is an identity here …) and again as it runs. Money moves
through Qwallet's ledger agent with the DAO's authority over its own accounts only;
grants are Qonsent's, made by the DAO in the same transaction. An action that fails
raises, and the whole execution rolls back: nothing half done.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import delete, insert, select, update

from anarq.dao import tables
from anarq.dao.models import (
    Action,
    AddMemberAction,
    GrantAction,
    MintAction,
    Params,
    RemoveMemberAction,
    RevokeAction,
    RunWorkflowAction,
    SetParamsAction,
    TransferAction,
)
from anarq.kernel import Kernel
from anarq.kernel.errors import BadRequest, Conflict, NotFound
from anarq.kernel.guard import Actor, Context
from anarq.qflow.definition import Definition
from anarq.qflow.service import QflowService
from anarq.qonsent.models import GrantRequest
from anarq.qonsent.service import QonsentService
from anarq.qwallet.agent import LedgerAgent
from anarq.qwallet.ledger import TransferIn
from anarq.qwallet.service import WalletService
from anarq.squid.service import SquidService

CODE_TREASURY = 7301
CODE_MINT = 7302
_actions: TypeAdapter[list[Action]] = TypeAdapter(list[Action])


class Executor:
    def __init__(
        self,
        kernel: Kernel,
        squid: SquidService,
        qonsent: QonsentService,
        wallet: WalletService,
        qflow: QflowService,
    ) -> None:
        self.k = kernel
        self.squid = squid
        self.qonsent = qonsent
        self.qflow = qflow
        self.wallet = wallet

    def check(self, dao: str, actions: Sequence[Any]) -> None:
        """Refuse, when the proposal is made, actions that could never run."""
        row = self._dao(dao)
        for n, action in enumerate(actions):
            where = f"action {n} ({action.type})"
            if isinstance(action, TransferAction | MintAction):
                try:
                    asset = self.wallet.asset(action.asset)
                except NotFound:
                    raise BadRequest(f"{where}: no asset {action.asset} on this node") from None
                if isinstance(action, MintAction) and asset.issuer != dao:
                    raise BadRequest(f"{where}: the DAO did not issue {action.asset}")
                self._require_identity(action.to, where)
            elif isinstance(action, AddMemberAction | RemoveMemberAction):
                if row["membership"] != "members":
                    raise BadRequest(f"{where}: a token DAO's members are its token's holders")
                self._require_identity(action.member, where)
            elif isinstance(action, GrantAction):
                try:
                    GrantRequest(
                        grantee=action.grantee,
                        resource=action.resource,
                        actions=action.actions,
                        purpose=action.purpose,
                        expires_at=action.expires_at,
                    )
                except ValidationError as exc:
                    raise BadRequest(f"{where}: {exc.errors()[0]['msg']}") from None
            elif isinstance(action, RevokeAction):
                grant = self.qonsent.get(action.grant_id)
                if grant.grantor != dao:
                    raise BadRequest(f"{where}: grant {action.grant_id} is not the DAO's")
            elif isinstance(action, RunWorkflowAction):
                self._workflow(action, where)

    def run(self, agent: LedgerAgent, dao: str, proposal_id: str, stored: list[Any]) -> None:
        """Carry out the proposal's actions in the agent's transaction, in order."""
        as_dao = Context(actor=Actor(id=dao, kind="identity"))
        tx = agent.tx
        for n, action in enumerate(_actions.validate_python(stored)):
            leg = f"d.{proposal_id}.{n}"
            memo = f"DAO proposal {proposal_id}"
            if isinstance(action, TransferAction):
                agent.chain(
                    [
                        TransferIn(
                            id=leg,
                            debit_account=agent.account(dao, action.asset),
                            credit_account=agent.account(action.to, action.asset),
                            amount=action.amount,
                            asset=action.asset,
                            code=CODE_TREASURY,
                            memo=memo,
                        )
                    ]
                )
            elif isinstance(action, MintAction):
                asset = self.wallet.asset(action.asset)
                if asset.issuer != dao:
                    raise BadRequest(f"the DAO did not issue {action.asset}")
                agent.chain(
                    [
                        TransferIn(
                            id=leg,
                            debit_account=asset.issuance_account,
                            credit_account=agent.account(action.to, action.asset),
                            amount=action.amount,
                            asset=action.asset,
                            code=CODE_MINT,
                            memo=memo,
                        )
                    ]
                )
            elif isinstance(action, SetParamsAction):
                d = tables.daos
                current = json.loads(
                    tx.execute(select(d.c.params).where(d.c.did == dao)).scalar_one()
                )
                merged = Params.model_validate(
                    {**current, **action.params.model_dump(exclude_none=True)}
                )
                tx.execute(update(d).where(d.c.did == dao).values(params=merged.model_dump_json()))
            elif isinstance(action, AddMemberAction):
                m = tables.members
                tx.execute(delete(m).where(m.c.dao == dao, m.c.member == action.member))
                tx.execute(
                    insert(m).values(
                        dao=dao,
                        member=action.member,
                        weight=str(action.weight),
                        joined_at=self.k.clock.now(),
                    )
                )
            elif isinstance(action, RemoveMemberAction):
                m = tables.members
                gone = tx.execute(delete(m).where(m.c.dao == dao, m.c.member == action.member))
                if gone.rowcount != 1:
                    raise Conflict(f"{action.member} is not a member")
            elif isinstance(action, GrantAction):
                self.qonsent.grant_in(
                    tx,
                    as_dao,
                    GrantRequest(
                        grantee=action.grantee,
                        resource=action.resource,
                        actions=action.actions,
                        purpose=action.purpose,
                        expires_at=action.expires_at,
                    ),
                )
            elif isinstance(action, RevokeAction):
                self.qonsent.revoke_in(tx, as_dao, action.grant_id)
            elif isinstance(action, RunWorkflowAction):
                self.qflow.run_in(
                    tx, as_dao, self._workflow(action, leg), action.input, dedup=f"dao:{leg}"
                )

    def _workflow(self, action: RunWorkflowAction, where: str) -> Definition:
        """The action's workflow definition, checked as Qflow checks one."""
        from anarq.qflow.actions import action as step_action
        from anarq.qflow.definition import validate

        try:
            definition = validate(action.definition)
            for step in definition.steps:
                step_action(step.action)
        except BadRequest as exc:
            raise BadRequest(f"{where}: {exc.detail}") from None
        return definition

    def _dao(self, dao: str) -> Any:
        with self.k.db.read() as conn:
            row = (
                conn.execute(select(tables.daos).where(tables.daos.c.did == dao)).mappings().first()
            )
        if row is None:
            raise NotFound(f"no DAO {dao}")
        return row

    def _require_identity(self, did: str, where: str) -> None:
        try:
            revoked = self.squid.identity(did).revoked_at is not None
        except NotFound:
            revoked = True
        if revoked:
            raise BadRequest(f"{where}: {did[:200]} is no active identity on this node")
