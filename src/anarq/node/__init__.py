"""The `node` module: the node's identity card, its public profile, workers, activity and
operator tokens. The first module on the kernel, and the smallest complete example of one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module, On

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, _needs: Mapping[str, Any]) -> Any:
    from anarq.modules import installed_modules
    from anarq.node.service import NodeService

    return NodeService(kernel, sorted(m.name for m in installed_modules()))


def _router() -> APIRouter:
    from anarq.node.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.node import tables
    from anarq.node.cli import app

    return Module(
        name="node",
        summary="Node info, public profile, workers, event activity, operator tokens",
        build=_build,
        tables=(
            tables.profile,
            tables.workers,
            tables.activity,
            tables.operator_tokens,
            tables.keys,
        ),
        router=_router,
        cli=app,
        handlers=(On(">", "record_activity"),),
        tasks=("run_housekeeping",),
    )
