"""DAO tables: the DAOs and their parameters, members, delegations, proposals with their
actions and signed snapshot, each voter's power at the snapshot, and the signed votes.

Amounts (voting power, token balances) are decimal text, as in Qwallet.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from anarq.kernel.db import UtcDateTime, metadata

DID_MAX = 200
AMOUNT_TEXT = 40
NAME_MAX = 80
TITLE_MAX = 200
BODY_MAX = 20_000

daos = Table(
    "dao_daos",
    metadata,
    Column("did", String(DID_MAX), primary_key=True),  # a sQuid DAO identity with no key
    Column("name", String(NAME_MAX), nullable=False),
    Column("creator", String(DID_MAX), nullable=False),
    Column("membership", String(8), nullable=False),  # members | token
    Column("token", String(16), nullable=True),  # the asset whose balance is voting power
    Column("open", Integer, nullable=False),  # members DAOs: anyone may join (1) or not (0)
    Column("params", Text, nullable=False),  # JSON: thresholds, periods, quorum, cancellers
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

members = Table(
    "dao_members",
    metadata,
    Column("dao", String(DID_MAX), primary_key=True),
    Column("member", String(DID_MAX), primary_key=True),
    Column("weight", String(AMOUNT_TEXT), nullable=False),  # voting power in a members DAO
    Column("joined_at", UtcDateTime(), nullable=False),
)
Index("ix_dao_members_member", members.c.member)

delegations = Table(
    "dao_delegations",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("dao", String(DID_MAX), nullable=False),
    Column("delegator", String(DID_MAX), nullable=False),
    Column("delegate", String(DID_MAX), nullable=False),
    Column("share_bps", Integer, nullable=False),  # of the delegator's own power
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
)
Index("ix_dao_delegations_dao", delegations.c.dao, delegations.c.delegator)

proposals = Table(
    "dao_proposals",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("dao", String(DID_MAX), nullable=False),
    Column("proposer", String(DID_MAX), nullable=False),
    Column("title", String(TITLE_MAX), nullable=False),
    Column("body", Text, nullable=False),
    Column("rules", Text, nullable=False),  # JSON: voting type, choices, quorum, threshold
    Column("actions", Text, nullable=False),  # JSON list, run once if it passes
    # pending | active | succeeded | defeated | queued | executed | cancelled | expired
    Column("state", String(10), nullable=False),
    Column("snapshot", Text, nullable=False),  # the node's signed power snapshot
    Column("total_power", String(AMOUNT_TEXT), nullable=False),  # all power in it
    Column("starts_at", UtcDateTime(), nullable=False),
    Column("ends_at", UtcDateTime(), nullable=False),
    Column("eta", UtcDateTime(), nullable=True),  # executable from (after the timelock)
    Column("result", Text, nullable=True),  # JSON tally, once voting ended
    Column("executed_at", UtcDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),  # why the last execution attempt failed
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
Index("ix_dao_proposals_dao", proposals.c.dao, proposals.c.created_at)
Index("ix_dao_proposals_state", proposals.c.state, proposals.c.ends_at)

power = Table(
    "dao_power",
    metadata,
    Column("proposal", String(26), primary_key=True),
    Column("voter", String(DID_MAX), primary_key=True),
    Column("power", String(AMOUNT_TEXT), nullable=False),
)

votes = Table(
    "dao_votes",
    metadata,
    Column("proposal", String(26), primary_key=True),
    Column("voter", String(DID_MAX), primary_key=True),  # one vote each, final
    Column("choice", Text, nullable=False),  # JSON, canonical
    Column("power", String(AMOUNT_TEXT), nullable=False),
    Column("document", Text, nullable=False),  # the signed vote
    Column("cast_at", UtcDateTime(), nullable=False),
)

TABLES = (daos, members, delegations, proposals, power, votes)
