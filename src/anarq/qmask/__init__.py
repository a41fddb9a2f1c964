"""Qmask — privacy transforms: profiles for records, PII in text, image metadata, k-anonymity.

`anarq.qmask.pii`, `.image`, `.kanon` and `.rules` are pure and work without a node;
`module()` adds the node module (profiles, HTTP, CLI).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import APIRouter

    from anarq.kernel import Kernel
    from anarq.kernel.module import Module


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.qmask.service import QmaskService

    return QmaskService(kernel, needs["node"], needs["squid"], needs["qonsent"])


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.policy)


def _router() -> APIRouter:
    from anarq.qmask.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.kernel.module import Module
    from anarq.qmask import tables
    from anarq.qmask.cli import app

    return Module(
        name="qmask",
        summary="Privacy transforms: profiles, PII detection and redaction, image "
        "metadata stripping, k-anonymity",
        build=_build,
        requires=("node", "squid", "qonsent"),
        tables=tables.TABLES,
        router=_router,
        cli=app,
        command="mask",
        install=_install,
    )
