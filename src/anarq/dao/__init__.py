"""DAO — communities that decide together: proposals, signed votes, delegation, and
decisions that execute themselves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.dao.service import DaoService

    return DaoService(
        kernel, needs["node"], needs["squid"], needs["qonsent"], needs["qwallet"], needs["qflow"]
    )


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.policy)


def _router() -> APIRouter:
    from anarq.dao.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.dao import tables
    from anarq.dao.cli import app

    return Module(
        name="dao",
        summary="DAOs: proposals with actions, signed votes (five kinds), delegation, execution",
        build=_build,
        requires=("node", "squid", "qonsent", "qerberos", "qwallet", "qflow"),
        tables=tables.TABLES,
        router=_router,
        cli=app,
        install=_install,
        tasks=("run_governance",),
    )
