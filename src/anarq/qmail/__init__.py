"""Qmail — certified mail between identities: signed, sealed end to end, with receipts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.qmail.service import MailService

    return MailService(kernel, needs["node"], needs["squid"], needs["qerberos"], needs["qwallet"])


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.policy)


def _router() -> APIRouter:
    from anarq.qmail.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.qmail import tables
    from anarq.qmail.cli import app

    return Module(
        name="qmail",
        summary="Mail: signed, end-to-end sealed, certified by receipts; folders, threads",
        build=_build,
        requires=("node", "squid", "qerberos", "qwallet"),
        tables=tables.TABLES,
        router=_router,
        cli=app,
        command="mail",
        install=_install,
        tasks=("run_housekeeping",),
    )
