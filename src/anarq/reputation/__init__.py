"""Reputation — an explainable score from facts this node can check, signed as a
verifiable credential."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.reputation.service import ReputationService

    service = ReputationService(
        kernel, needs["node"], needs["squid"], needs["qmarket"], needs["dao"], needs["vc"]
    )
    # Qmail lets strangers above a recipient's threshold into the inbox.
    needs["qmail"].reputation_of = lambda did: service.score(did).score
    return service


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.policy)


def _router() -> APIRouter:
    from anarq.reputation.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.reputation import tables
    from anarq.reputation.cli import app

    return Module(
        name="reputation",
        summary="Reputation: a score with its reasons, from checked facts, signed",
        build=_build,
        requires=("node", "squid", "qerberos", "qmail", "qmarket", "dao", "vc"),
        tables=tables.TABLES,
        router=_router,
        cli=app,
        install=_install,
    )
