"""`anarq up`: prepare the data directory and backends, then serve until Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import typer

from anarq.cli.output import console
from anarq.kernel.blobs import open_blob_store
from anarq.kernel.bus import open_transport
from anarq.kernel.db import Database
from anarq.kernel.errors import SettingsError
from anarq.kernel.guard import Context
from anarq.kernel.node import Node
from anarq.kernel.settings import Settings, load_settings


def up(
    host: str | None = typer.Option(None, help="Address to listen on [default: 127.0.0.1]."),
    port: int | None = typer.Option(None, help="Port to listen on [default: 8080]."),
    data_dir: Path | None = typer.Option(None, help="Data directory [default: ./anarq-data]."),
) -> None:
    """Start a node: migrate the database, check every backend, serve HTTP until Ctrl-C.

    Embedded by default (SQLite, a local blob folder, in-process events). Set
    ANARQ_DATABASE_URL, ANARQ_BLOBS_URL and ANARQ_BUS_URL to run as one of many
    stateless workers on PostgreSQL, S3 and NATS JetStream.
    """
    import uvicorn

    from anarq.gateway.app import create_app

    overrides: dict[str, Any] = {
        key: value
        for key, value in {"host": host, "port": port, "data_dir": data_dir}.items()
        if value is not None
    }
    settings = load_settings(**overrides)
    _configure_logging(settings.log_level)
    prepare(settings)
    node = Node.open(settings)
    try:
        _ensure_operator_token(node, settings)
        console.print(
            f"[bold]AnarQ&Q[/bold] node on [cyan]{settings.effective_public_url}[/cyan] "
            f"({settings.backend_kind}; data in {settings.data_dir}) — Ctrl-C stops it",
            highlight=False,
        )
        uvicorn.run(
            create_app(node),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        node.close()


def prepare(settings: Settings) -> None:
    """Reach every backend and bring the schema up to date; one clear error if anything fails."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.effective_database_url.startswith("postgresql") and settings.secret_key is None:
        raise SettingsError(
            "ANARQ_SECRET_KEY is required when the database is shared: set the same random "
            "value (e.g. `openssl rand -base64 32`) on every worker"
        )
    database = Database(settings.effective_database_url, pool_size=1)
    try:
        database.ping()
        database.upgrade()
    finally:
        database.close()
    blobs = open_blob_store(
        settings.effective_blobs_url, spool_dir=str(settings.data_dir / "spool")
    )
    try:
        blobs.ping()
    finally:
        blobs.close()

    async def ping_bus() -> None:
        transport = open_transport(settings.effective_bus_url, cluster=settings.cluster)
        try:
            await transport.ping()
        finally:
            await transport.stop()

    asyncio.run(ping_bus())


def _ensure_operator_token(node: Node, settings: Settings) -> None:
    """On first start, issue an operator token into `<data dir>/operator.token` (mode 0600)."""
    from anarq.node.service import NodeService

    path = settings.data_dir / "operator.token"
    service: NodeService = node.service("node")
    if path.exists() or settings.operator_token is not None:
        return
    issued = service.issue_operator_token(Context.system(), f"first start on {os.uname().nodename}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(issued.token + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    console.print(f"operator token written to [cyan]{path}[/cyan] (keep it secret)")


def _configure_logging(level: str) -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s %(message)s",
    )
