"""sQuid — identity: keys in the user's hands, DIDs everywhere, signed requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.squid.service import SquidService

    return SquidService(kernel, needs["node"])


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.self_policy)


def _router() -> APIRouter:
    from anarq.squid.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.squid import tables
    from anarq.squid.cli import app

    return Module(
        name="squid",
        summary="Identities: create, register, resolve, use",
        build=_build,
        tables=(
            tables.identities,
            tables.nonces,
            tables.key_events,
            tables.aid_counts,
            tables.sessions,
        ),
        router=_router,
        cli=app,
        command="id",
        requires=("node",),
        install=_install,
    )
