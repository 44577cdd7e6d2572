"""Configuration parts shared by both services, validated the same way in each.

Each service owns one pydantic-settings class that reads the environment; it inherits
:class:`KafkaTopicsSettings` so ``KAFKA_BOOTSTRAP_SERVERS``, ``EVENTS_TOPIC``,
``BAD_EVENTS_TOPIC``, ``DLQ_TOPIC`` and the ``KAFKA_SECURITY_PROTOCOL``/``KAFKA_SASL_*``/
``KAFKA_SSL_*`` settings (:mod:`tracking_common.kafka_security`) mean and validate the same
everywhere. This module
itself reads no environment variable.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator, Field, ValidationError

from tracking_common.kafka_security import KafkaSecuritySettings

__all__ = [
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


def describe_settings_error(exc: ValidationError) -> SettingsError:
    """A SettingsError whose message names each bad environment variable and why."""
    lines = []
    for error in exc.errors(include_url=False):
        variable = "_".join(str(part) for part in error["loc"]).upper() or "<settings>"
        lines.append(f"{variable}: {error['msg']}")
    return SettingsError("invalid configuration: " + "; ".join(lines))
