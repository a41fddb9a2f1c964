"""Alembic environment: runs on the connection the node hands it (see `Database.upgrade`)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context

import anarq.modules
from anarq.kernel import tables as _kernel_tables  # noqa: F401  (registers kernel tables)
from anarq.kernel.db import UtcDateTime, metadata
from anarq.migrations import include_object

for _module in anarq.modules.installed_modules():
    _ = _module.tables  # importing each module registers its tables on `metadata`

target_metadata = metadata


def _render_item(kind: str, obj: Any, _context: Any) -> str | Literal[False]:
    # Migrations stay frozen in plain SQLAlchemy types, independent of today's code.
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


connection = context.config.attributes.get("connection")
assert connection is not None, "migrations run through `anarq db upgrade`, which gives a connection"

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    render_item=_render_item,
    include_object=include_object,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
