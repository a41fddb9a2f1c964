"""Node settings: `ANARQ_*` environment variables over an optional TOML file over defaults.

Settings are validated once, at start. A bad value or an unknown key is a
`SettingsError` whose message names the key and what is wrong, so the CLI can
print one line instead of a traceback.
"""

from __future__ import annotations

import os
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from anarq.kernel.errors import SettingsError

ENV_PREFIX = "ANARQ_"
# Environment variables read by the CLI itself, not settings of the node.
_CLI_ONLY_ENV = {
    "ANARQ_CONFIG",
    "ANARQ_URL",
    "ANARQ_OPERATOR_TOKEN",
    "ANARQ_HOME",
    "ANARQ_PASSPHRASE",
    "ANARQ_IDENTITY",
}

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Everything a node needs to start. Field names are the env var names without the prefix."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        case_sensitive=False,
        frozen=True,
    )

    data_dir: Path = Field(default=Path("anarq-data"), description="Where embedded state lives.")
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means SQLite in the data dir."
    )
    blobs_url: str = Field(default="", description="Blob store URL; empty means a local folder.")
    bus_url: str = Field(default="", description="Event bus; empty means in-process.")
    cluster: str = Field(
        default="anarq",
        pattern=r"^[a-z][a-z0-9_]{0,30}$",
        description="Name shared by the workers of one node; namespaces bus streams.",
    )
    node_name: str = Field(default="AnarQ&Q node", min_length=1, max_length=120)
    host: str = Field(default="127.0.0.1")
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = Field(default="", description="URL peers and browsers reach this node at.")
    max_body_bytes: int = Field(default=16 * MIB, ge=1024, le=1024 * MIB)
    log_level: str = Field(default="info", pattern=r"^(debug|info|warning|error)$")
    database_pool_size: int = Field(default=10, ge=1, le=200)
    bus_max_attempts: int = Field(default=8, ge=1, le=100)
    bus_retry_base_ms: int = Field(default=500, ge=10, le=600_000)
    bus_poll_ms: int = Field(default=500, ge=10, le=60_000)
    bus_retention_hours: int = Field(
        default=7 * 24,
        ge=1,
        le=24 * 3650,
        description="How long dispatched events and consumed-event ids are kept.",
    )
    rate_limit_ip_per_minute: int = Field(
        default=1200, ge=1, le=10_000_000, description="Requests per minute from one address."
    )
    rate_limit_identity_per_minute: int = Field(
        default=600, ge=1, le=10_000_000, description="Requests per minute by one identity."
    )
    lockout_failures: int = Field(
        default=10, ge=1, le=10_000, description="Failed authentications before a lockout."
    )
    lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    max_sub_identities: int = Field(
        default=10, ge=0, le=10_000, description="Sub-identities one root identity may hold."
    )
    drive_quota_bytes: int = Field(
        default=10 * 1024 * MIB,
        ge=0,
        description="Bytes one identity may keep in Qdrive (every version and the trash count).",
    )
    index_file_contents: bool = Field(
        default=True,
        description="Qindex indexes the text of text-like files (the index holds it in "
        "plain terms, even for private files); false indexes names and metadata only.",
    )
    semantic_search: bool = Field(
        default=False,
        description="Qindex also finds documents by meaning, with a small embedding model "
        "that runs on this machine (all-MiniLM-L6-v2); needs the `semantic` extra installed.",
    )
    market_fee_bps: int = Field(
        default=100,
        ge=0,
        le=5000,
        description="Qmarket's fee on every sale, in basis points (100 = 1 %), paid to the "
        "node out of the price; an order keeps the fee it was placed at.",
    )
    market_acceptance_hours: int = Field(
        default=72,
        ge=1,
        le=90 * 24,
        description="Hours a buyer has to accept or dispute a delivered service before "
        "the node settles it.",
    )
    market_dispute_hours: int = Field(
        default=14 * 24,
        ge=1,
        le=180 * 24,
        description="Hours a moderator has to resolve a dispute before the buyer is refunded.",
    )
    flow_lease_seconds: int = Field(
        default=30,
        ge=2,
        le=3600,
        description="How long a Qflow worker holds a run it took: a worker that died gives "
        "its runs to the others after this long.",
    )
    smtp_url: str = Field(
        default="",
        description="Mail relay for messages to email addresses (the verified-email "
        "credential): smtp://host:25, smtp+starttls://user:password@host:587 or "
        "smtps://user:password@host:465; empty means the node sends no email.",
    )
    smtp_from: str = Field(
        default="", description="The From address of email the node sends [anarq@<host>]."
    )
    secret_key: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="Encrypts the node's private key at rest. Required when workers share a "
        "database; embedded nodes keep one in <data dir>/node.secret.",
    )
    operator_token: SecretStr | None = Field(
        default=None, description="Bootstrap operator token, if not kept in the database."
    )

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:// or postgresql+psycopg:// URL")
        return value

    @field_validator("blobs_url")
    @classmethod
    def _blobs_scheme(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in ("file", "s3"):
            raise ValueError("must be a file:// path or an s3://bucket?endpoint=… URL")
        return value

    @field_validator("bus_url")
    @classmethod
    def _bus_scheme(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in ("memory", "nats", "tls"):
            raise ValueError("must be empty, memory:// or a nats:// URL")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)

    # Derived values (settings are immutable once loaded, so each is computed once) --------

    @cached_property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'anarq.db').resolve()}"

    @cached_property
    def effective_blobs_url(self) -> str:
        return self.blobs_url or (self.data_dir / "blobs").resolve().as_uri()

    @cached_property
    def effective_bus_url(self) -> str:
        return self.bus_url or "memory://"

    @cached_property
    def effective_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @cached_property
    def backend_kind(self) -> str:
        """`embedded` when every backend is local, `cluster` when any is shared."""
        shared = (
            self.effective_database_url.startswith("postgresql")
            or self.effective_blobs_url.startswith("s3")
            or self.effective_bus_url.startswith(("nats", "tls"))
        )
        return "cluster" if shared else "embedded"

    def redacted(self) -> dict[str, Any]:
        """All settings with secrets and URL passwords hidden, for display."""
        shown: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr) or name in ("operator_token", "secret_key"):
                shown[name] = "********" if value else None
            elif name.endswith("_url"):
                shown[name] = _hide_url_password(str(value))
            elif isinstance(value, Path):
                shown[name] = str(value)
            else:
                shown[name] = value
        shown["effective"] = {
            "database_url": _hide_url_password(self.effective_database_url),
            "blobs_url": _hide_url_password(self.effective_blobs_url),
            "bus_url": _hide_url_password(self.effective_bus_url),
            "backend": self.backend_kind,
        }
        return shown


