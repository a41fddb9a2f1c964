"""Qmarket — a marketplace of files, albums, unique tokens and services, paid through escrow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module, On

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.qmarket.service import MarketService

    return MarketService(
        kernel,
        needs["node"],
        needs["squid"],
        needs["qonsent"],
        needs["qwallet"],
        needs["qdrive"],
        needs["qpic"],
        needs["qindex"],
    )


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.policy)


def _router() -> APIRouter:
    from anarq.qmarket.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.qmarket import tables
    from anarq.qmarket.cli import app

    return Module(
        name="qmarket",
        summary="Marketplace: listings, escrowed purchases, delivery, disputes, licences, reviews",
        build=_build,
        requires=("node", "squid", "qonsent", "qerberos", "qwallet", "qdrive", "qpic", "qindex"),
        tables=tables.TABLES,
        router=_router,
        cli=app,
        command="market",
        handlers=(
            On("qwallet.transfer.expired", "on_hold_expired"),
            On("qdrive.file.deleted", "on_file_deleted"),
        ),
        install=_install,
        tasks=("run_deadlines",),
    )
