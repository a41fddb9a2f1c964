"""Request and response types of the node module."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from anarq.node.tables import CONTACT_MAX, DESCRIPTION_MAX, NAME_MAX


class NodeInfo(BaseModel):
    did: str = Field(description="The node's own identity (did:key), which signs for it.")
    name: str
    version: str
    backend: str = Field(description="`embedded` or `cluster`.")
    public_url: str
    modules: list[str]
    worker_id: str
    started_at: datetime


class Profile(BaseModel):
    name: str
    description: str
    contact: str
    avatar_cid: str | None
    revision: int
    updated_at: datetime


class ProfileUpdate(BaseModel):
    """Fields to change; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    contact: str | None = Field(default=None, max_length=CONTACT_MAX)


class Worker(BaseModel):
    id: str
    url: str
    host: str
    pid: int
    version: str
    started_at: datetime
    last_seen_at: datetime
    stopped_at: datetime | None
    alive: bool


class ActivityRow(BaseModel):
    event_type: str
    count: int
    last_event_id: str
    last_event_at: datetime


class OperatorToken(BaseModel):
    id: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


class IssuedToken(BaseModel):
    id: str
    label: str
    token: str = Field(description="Shown once; the node keeps only its hash.")
