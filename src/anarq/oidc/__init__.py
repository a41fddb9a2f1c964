"""OpenID provider — "Sign in with sQuid": other applications sign people in with their
identity, see only what the person consents to, and cannot correlate them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.kernel import Kernel
from anarq.kernel.module import Module

if TYPE_CHECKING:
    from fastapi import APIRouter


def _build(kernel: Kernel, needs: Mapping[str, Any]) -> Any:
    from anarq.oidc.service import OidcService

    return OidcService(kernel, needs["node"], needs["squid"], needs["qonsent"])


def _install(kernel: Kernel, service: Any) -> None:
    kernel.guard.policies.append(service.policy)


def _router() -> APIRouter:
    from anarq.oidc.api import router

    return router


def _protocol() -> APIRouter:
    from anarq.oidc.api import protocol

    return protocol


def module() -> Module:
    """This package's `Module`, built on demand so importing the package stays cheap."""
    from anarq.oidc import tables
    from anarq.oidc.cli import app

    return Module(
        name="oidc",
        summary="OpenID Connect provider: sign in with sQuid, pairwise subjects, consent as grants",
        build=_build,
        requires=("node", "squid", "qonsent", "qerberos"),
        tables=tables.TABLES,
        router=_router,
        protocol_router=_protocol,
        cli=app,
        install=_install,
    )
