"""Verifiable credentials — W3C VC Data Model 2.0 with `eddsa-jcs-2022` Data Integrity
proofs: issued by the node or by identities, held, presented, verified offline, and
revoked through Bitstring Status Lists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.vc.service import VcService

    return VcService(kernel, needs["node"], needs["dao"], needs["qmarket"])


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.policy)


def _router() -> APIRouter:
    from anarq.vc.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.vc import tables
    from anarq.vc.cli import app

    return Module(
        name="vc",
        summary="Verifiable credentials: issue, hold, present, verify offline, revoke",
        build=_build,
        requires=("node", "squid", "qonsent", "qerberos", "dao", "qmarket"),
        tables=tables.TABLES,
        router=_router,
        cli=app,
        install=_install,
    )
