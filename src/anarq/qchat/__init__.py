"""Qchat — real-time chat between identities: rooms, roles, end-to-end encrypted rooms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.qchat.service import ChatService

    return ChatService(kernel, needs["squid"], needs["qonsent"])


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.policy)


def _router() -> APIRouter:
    from anarq.qchat.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.qchat import tables
    from anarq.qchat.cli import app

    return Module(
        name="qchat",
        summary="Chat: rooms, roles and moderation, live over WebSocket, end-to-end rooms",
        build=_build,
        requires=("squid", "qonsent"),
        tables=tables.TABLES,
        router=_router,
        cli=app,
        command="chat",
        install=_install,
        tasks=("run_live_bridge",),
    )
