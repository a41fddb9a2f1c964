"""Qdrive — files: each identity's own drive, encrypted at rest, versioned, shared by key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.qdrive.service import DriveService

    return DriveService(kernel, needs["node"], needs["squid"], needs["qonsent"])


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.policy)


def _router() -> APIRouter:
    from anarq.qdrive.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.qdrive import tables
    from anarq.qdrive.cli import app

    return Module(
        name="qdrive",
        summary="Files: upload, download, versions, trash, sharing, quota",
        build=_build,
        requires=("node", "squid", "qonsent"),
        tables=tables.TABLES,
        router=_router,
        cli=app,
        command="drive",
        install=_install,
        tasks=("run_housekeeping",),
    )
