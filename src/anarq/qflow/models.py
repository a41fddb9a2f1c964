"""Qflow's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from anarq.qflow.definition import DEFINITION_MAX_BYTES


class WorkflowIn(BaseModel):
    """A definition as JSON or YAML text (or as a JSON object)."""

    model_config = ConfigDict(extra="forbid")

    definition: str | dict[str, Any] = Field(description="JSON or YAML text, or an object.")
    note: str = Field(default="", max_length=200, description="What this version changes.")
    enabled: bool = True


class Workflow(BaseModel):
    id: str
    owner: str
    name: str
    version: int
    enabled: bool
    trigger: str
    event: str | None
    hook_url: str | None = Field(description="Where a webhook trigger listens (POST).")
    hook_secret: str | None = Field(
        default=None, description="Shown once, when the webhook workflow is created."
    )
    next_run_at: datetime | None
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class Version(BaseModel):
    version: int
    note: str
    created_at: datetime
    definition: dict[str, Any] | None = None


class Diff(BaseModel):
    workflow_id: str
    from_version: int
    to_version: int
    diff: str = Field(description="Unified diff of the canonical JSON definitions.")


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: dict[str, Any] = Field(default_factory=dict, description="The run's trigger.data.")
    id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{8,64}$", description="Resending it runs once."
    )


class StepRun(BaseModel):
    step: str
    attempt: int
    status: str
    input: Any
    output: Any
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class Run(BaseModel):
    id: str
    workflow_id: str
    version: int
    status: str
    trigger: dict[str, Any]
    step: int = Field(description="How many steps are behind it.")
    attempt: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    steps: list[StepRun] = Field(default_factory=list)


class RunPage(BaseModel):
    runs: list[Run]
    next_cursor: str | None


class ActionInfo(BaseModel):
    name: str
    summary: str
    input: dict[str, Any] = Field(description="JSON schema of its `with`.")


assert DEFINITION_MAX_BYTES > 0
