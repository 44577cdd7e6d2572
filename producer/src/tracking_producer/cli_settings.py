"""``tracking-produce``'s settings: the API's environment variables for Kafka and Iglu.

A shell that runs the API runs the command line with the same variables
(``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_SECURITY_*``/``KAFKA_SASL_*``/``KAFKA_SSL_*``,
``EVENTS_TOPIC``, ``IGLU_*``, ``API_ALLOW_UNKNOWN_SCHEMAS``, ``API_PRODUCE_TIMEOUT_S``, ...);
flags override the common ones. A bad value stops it with exit code 2, naming the variable.
"""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from tracking_common.settings import IgluSettings, KafkaTopicsSettings, describe_settings_error

from tracking_producer.settings import PublisherSettings

__all__ = ["ProduceSettings", "load_produce_settings"]


class ProduceSettings(BaseSettings, KafkaTopicsSettings, IgluSettings, PublisherSettings):
    """What ``tracking-produce`` reads from its environment (names and defaults the API's)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    api_max_event_bytes: int = Field(
        default=65_536, ge=512, le=130_048, description="Largest single event, as JSON."
    )
    api_max_json_depth: int = Field(
        default=32, ge=4, le=256, description="Deepest JSON nesting accepted."
    )


def load_produce_settings(**overrides: object) -> ProduceSettings:
    """The environment, with ``overrides`` (the flags given) on top; raises SettingsError
    naming every bad variable."""
    try:
        return ProduceSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise describe_settings_error(exc) from exc
