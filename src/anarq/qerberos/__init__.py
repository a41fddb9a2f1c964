"""Qerberos — the audit log and the guard at the door."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.qerberos.service import QerberosService

    return QerberosService(kernel, needs["node"])


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.recorders.append(service.record)


def _router() -> APIRouter:
    from anarq.qerberos.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.qerberos import tables
    from anarq.qerberos.cli import app, security

    return Module(
        name="qerberos",
        summary="The verifiable audit log: tree heads, proofs, offline verification",
        build=_build,
        requires=("node",),
        tables=(tables.entries, tables.tree_nodes, tables.tree_heads, tables.alerts),
        router=_router,
        cli=app,
        command="audit",
        more_cli=(("security", security),),
        install=_install,
        tasks=("run_integrator",),
    )
