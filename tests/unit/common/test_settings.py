"""Shared Kafka settings and the start-up error message that names the bad variable."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError
from tracking_common.settings import (
    KafkaTopicsSettings,
    SettingsError,
    describe_settings_error,
    parse_bootstrap_servers,
)


def test_defaults_match_the_documented_interface() -> None:
    settings = KafkaTopicsSettings()

    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert (settings.events_topic, settings.bad_events_topic, settings.dlq_topic) == (
        "events",
        "events_bad",
        "events_dlq",
    )


def test_bootstrap_servers_are_split_trimmed_and_normalised() -> None:
    settings = KafkaTopicsSettings(kafka_bootstrap_servers=" kafka-1:9092, [::1]:19092 ,")

    assert settings.kafka_bootstrap_servers == "kafka-1:9092,[::1]:19092"
    assert parse_bootstrap_servers("a.example:1,b:65535") == ("a.example:1", "b:65535")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "at least one"),
        (" , ", "at least one"),
        ("kafka", "'kafka' is not host:port"),
        ("kafka:0", "'kafka:0' is not host:port"),
        ("kafka:65536", "'kafka:65536' is not host:port"),
        ("ok:9092,bad host:9092", "'bad host:9092' is not host:port"),
        ("http://kafka:9092", "is not host:port"),
    ],
)
def test_bad_bootstrap_servers_name_the_bad_entry(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_bootstrap_servers(value)


@pytest.mark.parametrize("name", ["events.v1", "a", "A_b-c.9", "x" * 249])
def test_valid_topic_names_are_accepted(name: str) -> None:
    assert KafkaTopicsSettings(events_topic=name).events_topic == name


@pytest.mark.parametrize("name", ["", ".", "..", "has space", "slash/topic", "x" * 250, "ü"])
def test_invalid_topic_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        KafkaTopicsSettings(dlq_topic=name)


def test_describe_settings_error_names_every_bad_variable() -> None:
    with pytest.raises(ValidationError) as caught:
        KafkaTopicsSettings(kafka_bootstrap_servers="nope", bad_events_topic="bad topic")

    error = describe_settings_error(caught.value)

    assert isinstance(error, SettingsError)
    assert isinstance(error, ValueError)
    text = str(error)
    assert text.startswith("invalid configuration: ")
    assert "KAFKA_BOOTSTRAP_SERVERS: " in text
    assert "'nope' is not host:port" in text
    assert "BAD_EVENTS_TOPIC: " in text
    assert "EVENTS_TOPIC: " not in text.replace("BAD_EVENTS_TOPIC", "")


def test_nested_settings_join_their_path_into_the_variable_name() -> None:
    class Retry(BaseModel):
        max_attempts: int

    class ServiceSettings(KafkaTopicsSettings):
        retry: Retry

    with pytest.raises(ValidationError) as caught:
        ServiceSettings.model_validate({"retry": {"max_attempts": "many"}})

    assert "RETRY_MAX_ATTEMPTS: " in str(describe_settings_error(caught.value))
