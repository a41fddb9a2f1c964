"""Qwallet's tables: assets, accounts with their four balances, the append-only transfer
log, where each pending transfer stands, and the ids of transfers that failed for good.

Amounts are unsigned 128-bit integers: they do not fit a 64-bit column, and the ledger
never does arithmetic in SQL, so they are kept as decimal text. Times are nanoseconds
since the Unix epoch (a transfer's timestamp is also its unique, increasing key).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, SmallInteger, String, Table, Text

from anarq.kernel.db import UtcDateTime, metadata

DID_MAX = 200
ASSET_MAX = 16
ID_MAX = 64
AMOUNT_TEXT = 40  # 2**128 has 39 digits
MEMO_MAX = 140

# INTEGER PRIMARY KEY is SQLite's row id (no second index); BIGINT elsewhere.
RowKey = BigInteger().with_variant(Integer(), "sqlite")

assets = Table(
    "qwallet_assets",
    metadata,
    Column("code", String(ASSET_MAX), primary_key=True),
    Column("name", String(80), nullable=False),
    Column("scale", SmallInteger, nullable=False),  # decimals: 1 unit = 10**-scale
    Column("issuer", String(DID_MAX), nullable=False),
    Column("supply_cap", String(AMOUNT_TEXT), nullable=True),
    Column("issuance_account", BigInteger, nullable=False),
    Column("treasury_account", BigInteger, nullable=True),
    Column("fee_bps", Integer, nullable=False),
    Column("fee_min", String(AMOUNT_TEXT), nullable=False),
    Column("fee_max", String(AMOUNT_TEXT), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

accounts = Table(
    "qwallet_accounts",
    metadata,
    Column("id", RowKey, primary_key=True, autoincrement=True),
    Column("owner", String(DID_MAX), nullable=False),
    Column("asset", String(ASSET_MAX), nullable=False),
    Column("name", String(40), nullable=False),  # main | issuance | treasury | …
    Column("flags", Integer, nullable=False),
    Column("debits_pending", String(AMOUNT_TEXT), nullable=False),
    Column("debits_posted", String(AMOUNT_TEXT), nullable=False),
    Column("credits_pending", String(AMOUNT_TEXT), nullable=False),
    Column("credits_posted", String(AMOUNT_TEXT), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
Index("ux_qwallet_accounts_owner", accounts.c.owner, accounts.c.asset, accounts.c.name, unique=True)

transfers = Table(
    "qwallet_transfers",
    metadata,
    Column("timestamp", RowKey, primary_key=True, autoincrement=False),
    Column("id", String(ID_MAX), nullable=False),
    Column("debit_account", BigInteger, nullable=False),
    Column("credit_account", BigInteger, nullable=False),
    Column("amount", String(AMOUNT_TEXT), nullable=False),
    Column("asset", String(ASSET_MAX), nullable=False),
    Column("pending_id", String(ID_MAX), nullable=True),
    Column("flags", Integer, nullable=False),
    Column("timeout", Integer, nullable=False),
    Column("hashlock", String(64), nullable=True),
    Column("code", Integer, nullable=False),
    Column("memo", String(MEMO_MAX), nullable=True),
    Column("actor", String(DID_MAX), nullable=False),
)
Index("ux_qwallet_transfers_id", transfers.c.id, unique=True)
Index("ix_qwallet_transfers_debit", transfers.c.debit_account, transfers.c.timestamp)
Index("ix_qwallet_transfers_credit", transfers.c.credit_account, transfers.c.timestamp)

pending = Table(
    "qwallet_pending",
    metadata,
    Column("id", String(ID_MAX), primary_key=True),
    Column("state", SmallInteger, nullable=False),  # 1 pending 2 posted 3 voided 4 expired
    Column("expires_at", BigInteger, nullable=True),
)
Index("ix_qwallet_pending_expiry", pending.c.state, pending.c.expires_at)

failures = Table(
    "qwallet_failures",
    metadata,
    Column("id", String(ID_MAX), primary_key=True),
    Column("result", String(64), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
)

# Unique tokens: who holds each, what it points to, and every change of hands.
nfts = Table(
    "qwallet_nfts",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("issuer", String(DID_MAX), nullable=False),
    Column("owner", String(DID_MAX), nullable=False),
    Column("name", String(120), nullable=False),
    Column("metadata", Text, nullable=False),  # JSON, e.g. a Qdrive CID
    Column("created_at", UtcDateTime(), nullable=False),
    # The issuer's share of every sale through Qmarket, fixed at mint (basis points).
    Column("royalty_bps", Integer, nullable=False, server_default="0"),
    # The Qmarket listing that holds the token for sale: it changes hands only through it.
    Column("listed_in", String(26), nullable=True),
)
Index("ix_qwallet_nfts_owner", nfts.c.owner)

nft_events = Table(
    "qwallet_nft_events",
    metadata,
    Column("nft_id", String(26), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("kind", String(10), nullable=False),  # mint | transfer | sale | burn
    Column("from_did", String(DID_MAX), nullable=True),
    Column("to_did", String(DID_MAX), nullable=True),
    Column("actor", String(DID_MAX), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
)

# One row: a counter every ledger write moves on. A node process keeps account balances
# in memory between its batches, and trusts them only while the counter is where its own
# last commit left it.
state = Table(
    "qwallet_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

TABLES = (assets, accounts, transfers, pending, failures, nfts, nft_events, state)
