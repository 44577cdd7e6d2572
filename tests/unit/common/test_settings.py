"""Shared Kafka settings: parsing and error messages that name the variable."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tracking_common.settings import (
    KafkaTopicsSettings,
    SettingsError,
    describe_settings_error,
    parse_bootstrap_servers,
)


def settings_error(**values: Any) -> SettingsError:
    with pytest.raises(ValidationError) as caught:
        KafkaTopicsSettings(**values)
    return describe_settings_error(caught.value)


def test_defaults_match_the_documented_environment() -> None:
    settings = KafkaTopicsSettings()

    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert (settings.events_topic, settings.bad_events_topic, settings.dlq_topic) == (
        "events",
        "events_bad",
        "events_dlq",
    )


def test_bootstrap_servers_are_normalised() -> None:
    settings = KafkaTopicsSettings(kafka_bootstrap_servers=" a:9092 , b.example:19092,,[::1]:1 ")

    assert settings.kafka_bootstrap_servers == "a:9092,b.example:19092,[::1]:1"


@pytest.mark.parametrize(
    ("text", "servers"),
    [
        ("localhost:9092", ("localhost:9092",)),
        ("kafka-0.kafka:9092,kafka-1.kafka:9093", ("kafka-0.kafka:9092", "kafka-1.kafka:9093")),
        ("[2001:db8::1]:9092", ("[2001:db8::1]:9092",)),
        ("10.0.0.1:65535", ("10.0.0.1:65535",)),
    ],
)
def test_parse_bootstrap_servers_accepts_host_port_lists(
    text: str, servers: tuple[str, ...]
) -> None:
    assert parse_bootstrap_servers(text) == servers


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("", "at least one"),
        (" , ", "at least one"),
        ("localhost", "'localhost'"),
        ("localhost:0", "'localhost:0'"),
        ("a:9092,b:65536", "'b:65536'"),
        ("http://a:9092", "'http://a:9092'"),
        ("a:port", "'a:port'"),
    ],
)
def test_parse_bootstrap_servers_names_the_bad_entry(text: str, bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        parse_bootstrap_servers(text)


@pytest.mark.parametrize("name", ["events.v2", "team_a-events", "a" * 249, "A.b_C-1"])
def test_valid_topic_names(name: str) -> None:
    assert KafkaTopicsSettings(events_topic=name).events_topic == name


@pytest.mark.parametrize("name", ["", ".", "..", "a" * 250, "has space", "slash/topic", "ü"])
def test_invalid_topic_names_are_rejected(name: str) -> None:
    error = settings_error(dlq_topic=name)

    assert "DLQ_TOPIC" in str(error)


def test_the_message_names_every_bad_variable() -> None:
    error = settings_error(kafka_bootstrap_servers="nohost", events_topic="a b")

    message = str(error)
    assert isinstance(error, ValueError)
    assert message.startswith("invalid configuration: ")
    assert "KAFKA_BOOTSTRAP_SERVERS: " in message
    assert "'nohost' is not host:port" in message
    assert "EVENTS_TOPIC: " in message
    assert "BAD_EVENTS_TOPIC" not in message


def test_a_service_settings_class_gets_its_own_names() -> None:
    class ServiceSettings(KafkaTopicsSettings):
        api_port: int = 8080

    with pytest.raises(ValidationError) as caught:
        ServiceSettings(api_port="eighty", bad_events_topic="")  # type: ignore[arg-type]

    message = str(describe_settings_error(caught.value))
    assert "API_PORT: " in message
    assert "BAD_EVENTS_TOPIC: " in message
