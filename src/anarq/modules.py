"""The modules this node runs, in no particular order (the node sorts them by dependency)."""

from __future__ import annotations

from functools import cache

from anarq.kernel.module import Module


@cache
def installed_modules() -> tuple[Module, ...]:
    from anarq import (
        dao,
        node,
        oidc,
        privacy,
        qchat,
        qdrive,
        qerberos,
        qflow,
        qindex,
        qlock,
        qmail,
        qmarket,
        qmask,
        qonsent,
        qpic,
        qwallet,
        reputation,
        squid,
        vc,
    )

    return (
        node.module(),
        squid.module(),
        qonsent.module(),
        qerberos.module(),
        qlock.module(),
        qdrive.module(),
        qmail.module(),
        qchat.module(),
        qmask.module(),
        qindex.module(),
        qpic.module(),
        qwallet.module(),
        qmarket.module(),
        dao.module(),
        qflow.module(),
        oidc.module(),
        vc.module(),
        reputation.module(),
        privacy.module(),
    )
