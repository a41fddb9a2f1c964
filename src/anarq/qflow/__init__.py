"""Qflow — automations of one's own node: triggers, steps calling module actions under the
owner's permissions, durable runs that resume after a crash, versions and history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module, On

if TYPE_CHECKING:
    from fastapi import APIRouter

# The modules whose actions steps may call (see `qflow.actions`).
USES = ("qwallet", "qdrive", "qpic", "qmask", "qindex", "qmarket")


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.qflow.service import QflowService

    return QflowService(kernel, needs["qonsent"], {name: needs[name] for name in USES})


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.policy)


def _router() -> APIRouter:
    from anarq.qflow.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.qflow import tables
    from anarq.qflow.cli import app

    return Module(
        name="qflow",
        summary="Automation: workflows of module actions, run durably under your permissions",
        build=_build,
        requires=("qonsent", "qerberos", *USES),
        tables=tables.TABLES,
        router=_router,
        cli=app,
        command="flow",
        handlers=(On(">", "on_event", wants="wants_event"),),
        install=_install,
        tasks=("run_engine",),
    )
