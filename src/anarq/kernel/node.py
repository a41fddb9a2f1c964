"""`Node`: one process's container. Builds every module's service once and wires handlers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from anarq.kernel import Kernel
from anarq.kernel.bus import Subscription
from anarq.kernel.clock import Clock
from anarq.kernel.module import Module, build_order
from anarq.kernel.settings import Settings


class Node:
    def __init__(self, kernel: Kernel, modules: Sequence[Module]) -> None:
        self.kernel = kernel
        self.modules = build_order(list(modules))
        self.services: dict[str, Any] = {}
        for module in self.modules:
            needed = {name: self.services[name] for name in module.requires}
            service = module.build(kernel, needed)
            self.services[module.name] = service
            if module.install is not None:
                module.install(kernel, service)
            for on in module.handlers:
                kernel.bus.subscribe(
                    Subscription(
                        name=f"{module.name}.{on.method}",
                        pattern=on.pattern,
                        handle=getattr(service, on.method),
                        wants=getattr(service, on.wants) if on.wants else None,
                    )
                )

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        modules: Sequence[Module] | None = None,
        clock: Clock | None = None,
    ) -> Node:
        if modules is None:
            from anarq.modules import installed_modules

            modules = installed_modules()
        return cls(Kernel.open(settings, clock=clock), modules)

    def service(self, name: str) -> Any:
        try:
            return self.services[name]
        except KeyError:
            raise LookupError(f"no module named {name!r} in this node") from None

    def close(self) -> None:
        self.kernel.close()
