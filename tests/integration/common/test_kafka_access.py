"""Telling a refusal from an outage against the real SASL_SSL broker, one connection each."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from aiokafka.conn import AIOKafkaConnection
from tracking_common.kafka_security import KafkaSecurityError, KafkaSecuritySettings, check_access

from scripts.kafka.broker import free_port
from scripts.kafka.security import make_ca
from tests.support.kafka import SecureKafka

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


def _settings(env: dict[str, str]) -> KafkaSecuritySettings:
    return KafkaSecuritySettings.model_validate(
        {name.lower(): value for name, value in env.items() if name != "KAFKA_BOOTSTRAP_SERVERS"}
    )


async def _check(env: dict[str, str]) -> str | None:
    settings = _settings(env)
    connection = functools.partial(
        AIOKafkaConnection, request_timeout_ms=10_000, **settings.client_options()
    )
    return await check_access(settings, [env["KAFKA_BOOTSTRAP_SERVERS"]], connection)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
async def test_the_right_credentials_are_accepted_with_every_mechanism(
    secure_kafka: SecureKafka, mechanism: str
) -> None:
    env = secure_kafka.env(KAFKA_SASL_MECHANISM=mechanism)

    assert await _check(env) == secure_kafka.bootstrap


async def test_mutual_tls_with_the_client_certificate_is_accepted(
    secure_kafka: SecureKafka,
) -> None:
    certificates = secure_kafka.security.certificates
    env = secure_kafka.env(
        KAFKA_SSL_CERT_FILE=str(certificates.client_cert_file),
        KAFKA_SSL_KEY_FILE=str(certificates.client_key_file),
    )

    assert await _check(env) == secure_kafka.bootstrap


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
async def test_a_wrong_password_is_a_refusal_naming_the_password(
    secure_kafka: SecureKafka, mechanism: str
) -> None:
    env = secure_kafka.env(KAFKA_SASL_MECHANISM=mechanism, KAFKA_SASL_PASSWORD="wrong-password")  # noqa: S106

    with pytest.raises(KafkaSecurityError) as caught:
        await _check(env)

    assert caught.value.setting == "KAFKA_SASL_PASSWORD"
    assert "rejected user 'tracking'" in str(caught.value)
    assert "wrong-password" not in str(caught.value)


async def test_an_unknown_user_is_a_refusal(secure_kafka: SecureKafka) -> None:
    env = secure_kafka.env(KAFKA_SASL_USERNAME="nobody")

    with pytest.raises(KafkaSecurityError, match=r"KAFKA_SASL_PASSWORD: .* rejected user 'nobody'"):
        await _check(env)


def _refused_env(secure_kafka: SecureKafka, refusal: str, tmp_path: Path) -> dict[str, str]:
    if refusal == "untrusted CA":
        other_ca, _ = make_ca(tmp_path, "other-ca")
        return secure_kafka.env(KAFKA_SSL_CA_FILE=str(other_ca))
    if refusal == "name mismatch":
        # The broker's certificate names "localhost", not the address.
        port = secure_kafka.bootstrap.rpartition(":")[2]
        return secure_kafka.env(KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    return {
        "KAFKA_BOOTSTRAP_SERVERS": secure_kafka.bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
    }


@pytest.mark.parametrize(
    ("refusal", "setting", "reason"),
    [
        (
            "untrusted CA",
            "KAFKA_SSL_CA_FILE",
            "not trusted (self-signed certificate in certificate chain)",
        ),
        ("name mismatch", "KAFKA_BOOTSTRAP_SERVERS", "is not valid for that name"),
        ("plaintext client", "KAFKA_SECURITY_PROTOCOL", "answered with TLS"),
    ],
)
async def test_a_tls_refusal_names_the_setting_to_fix(
    secure_kafka: SecureKafka, tmp_path: Path, refusal: str, setting: str, reason: str
) -> None:
    env = _refused_env(secure_kafka, refusal, tmp_path)

    with pytest.raises(KafkaSecurityError) as caught:
        await _check(env)

    assert caught.value.setting == setting
    assert reason in str(caught.value)


async def test_no_broker_at_all_is_an_outage_not_a_refusal(secure_kafka: SecureKafka) -> None:
    env = secure_kafka.env(KAFKA_BOOTSTRAP_SERVERS=f"localhost:{free_port()}")

    assert await _check(env) is None
