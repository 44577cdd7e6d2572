"""The collector's configuration, read from the environment once at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from tracking_common.settings import describe_settings_error

__all__ = ["CollectorSettings", "load_settings"]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class CollectorSettings(BaseSettings):
    """``COLLECTOR_HOST``, ``COLLECTOR_PORT``, ``COLLECTOR_MAX_EVENTS``,
    ``COLLECTOR_COUNT_ONLY`` and ``LOG_LEVEL``."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    collector_host: str = Field(default="127.0.0.1", min_length=1)
    collector_port: int = Field(default=9090, ge=0, le=65535)
    collector_max_events: int = Field(
        default=100_000,
        ge=0,
        description="Good events kept in memory; the oldest are dropped, counts keep counting.",
    )
    collector_count_only: bool = Field(
        default=False,
        description="Count only (benchmarks): a body passes a one-pass check (payload_data "
        "envelope, objects with string tv, p, e) or full validation; store nothing.",
    )
    log_level: LogLevel = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def load_settings(environ: Mapping[str, str] | None = None) -> CollectorSettings:
    """Read the settings from ``environ`` (default: the process environment).

    Raises SettingsError naming each bad variable.
    """
    try:
        if environ is None:
            return CollectorSettings()
        return CollectorSettings.model_validate(
            {key.lower(): value for key, value in environ.items() if key.isupper()}
        )
    except ValidationError as exc:
        raise describe_settings_error(exc) from exc
