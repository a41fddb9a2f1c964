"""Workflow definitions: what starts a run, and its steps — in JSON or YAML.

```yaml
name: tidy-new-photos
trigger: {type: event, event: qpic.photo.imported}
steps:
  - id: clean
    action: qpic.strip
    with: {photo: "{{ trigger.data.photo_id }}"}
  - id: file
    action: qpic.add_to_album
    with: {album: 01J…, photos: ["{{ trigger.data.photo_id }}"]}
    if: {path: steps.clean.output.file, op: exists}
    retry: {attempts: 5, backoff_seconds: 2}
```

Values map data between steps: a string that is one `{{ path }}` becomes the value at
that path (keeping its type); `{{ … }}` inside longer text is replaced by its text. Paths
start at `trigger` (the event, schedule tick, webhook body or manual input), `steps.<id>`
(`output`, `status`) or `run` (`id`, `attempt`). Conditions are data, not code: a path, an
operator and a value. Nothing in a definition is evaluated as Python.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from anarq.kernel.errors import BadRequest

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
STEP_ID_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
STEPS_MAX = 50
DEFINITION_MAX_BYTES = 64 * 1024
EVENT_PATTERN = r"^[a-z*][a-z0-9_.*]{0,99}$"
_TEMPLATE = re.compile(r"\{\{\s*([a-zA-Z0-9_.\-]+)\s*\}\}")
_REDACTED = "[redacted]"
# Keys whose values never reach run history.
_SECRET_KEY = re.compile(r"(pass(word|phrase)?|secret|token|preimage|private|key)$", re.I)


class EventTrigger(BaseModel):
    """A bus event the owner took part in: its type (a pattern: `qpic.photo.*`) and
    fields it must have (`data.kind: photo`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["event"]
    event: str = Field(pattern=EVENT_PATTERN)
    where: dict[str, str | int | bool] = Field(default_factory=dict, max_length=10)


class ScheduleTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["schedule"]
    every_seconds: int = Field(ge=60, le=366 * 86_400)


class WebhookTrigger(BaseModel):
    """A POST to the workflow's hook URL, signed with its secret (HMAC-SHA256 of the body)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["webhook"]


class ManualTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["manual"]


Trigger = Annotated[
    EventTrigger | ScheduleTrigger | WebhookTrigger | ManualTrigger, Field(discriminator="type")
]


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=200)
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "exists", "missing"]
    value: Any = None


class Retry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=3, ge=1, le=20, description="Tries in all.")
    backoff_seconds: float = Field(default=1.0, ge=0, le=3600)
    factor: float = Field(default=2.0, ge=1, le=10, description="Each wait this much longer.")


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(pattern=STEP_ID_PATTERN)
    action: str = Field(min_length=3, max_length=64)
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    if_: Condition | None = Field(default=None, alias="if")
    retry: Retry = Field(default_factory=Retry)
    timeout_seconds: float = Field(default=60, gt=0, le=3600)


class Definition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=2000)
    trigger: Trigger
    steps: list[Step] = Field(min_length=1, max_length=STEPS_MAX)

    @field_validator("steps")
    @classmethod
    def _distinct(cls, steps: list[Step]) -> list[Step]:
        ids = [s.id for s in steps]
        if len(set(ids)) != len(ids):
            raise ValueError("step ids are distinct")
        return steps

    @model_validator(mode="after")
    def _paths_look_back(self) -> Definition:
        """A step reads only the trigger and the steps before it."""
        seen: set[str] = set()
        for step in self.steps:
            for path in _paths(step.with_) + ([step.if_.path] if step.if_ else []):
                head = path.split(".")
                if head[0] == "steps" and (len(head) < 2 or head[1] not in seen):
                    raise ValueError(f"step {step.id} reads {path}: no earlier step is named so")
                if head[0] not in ("trigger", "steps", "run"):
                    raise ValueError(
                        f"step {step.id} reads {path}: paths start at trigger, steps or run"
                    )
            seen.add(step.id)
        return self

    def canonical(self) -> str:
        """The definition as stored and compared: JSON, sorted keys, indented (for diffs)."""
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=2, sort_keys=True)


def parse(text: str) -> Definition:
    """A definition from JSON or YAML text; `BadRequest` saying what is wrong."""
    if len(text.encode()) > DEFINITION_MAX_BYTES:
        raise BadRequest(f"a definition is at most {DEFINITION_MAX_BYTES} bytes")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BadRequest(f"the definition is neither JSON nor YAML: {exc}") from None
    return validate(data)


def validate(data: Any) -> Definition:
    try:
        return Definition.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "definition"
        raise BadRequest(f"{where}: {first['msg']}", errors=len(exc.errors())) from None


# Data mapping and conditions ------------------------------------------------------------


def lookup(context: dict[str, Any], path: str) -> tuple[bool, Any]:
    """(found, value) at a dotted path; list items by index (`photos.0`)."""
    value: Any = context
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def render(template: Any, context: dict[str, Any]) -> Any:
    """`template` with every `{{ path }}` filled from `context`."""
    if isinstance(template, dict):
        return {key: render(value, context) for key, value in template.items()}
    if isinstance(template, list):
        return [render(value, context) for value in template]
    if not isinstance(template, str):
        return template
    whole = _TEMPLATE.fullmatch(template.strip())
    if whole:
        found, value = lookup(context, whole.group(1))
        if not found:
            raise BadRequest(f"{whole.group(1)} has no value in this run")
        return value

    def text(match: re.Match[str]) -> str:
        found, value = lookup(context, match.group(1))
        if not found:
            raise BadRequest(f"{match.group(1)} has no value in this run")
        return value if isinstance(value, str) else json.dumps(value)

    return _TEMPLATE.sub(text, template)


def holds(condition: Condition, context: dict[str, Any]) -> bool:
    found, value = lookup(context, condition.path)
    op, wanted = condition.op, render(condition.value, context)
    if op == "exists":
        return found and value is not None
    if op == "missing":
        return not found or value is None
    if not found:
        return False
    try:
        if op == "eq":
            return bool(value == wanted)
        if op == "ne":
            return bool(value != wanted)
        if op == "gt":
            return bool(value > wanted)
        if op == "gte":
            return bool(value >= wanted)
        if op == "lt":
            return bool(value < wanted)
        if op == "lte":
            return bool(value <= wanted)
        if op == "in":
            return value in wanted
        return wanted in value  # contains
    except TypeError:
        return False  # e.g. a number against a string: not a match


def redacted(value: Any) -> Any:
    """`value` for run history: what sits under secret-sounding keys is replaced."""
    if isinstance(value, dict):
        return {
            key: _REDACTED if _SECRET_KEY.search(str(key)) else redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redacted(item) for item in value]
    return value


def _paths(template: Any) -> list[str]:
    if isinstance(template, dict):
        return [p for value in template.values() for p in _paths(value)]
    if isinstance(template, list):
        return [p for value in template for p in _paths(value)]
    if isinstance(template, str):
        return _TEMPLATE.findall(template)
    return []
