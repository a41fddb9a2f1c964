"""QpiC — photos and media: thumbnails, albums, a timeline, near-duplicates, sharing; in Qdrive."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module, On

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.qpic.service import QpicService

    return QpicService(kernel, needs["qdrive"], needs["qonsent"], needs["qmask"])


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.policy)


def _router() -> APIRouter:
    from anarq.qpic.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.qpic import tables
    from anarq.qpic.cli import app

    return Module(
        name="qpic",
        summary="Photos and videos: import, thumbnails, albums, timeline, duplicates, sharing",
        build=_build,
        requires=("qdrive", "qonsent", "qmask"),
        tables=tables.TABLES,
        router=_router,
        cli=app,
        command="pic",
        install=_install,
        handlers=(On("qdrive.file.deleted", "on_file_deleted"),),
        tasks=("run_housekeeping",),
    )