def _hide_url_password(url: str) -> str:
    parts = urlsplit(url)
    hidden = url
    if parts.password:
        hidden = hidden.replace(f":{parts.password}@", ":********@", 1)
    for secret_key in ("secret_key=", "password="):
        if secret_key in parts.query:
            start = hidden.index(secret_key) + len(secret_key)
            end = hidden.find("&", start)
            hidden = hidden[:start] + "********" + (hidden[end:] if end != -1 else "")
    return hidden


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from env, the TOML file (`ANARQ_CONFIG` or `config_file`) and overrides.

    Raises `SettingsError` with one readable line for any unknown key or bad value.
    """
    file_values: dict[str, Any] = {}
    path = config_file or (
        Path(os.environ["ANARQ_CONFIG"]) if "ANARQ_CONFIG" in os.environ else None
    )
    if path is not None:
        file_values = _read_toml(path)
    unknown_env = sorted(
        key
        for key in os.environ
        if key.upper().startswith(ENV_PREFIX)
        and key.upper() not in _CLI_ONLY_ENV
        and key[len(ENV_PREFIX) :].lower() not in Settings.model_fields
    )
    if unknown_env:
        raise SettingsError(f"unknown setting {unknown_env[0]} (see `anarq config show --help`)")
    values = {**file_values, **overrides}
    try:
        # Environment variables win over the file, init values (overrides) over both.
        env_names = {
            key[len(ENV_PREFIX) :].lower()
            for key in os.environ
            if key.upper().startswith(ENV_PREFIX)
        }
        for name in env_names & set(file_values) - set(overrides):
            values.pop(name)
        return Settings(**values)
    except ValidationError as exc:
        raise SettingsError(_first_error_line(exc)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    section = raw.get("anarq", raw)
    if not isinstance(section, dict):
        raise SettingsError(f"config file {path}: [anarq] must be a table")
    return {str(key).lower(): value for key, value in section.items()}


def _first_error_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"]) or "settings"
    setting = f"{ENV_PREFIX}{location.upper()}"
    if error["type"] == "extra_forbidden":
        return f"unknown setting {location!r} ({setting} is not a setting)"
    message = error["msg"].removeprefix("Value error, ")
    return f"invalid setting {setting}: {message} (got {error.get('input')!r})"
