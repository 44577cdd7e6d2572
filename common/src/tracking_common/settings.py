"""Configuration parts shared by both services, validated the same way in each.

Each service owns one pydantic-settings class that reads the environment; it inherits
:class:`KafkaTopicsSettings` so ``KAFKA_BOOTSTRAP_SERVERS``, ``EVENTS_TOPIC``,
``BAD_EVENTS_TOPIC``, ``DLQ_TOPIC`` and the ``KAFKA_SECURITY_PROTOCOL``/``KAFKA_SASL_*``/
``KAFKA_SSL_*`` settings (:mod:`tracking_common.kafka_security`) mean and validate the same
everywhere; a service that checks events inherits :class:`IgluSettings` too, so
``IGLU_SCHEMA_DIR``, ``IGLU_RESOLVER_CONFIG``, ``IGLU_RESOLVE_TIMEOUT_S`` and
``API_ALLOW_UNKNOWN_SCHEMAS`` do. This module itself reads no environment variable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, Field, ValidationError, field_validator

from tracking_common.iglu.resolver import IgluResolver
from tracking_common.iglu.resolver_config import build_resolver, load_resolver_config
from tracking_common.kafka_security import KafkaSecuritySettings

__all__ = [
    "IgluSettings",
    "KafkaTopicsSettings",
    "SettingsError",
    "TopicName",
    "describe_settings_error",
    "parse_bootstrap_servers",
]

_TOPIC_PATTERN: Final = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_HOST_PORT: Final = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})$")


class SettingsError(ValueError):
    """Start-up configuration is invalid; the message names every bad variable."""


def _check_topic(name: str) -> str:
    if not _TOPIC_PATTERN.match(name) or name in {".", ".."}:
        raise ValueError("must be 1-249 characters of letters, digits, '.', '_' or '-'")
    return name


TopicName = Annotated[str, AfterValidator(_check_topic)]


def parse_bootstrap_servers(value: str) -> tuple[str, ...]:
    """Split ``host:port[,host:port...]``; raise ValueError naming the bad entry."""
    servers = tuple(part.strip() for part in value.split(",") if part.strip())
    if not servers:
        raise ValueError("needs at least one host:port")
    for server in servers:
        match = _HOST_PORT.match(server)
        if match is None or not 0 < int(match.group(2)) < 65536:
            raise ValueError(f"{server!r} is not host:port")
    return servers


def _check_servers(value: str) -> str:
    return ",".join(parse_bootstrap_servers(value))


class KafkaTopicsSettings(KafkaSecuritySettings):
    """The Kafka connection (with its TLS and SASL settings) and the pipeline's three topics."""

    kafka_bootstrap_servers: Annotated[str, AfterValidator(_check_servers)] = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list."
    )
    events_topic: TopicName = Field(default="events", description="Accepted events.")
    bad_events_topic: TopicName = Field(
        default="events_bad", description="Rejected inputs, with the reasons."
    )
    dlq_topic: TopicName = Field(
        default="events_dlq", description="Records the forwarder could not deliver."
    )


class IgluSettings(BaseModel):
    """Where the schemas of self-describing data come from, and whether unknown ones pass."""

    iglu_schema_dir: Path | None = Field(
        default=None,
        description="Iglu directory (vendor/name/jsonschema/version) of your own schemas, asked "
        "before the bundled Iglu Central; the simple case of IGLU_RESOLVER_CONFIG.",
    )
    iglu_resolver_config: Path | None = Field(
        default=None,
        description="File of a Snowplow resolver configuration (resolver-config 1-0-0 to "
        "1-0-3): Iglu registries (static, Iglu Server, embedded) to resolve schemas from; "
        "Iglu Central's schemas are bundled and always asked too.",
    )
    iglu_resolve_timeout_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Deadline for resolving one request's schemas from the registries (503 "
        "with Retry-After beyond); also each registry request's timeout.",
    )
    api_allow_unknown_schemas: bool = Field(
        default=False,
        description="Accept self-describing data whose schema no Iglu repository has.",
    )

    @field_validator("iglu_schema_dir")
    @classmethod
    def _directory_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{value} is not a directory")
        return value

    @field_validator("iglu_resolver_config")
    @classmethod
    def _resolver_config_loads(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_resolver_config(value)  # its ResolverConfigError is a ValueError: names the field
        return value

    def resolver(self, *, failure_ttl_s: float = 5.0) -> IgluResolver:
        """The resolver these settings describe; a registry outage is remembered for
        ``failure_ttl_s``."""
        config = self.iglu_resolver_config
        return build_resolver(
            None if config is None else load_resolver_config(config),
            schema_dir=self.iglu_schema_dir,
            timeout_s=self.iglu_resolve_timeout_s,
            failure_ttl_s=failure_ttl_s,
        )


def describe_settings_error(exc: ValidationError) -> SettingsError:
    """A SettingsError whose message names each bad environment variable and why."""
    lines = []
    for error in exc.errors(include_url=False):
        variable = "_".join(str(part) for part in error["loc"]).upper() or "<settings>"
        lines.append(f"{variable}: {error['msg']}")
    return SettingsError("invalid configuration: " + "; ".join(lines))
