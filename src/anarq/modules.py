"""The modules this node runs, in no particular order (the node sorts them by dependency)."""

from __future__ import annotations

from anarq.kernel.module import Module


def installed_modules() -> list[Module]:
    from anarq.node import module as node
    from anarq.qerberos import module as qerberos
    from anarq.qonsent import module as qonsent

    return [node, qonsent, qerberos]
