"""The `Module` contract: what a module tells the node about itself.

A module is a package under `anarq/` whose `__init__.py` exposes `module = Module(...)`.
The node builds every module's service once, in dependency order, handing each
the kernel and the services it named in `requires` (constructor injection).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from anarq.kernel import Kernel

MODULE_NAME_RE = re.compile(r"^[a-z][a-z0-9]{1,20}$")


@dataclass(frozen=True)
class On:
    """Call service method `method(tx, event)` for events matching `pattern`; with
    `wants`, only for event types its method `wants(event_type) -> bool` accepts (a cheap
    check in memory, made before any delivery is queued or transaction opened)."""

    pattern: str
    method: str
    wants: str | None = None


@dataclass(frozen=True)
class Module:
    name: str
    summary: str
    build: Callable[[Kernel, Mapping[str, Any]], Any]
    requires: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    # Loads the module's HTTP routes on demand, so that commands that do not serve
    # (the CLI) never import them.
    router: Callable[[], APIRouter] | None = None
    # Routes mounted at the root without the node's authentication, for protocols that
    # bring their own credentials (OAuth client secrets and access tokens) and paths
    # fixed by a standard (`/.well-known/…`). Their paths are absolute.
    protocol_router: Callable[[], APIRouter] | None = None
    cli: typer.Typer | None = None
    # The CLI word when it differs from the module name (`anarq consent …` for qonsent).
    command: str | None = None
    # Further top-level command groups, as (word, app): `anarq security …` for Qerberos.
    more_cli: tuple[tuple[str, typer.Typer], ...] = ()
    handlers: tuple[On, ...] = ()
    # Called once the service is built: how a module adds a guard policy or an audit
    # recorder to the kernel.
    install: Callable[[Kernel, Any], None] | None = None
    # Service coroutine methods `method(stop: asyncio.Event)` the node runs while it serves.
    tasks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        assert MODULE_NAME_RE.match(self.name), f"bad module name {self.name!r}"
        for table in self.tables:
            assert table.name.startswith(f"{self.name}_"), (
                f"table {table.name} of module {self.name} must be prefixed {self.name}_"
            )


def build_order(modules: list[Module]) -> list[Module]:
    """Modules sorted so that each comes after everything it requires."""
    by_name = {module.name: module for module in modules}
    assert len(by_name) == len(modules), "two modules share a name"
    ordered: list[Module] = []
    state: dict[str, str] = {}

    def visit(module: Module, path: tuple[str, ...]) -> None:
        if state.get(module.name) == "done":
            return
        if state.get(module.name) == "visiting":
            raise ValueError(f"module dependency cycle: {' -> '.join((*path, module.name))}")
        state[module.name] = "visiting"
        for needed in module.requires:
            if needed not in by_name:
                raise ValueError(f"module {module.name} requires unknown module {needed}")
            visit(by_name[needed], (*path, module.name))
        state[module.name] = "done"
        ordered.append(module)

    for module in modules:
        visit(module, ())
    return ordered
