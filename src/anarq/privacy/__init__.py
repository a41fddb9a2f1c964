"""Privacy — data-subject requests: export everything about me, erase me (with a receipt)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.privacy.service import PrivacyService

    return PrivacyService(kernel, needs["node"])


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.policy)


def _router() -> APIRouter:
    from anarq.privacy.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.privacy.cli import app

    return Module(
        name="privacy",
        summary="Data-subject requests: export what the node holds about you, erase it",
        build=_build,
        requires=("node",),
        router=_router,
        cli=app,
        install=_install,
    )
