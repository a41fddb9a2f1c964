"""Qonsent — consent and permissions: who may do what with which resources, why, until when."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.qonsent.service import QonsentService

    return QonsentService(kernel, needs["node"], needs["squid"])


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.policy)


def _router() -> APIRouter:
    from anarq.qonsent.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.qonsent import tables
    from anarq.qonsent.cli import app

    return Module(
        name="qonsent",
        summary="Consent and permissions: grant, revoke, check, list",
        build=_build,
        requires=("node", "squid"),
        tables=(tables.grants, tables.owners, tables.revoked_capabilities),
        router=_router,
        cli=app,
        command="consent",
        install=_install,
    )
