"""Qwallet — a double-entry ledger of assets (QTOKEN, PI, issued ones) and unique tokens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.qwallet.service import WalletService

    return WalletService(kernel, needs["node"], needs["squid"], needs["qonsent"])


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.policy)


def _router() -> APIRouter:
    from anarq.qwallet.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.qwallet import tables
    from anarq.qwallet.cli import app

    return Module(
        name="qwallet",
        summary="Wallet: a double-entry ledger of assets, two-phase and linked transfers, NFTs",
        build=_build,
        requires=("node", "squid", "qonsent", "qerberos"),
        tables=tables.TABLES,
        router=_router,
        cli=app,
        command="wallet",
        install=_install,
        tasks=("run_expiry",),
    )
