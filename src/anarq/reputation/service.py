"""Reputation: a score from 0 to 1,000 per identity, computed from facts this node can
check — settled purchases and the reviews they earned, DAO participation, credentials
others issued to it, and the identity's age — with each factor and its points listed.

Nothing is self-declared and nothing is hidden: the same facts always give the same
score, and the reasons say where every point came from. The node signs it as a
verifiable credential (`ReputationCredential`, valid for a week), which the identity can
present anywhere; other nodes verify it offline against this node's did:key.

A sub-identity has only its own facts, unless its root links it: then it also gets a
share (the root chooses how much) of the root's score. An AID cannot be linked here:
its link to a root is not public, and a share would reveal it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, select

from anarq.kernel import Kernel
from anarq.kernel.errors import Forbidden, NotFound
from anarq.kernel.guard import Context
from anarq.node.service import NodeService
from anarq.reputation import tables
from anarq.vc import credentials as vcs

SCORE_MAX = 1000
CREDENTIAL_DAYS = 7
# How long a computed score is reused before the facts are read again.
CACHE_SECONDS = 60


@dataclass(frozen=True)
class Factor:
    factor: str
    points: int
    detail: str


@dataclass(frozen=True)
class Score:
    did: str
    score: int
    factors: tuple[Factor, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "did": self.did,
            "score": self.score,
            "factors": [f.__dict__ for f in self.factors],
        }


def _capped(count: int, each: int, cap: int) -> int:
    return min(count * each, cap)


class ReputationService:
    def __init__(
        self, kernel: Kernel, node: NodeService, squid: Any, market: Any, dao: Any, vc: Any
    ) -> None:
        self.k = kernel
        self.node = node
        self.squid = squid
        self.market = market
        self.dao = dao
        self.vc = vc
        self._cache: dict[str, tuple[float, Score]] = {}
        self._lock = threading.Lock()

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """A guard policy: a root links its own sub-identities."""
        return (
            ctx.actor.kind == "identity"
            and resource == f"reputation:links:{ctx.actor.id}"
            and action in ("write", "delete")
        )

    # Scores --------------------------------------------------------------------------

    def score(self, did: str) -> Score:
        """The score of `did` with its reasons (cached for a minute)."""
        now = self.k.clock.now().timestamp()
        with self._lock:
            cached = self._cache.get(did)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        computed = self._compute(did, depth=0)
        with self._lock:
            self._cache[did] = (now, computed)
        return computed

    def _compute(self, did: str, *, depth: int) -> Score:
        factors: list[Factor] = []
        standing = self.squid.standing(did)
        if standing is None:
            return Score(did, 0, (Factor("unknown", 0, "not registered on this node"),))
        created_at, status = standing
        if status != "active":
            return Score(did, 0, (Factor("status", 0, f"the identity is {status}"),))
        days = max(0, (self.k.clock.now() - created_at).days)
        factors.append(Factor("age", min(days * 100 // 365, 100), f"{days} days on this node"))

        trade = self.market.track_record(did)
        bought, sold, refunded = trade["bought"], trade["sold"], trade["refunded"]
        if bought:
            factors.append(
                Factor("purchases", _capped(bought, 10, 150), f"{bought} settled purchases")
            )
        if sold:
            factors.append(Factor("sales", _capped(sold, 15, 250), f"{sold} settled sales"))
        if refunded:
            factors.append(
                Factor(
                    "refunds",
                    -min(refunded * 20, 200),
                    f"{refunded} sales refunded by a moderator or past their deadline",
                )
            )
        if trade["reviews"]:
            count, average = trade["reviews"], float(trade["average"])
            # A full say only from five reviews on; one review moves little.
            points = round((average - 3) * 50 * min(1.0, count / 5))
            factors.append(
                Factor("reviews", points, f"{count} reviews averaging {average:.2f} of 5")
            )

        governance = self.dao.participation(did)
        votes, executed = governance["votes"], governance["executed"]
        memberships = governance["memberships"]
        if votes:
            factors.append(Factor("votes", _capped(votes, 5, 100), f"{votes} DAO votes cast"))
        if executed:
            factors.append(
                Factor(
                    "proposals",
                    _capped(executed, 20, 100),
                    f"{executed} proposals passed and executed",
                )
            )
        if memberships:
            factors.append(
                Factor("memberships", _capped(memberships, 10, 50), f"member of {memberships} DAOs")
            )

        vouched = self.vc.vouchers(did)
        if vouched:
            factors.append(
                Factor(
                    "credentials", _capped(vouched, 10, 100), f"credentials from {vouched} issuers"
                )
            )

        if depth == 0:
            with self.k.db.read() as conn:
                link = conn.execute(
                    select(tables.links.c.root, tables.links.c.share_bps).where(
                        tables.links.c.sub == did
                    )
                ).first()
            if link is not None:
                root = self._compute(link.root, depth=1)
                share = root.score * link.share_bps // 10_000
                factors.append(
                    Factor("root", share, f"{link.share_bps / 100:g} % of its root's {root.score}")
                )
        total = max(0, min(SCORE_MAX, sum(f.points for f in factors)))
        return Score(did, total, tuple(factors))

    def credential(self, ctx: Context, did: str | None = None) -> dict[str, Any]:
        """The score as a credential the node signs: for the identity itself (to present
        it) and the operator."""
        subject = did or ctx.identity("a reputation")
        if ctx.actor.kind not in ("operator", "node") and ctx.actor.id != subject:
            raise Forbidden("a reputation is given to its identity, who may present it")
        score = self.score(subject)
        now = self.k.clock.now()
        document = vcs.build(
            self.node.identity.did,
            {
                "id": subject,
                "score": score.score,
                "scale": SCORE_MAX,
                "factors": [f.__dict__ for f in score.factors],
            },
            ["ReputationCredential"],
            valid_from=now,
            valid_until=now + timedelta(days=CREDENTIAL_DAYS),
        )
        seed = self.node.identity.signing_key().ed25519_seed()
        return vcs.issue(document, seed, created=now)

    # Links ---------------------------------------------------------------------------

    def link(self, ctx: Context, sub: str, share_bps: int) -> dict[str, Any]:
        """Let `sub` (a linked sub-identity of the caller) start from a share of the
        caller's score."""
        root = ctx.identity("a reputation link")
        parent = self.squid.parent_of(sub)
        if parent != root:
            self.k.guard.record(ctx, "write", f"reputation:links:{root}", "deny")
            raise NotFound(f"{sub} is not a linked sub-identity of yours")
        with self.k.change(ctx, "write", f"reputation:links:{root}") as tx:
            tx.execute(delete(tables.links).where(tables.links.c.sub == sub))
            tx.execute(
                insert(tables.links).values(
                    sub=sub, root=root, share_bps=share_bps, created_at=self.k.clock.now()
                )
            )
        self._forget(sub)
        return {"sub": sub, "root": root, "share_bps": share_bps}

    def unlink(self, ctx: Context, sub: str) -> None:
        root = ctx.identity("a reputation link")
        with self.k.change(ctx, "delete", f"reputation:links:{root}") as tx:
            gone = tx.execute(
                delete(tables.links).where(
                    and_(tables.links.c.sub == sub, tables.links.c.root == root)
                )
            ).rowcount
            if not gone:
                raise NotFound(f"{sub} is not linked to you")
        self._forget(sub)

    def _forget(self, did: str) -> None:
        with self._lock:
            self._cache.pop(did, None)
