"""Qindex — index and search: full-text search over what you may read, and mutable pointers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module, On

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.qindex.service import QindexService

    return QindexService(kernel, needs["qonsent"], needs["qdrive"])


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.policy)


def _router() -> APIRouter:
    from anarq.qindex.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.qindex import tables
    from anarq.qindex.cli import app, search_app

    return Module(
        name="qindex",
        summary="Pointers: keys in your namespace pointing at CIDs, with history",
        build=_build,
        requires=("qonsent", "qdrive"),
        tables=tables.TABLES,
        router=_router,
        cli=app,
        command="index",
        more_cli=(("search", search_app),),
        handlers=(
            On("qdrive.file.stored", "on_file_stored"),
            On("qdrive.file.moved", "on_file_moved"),
            On("qdrive.file.trashed", "on_file_trashed"),
            On("qdrive.file.restored", "on_file_restored"),
            On("qdrive.file.deleted", "on_file_deleted"),
        ),
        install=_install,
        tasks=("run_embedder",),
    )
