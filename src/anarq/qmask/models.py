"""Qmask's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from anarq.qmask import kanon, pii, rules
from anarq.qmask.tables import DESCRIPTION_MAX, DID_MAX, NAME_MAX

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
RECORDS_MAX = 1000
REGION_PATTERN = r"^[A-Z]{2}$"
Action = Literal["remove", "redact", "pseudonym", "generalize", "encrypt"]
EntityType = Literal[
    "EMAIL",
    "PHONE",
    "CREDIT_CARD",
    "IBAN",
    "IP_ADDRESS",
    "DATE_OF_BIRTH",
    "URL_CREDENTIALS",
    "CRYPTO_ADDRESS",
    "US_SSN",
    "ES_DNI",
    "NL_BSN",
]
assert set(EntityType.__args__) == set(pii.ENTITY_TYPES)  # type: ignore[attr-defined]
Mode = Literal["mask", "partial", "hash"]
Cell = str | int | float | None
Region = Annotated[str, Field(pattern=REGION_PATTERN)]


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(
        min_length=1,
        max_length=rules.FIELD_MAX_CHARS,
        description="Dotted path into the record; `*` for every list item or object value.",
        examples=["contact.email", "visits.*.ip"],
    )
    action: Action
    arg: str | None = Field(
        default=None,
        max_length=40,
        description="generalize: month|year|decade, a width, or characters to keep; "
        "redact: pii|pii-partial|pii-hash.",
    )


class ImageOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep_icc: bool = Field(default=True, description="Keep the colour profile.")


class ProfileRequest(BaseModel):
    """Create a profile, or a new version of one of yours with the same name."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    rules: list[RuleSpec] = Field(default=[], max_length=rules.RULES_MAX)
    image: ImageOptions | None = Field(
        default=None, description="How this profile strips images; null: not for images."
    )


class Profile(BaseModel):
    id: str | None = Field(description="None for a built-in profile.")
    owner: str | None = Field(description="The owner's DID; None for a built-in profile.")
    name: str
    version: int
    latest_version: int
    builtin: bool
    description: str
    rules: list[RuleSpec]
    image: ImageOptions | None
    created_at: datetime | None = None
    created_by: str | None = None


class ProfileSummary(BaseModel):
    name: str
    owner: str | None
    version: int
    builtin: bool
    description: str
    rules: int
    updated_at: datetime | None = None


class ApplyRequest(BaseModel):
    """Mask records with a profile: pseudonyms and sealing are yours (the caller's)."""

    model_config = ConfigDict(extra="forbid")

    profile: str = Field(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)
    owner: str | None = Field(
        default=None,
        min_length=8,
        max_length=DID_MAX,
        description="Whose profile [default: yours, else the node's built-in].",
    )
    version: int | None = Field(default=None, ge=1, description="[default: the latest]")
    records: list[dict[str, Any]] = Field(min_length=1, max_length=RECORDS_MAX)


class Applied(BaseModel):
    profile: str
    owner: str | None
    version: int
    records: list[dict[str, Any]]


class DetectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=pii.TEXT_MAX_CHARS)
    types: list[EntityType] | None = Field(default=None, description="[default: all]")
    regions: list[Region] = Field(
        default=list(pii.DEFAULT_REGIONS),
        max_length=10,
        description="Countries (ISO 3166) whose national phone formats are recognised.",
    )
    min_score: float = Field(default=pii.DEFAULT_MIN_SCORE, ge=0, le=1)


class RedactRequest(DetectRequest):
    mode: Mode = "mask"


class EntityInfo(BaseModel):
    type: str
    start: int
    end: int
    text: str
    score: float


class Detected(BaseModel):
    entities: list[EntityInfo]


class RedactedText(BaseModel):
    text: str
    entities: list[EntityInfo]


class AnonymizeRequest(BaseModel):
    """Rows as JSON objects, or one CSV text with a header row."""

    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, Cell]] | None = Field(default=None, max_length=kanon.ROWS_MAX)
    csv: str | None = Field(default=None, max_length=64 * 1024 * 1024)
    quasi_identifiers: list[str] = Field(min_length=1, max_length=kanon.QI_MAX)
    k: int = Field(ge=2, le=kanon.K_MAX)
    max_suppression: float = Field(default=0.05, ge=0, le=1)
    drop: list[str] = Field(default=[], max_length=kanon.COLUMNS_MAX)


class RiskInfo(BaseModel):
    highest: float = Field(description="Prosecutor risk: 1 / the smallest class.")
    average: float = Field(description="Mean over records of 1 / their class's size.")


class AnonymizeResult(BaseModel):
    rows: list[dict[str, Cell]] | None = None
    csv: str | None = None
    k: int
    k_achieved: int
    suppressed: int
    classes: int
    generalization: dict[str, str]
    risk: RiskInfo
    risk_before: RiskInfo
