"""The shared TLS/SASL settings: whole combinations, readable PEM files, a secret kept secret."""

from __future__ import annotations

import asyncio
import errno
import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError
from tracking_common.kafka_security import (
    KafkaSecurityError,
    KafkaSecuritySettings,
    check_access,
    classify_connection_error,
)
from tracking_common.settings import KafkaTopicsSettings, describe_settings_error

from scripts.kafka.security import Certificates, client_options_from_env, make_certificates

PASSWORD = "s3cret-Pa55word-never-shown"  # noqa: S105 - a test value


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("pem"), ["localhost"])


def _sasl_ssl(pem: Certificates, **overrides: object) -> dict[str, object]:
    return {
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "tracking",
        "kafka_sasl_password": PASSWORD,
        "kafka_ssl_ca_file": str(pem.ca_file),
        **overrides,
    }


def _message(**values: object) -> str:
    with pytest.raises(ValidationError) as caught:
        KafkaTopicsSettings.model_validate(values)
    return str(describe_settings_error(caught.value))


def test_plaintext_is_the_default_and_adds_no_options() -> None:
    settings = KafkaTopicsSettings()

    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.client_options() == {"security_protocol": "PLAINTEXT"}
    assert settings.describe_security() == "PLAINTEXT"


def test_sasl_ssl_builds_a_verifying_context_and_the_client_options(pem: Certificates) -> None:
    settings = KafkaSecuritySettings.model_validate(_sasl_ssl(pem))

    options = settings.client_options()

    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "tracking",
        "sasl_plain_password": PASSWORD,
    }


def test_mutual_tls_loads_the_client_certificate(pem: Certificates) -> None:
    settings = KafkaSecuritySettings(
        kafka_security_protocol="SSL",
        kafka_ssl_ca_file=pem.ca_file,
        kafka_ssl_cert_file=pem.client_cert_file,
        kafka_ssl_key_file=pem.client_key_file,
    )

    assert "client certificate" in settings.describe_security()
    assert set(settings.client_options()) == {"security_protocol", "ssl_context"}


def test_the_password_never_shows_in_repr_dumps_logs_or_errors(pem: Certificates) -> None:
    settings = KafkaTopicsSettings.model_validate(_sasl_ssl(pem))

    shown = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
        settings.describe_security(),
        _message(**_sasl_ssl(pem, kafka_sasl_mechanism="MD5")),
        _message(**_sasl_ssl(pem, kafka_security_protocol="PLAINTEXT")),
    ]

    assert all(PASSWORD not in text for text in shown)
    assert "'tracking'" in settings.describe_security()


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
@pytest.mark.parametrize(
    "missing", ["kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"]
)
def test_a_sasl_protocol_needs_mechanism_user_and_password(
    pem: Certificates, protocol: str, missing: str
) -> None:
    values = _sasl_ssl(pem, kafka_security_protocol=protocol)
    if protocol == "SASL_PLAINTEXT":
        del values["kafka_ssl_ca_file"]
    values[missing] = ""  # an empty variable counts as unset

    assert f"{missing.upper()}: required when KAFKA_SECURITY_PROTOCOL={protocol}" in _message(
        **values
    )


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
def test_sasl_settings_without_a_sasl_protocol_are_an_error(
    pem: Certificates, protocol: str
) -> None:
    message = _message(**_sasl_ssl(pem, kafka_security_protocol=protocol))

    for name in ("KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"):
        assert f"{name}: set, but KAFKA_SECURITY_PROTOCOL={protocol} uses no SASL" in message


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_tls_files_without_a_tls_protocol_are_an_error(pem: Certificates, protocol: str) -> None:
    values = _sasl_ssl(pem, kafka_security_protocol=protocol)
    if protocol == "PLAINTEXT":
        for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"):
            del values[name]

    assert f"KAFKA_SSL_CA_FILE: set, but KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS" in (
        _message(**values)
    )


def test_unknown_protocol_and_mechanism_name_their_variable(pem: Certificates) -> None:
    assert "KAFKA_SECURITY_PROTOCOL: " in _message(kafka_security_protocol="TLS")
    assert "KAFKA_SASL_MECHANISM: " in _message(**_sasl_ssl(pem, kafka_sasl_mechanism="GSSAPI"))


@pytest.mark.parametrize(
    ("given", "missing"),
    [("cert", "KAFKA_SSL_KEY_FILE"), ("key", "KAFKA_SSL_CERT_FILE")],
)
def test_a_client_certificate_needs_its_key_and_the_key_its_certificate(
    pem: Certificates, given: str, missing: str
) -> None:
    file = pem.client_cert_file if given == "cert" else pem.client_key_file

    message = _message(**_sasl_ssl(pem, **{f"kafka_ssl_{given}_file": str(file)}))

    assert f"{missing}: required with KAFKA_SSL_{given.upper()}_FILE" in message


@pytest.mark.parametrize("variable", ["ca", "cert", "key"])
def test_a_file_that_does_not_exist_is_named(
    pem: Certificates, tmp_path: Path, variable: str
) -> None:
    missing = tmp_path / "nowhere.pem"

    message = _message(**_sasl_ssl(pem, **{f"kafka_ssl_{variable}_file": str(missing)}))

    assert f"KAFKA_SSL_{variable.upper()}_FILE: " in message
    assert f"{missing} does not exist" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_named(pem: Certificates, tmp_path: Path) -> None:
    locked = tmp_path / "ca.pem"
    locked.write_bytes(pem.ca_file.read_bytes())
    locked.chmod(0)

    message = _message(**_sasl_ssl(pem, kafka_ssl_ca_file=str(locked)))

    assert "KAFKA_SSL_CA_FILE: " in message
    assert "cannot be read" in message


def test_a_directory_is_not_a_file(pem: Certificates, tmp_path: Path) -> None:
    assert f"{tmp_path} is not a file" in _message(**_sasl_ssl(pem, kafka_ssl_ca_file=tmp_path))


def test_a_ca_file_that_is_not_pem_is_named(pem: Certificates, tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")

    assert "KAFKA_SSL_CA_FILE: not a PEM CA bundle" in _message(
        **_sasl_ssl(pem, kafka_ssl_ca_file=str(garbage))
    )


def test_a_key_that_is_not_the_certificates_is_named(pem: Certificates, tmp_path: Path) -> None:
    other = make_certificates(tmp_path, ["localhost"])

    message = _message(
        **_sasl_ssl(
            pem,
            kafka_ssl_cert_file=str(pem.client_cert_file),
            kafka_ssl_key_file=str(other.client_key_file),
        )
    )

    assert "KAFKA_SSL_CERT_FILE/KAFKA_SSL_KEY_FILE: not a PEM certificate" in message


# -- telling a refusal from an outage ---------------------------------------------------------


class _KafkaError(Exception):
    """Shaped like a Kafka client's protocol error: the code is on ``errno``."""

    def __init__(self, code: int) -> None:
        super().__init__(f"kafka error {code}")
        self.errno = code


def _verification(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    error.verify_code, error.verify_message = code, message
    return error


def _ssl_error(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    error.reason = reason
    return error


def _wrapped(cause: BaseException) -> Exception:
    outer = ConnectionError("Connection at kafka:9093 closed")
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("error", "setting"),
    [
        (_KafkaError(58), "KAFKA_SASL_PASSWORD"),
        (_KafkaError(33), "KAFKA_SASL_MECHANISM"),
        (_verification(19, "self-signed certificate in certificate chain"), "KAFKA_SSL_CA_FILE"),
        (_verification(62, "Hostname mismatch"), "KAFKA_BOOTSTRAP_SERVERS"),
        (_wrapped(_ssl_error("TLSV13_ALERT_CERTIFICATE_REQUIRED")), "KAFKA_SSL_CERT_FILE"),
        (_ssl_error("WRONG_VERSION_NUMBER"), "KAFKA_SECURITY_PROTOCOL"),
        # a plaintext client reading a TLS alert record as the length of a Kafka frame
        (
            _wrapped(asyncio.IncompleteReadError(b"\x15\x03\x03", 0x15030300)),
            "KAFKA_SECURITY_PROTOCOL",
        ),
    ],
)
def test_refusals_are_permanent_and_name_the_setting(
    pem: Certificates, error: Exception, setting: str
) -> None:
    settings = KafkaSecuritySettings.model_validate(_sasl_ssl(pem))

    refusal = classify_connection_error(error, address="kafka:9093", settings=settings)

    assert refusal is not None
    assert refusal.setting == setting
    assert str(refusal).startswith(f"{setting}: ")
    assert PASSWORD not in str(refusal)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        TimeoutError(),
        _KafkaError(7),  # a request timed out
        ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
        _wrapped(ConnectionResetError()),
        _wrapped(asyncio.IncompleteReadError(b"\x00", 4)),
    ],
)
def test_outages_are_transient(pem: Certificates, error: Exception) -> None:
    settings = KafkaSecuritySettings.model_validate(_sasl_ssl(pem))

    assert classify_connection_error(error, address="kafka:9093", settings=settings) is None


class _FakeConnection:
    """A ProbeConnection whose ``connect`` fails as scripted per port; records what happened."""

    log: ClassVar[list[str]] = []
    failures: ClassVar[dict[int, BaseException]] = {}

    def __init__(self, host: str, port: int, *, on_close: Callable[..., None]) -> None:
        self.address, self.port, self._on_close = f"{host}:{port}", port, on_close
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def connect(self) -> None:
        self.log.append(f"connect {self.address}")
        failure = self.failures.get(self.port)
        if isinstance(failure, TimeoutError):
            await asyncio.sleep(10)  # never answers: the check's deadline ends it
        if failure is not None and not isinstance(failure, OSError):
            self._transport_closes()  # opened, then refused (as a SASL failure is)
        if failure is not None:
            raise failure

    def _transport_closes(self) -> None:
        if not self._closed.done():
            self._on_close(self, "closing")
            asyncio.get_running_loop().call_soon(self._closed.set_result, None)

    def close(self) -> asyncio.Future[None]:
        self._transport_closes()
        return self._closed


@pytest.fixture
def fake() -> type[_FakeConnection]:
    _FakeConnection.log, _FakeConnection.failures = [], {}
    return _FakeConnection


async def test_check_access_returns_the_first_broker_that_accepts(
    fake: type[_FakeConnection],
) -> None:
    fake.failures = {1: ConnectionRefusedError(errno.ECONNREFUSED, "refused")}

    found = await check_access(KafkaSecuritySettings(), ["a:1", "[::1]:2", "c:3"], fake)

    assert found == "[::1]:2"
    assert fake.log == ["connect a:1", "connect ::1:2"]


async def test_check_access_reports_none_when_no_broker_answers(
    fake: type[_FakeConnection],
) -> None:
    fake.failures = {1: TimeoutError(), 2: ConnectionRefusedError(errno.ECONNREFUSED, "x")}

    found = await check_access(KafkaSecuritySettings(), ["a:1", "b:2"], fake, timeout_s=0.01)

    assert found is None


async def test_check_access_raises_at_the_first_refusal_once_the_transport_closed(
    pem: Certificates, fake: type[_FakeConnection]
) -> None:
    settings = KafkaSecuritySettings.model_validate(_sasl_ssl(pem))
    fake.failures = {9093: _KafkaError(58)}

    with pytest.raises(KafkaSecurityError, match="KAFKA_SASL_PASSWORD: kafka:9093 rejected"):
        await check_access(settings, ["kafka:9093", "other:9093"], fake)

    assert fake.log == ["connect kafka:9093"]


def test_scripts_and_the_bench_read_the_same_variables(pem: Certificates) -> None:
    environ = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "KAFKA_SASL_USERNAME": "tracking",
        "KAFKA_SASL_PASSWORD": PASSWORD,
        "KAFKA_SSL_CA_FILE": str(pem.ca_file),
        "UNRELATED": "x",
    }

    options = client_options_from_env(environ)

    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert client_options_from_env({}) == {"security_protocol": "PLAINTEXT"}


async def test_check_access_records_one_span_with_the_outcome(
    pem: Certificates, fake: type[_FakeConnection]
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    settings = KafkaSecuritySettings.model_validate(_sasl_ssl(pem))
    fake.failures = {9093: _KafkaError(58)}

    assert await check_access(settings, ["a:9092"], fake, tracer=tracer) == "a:9092"
    with pytest.raises(KafkaSecurityError):
        await check_access(settings, ["kafka:9093"], fake, tracer=tracer)

    accepted, refused = exporter.get_finished_spans()
    assert accepted.name == refused.name == "kafka.check_access"
    assert accepted.attributes is not None
    assert refused.attributes is not None
    assert accepted.attributes["kafka.access"] == "accepted"
    assert accepted.attributes["kafka.security_protocol"] == "SASL_SSL"
    assert refused.attributes["kafka.access"] == "refused"
    assert refused.attributes["kafka.access.setting"] == "KAFKA_SASL_PASSWORD"
    assert PASSWORD not in str(refused.status.description)


def test_protocol_and_mechanism_are_case_insensitive(pem: Certificates) -> None:
    settings = KafkaSecuritySettings.model_validate(
        _sasl_ssl(pem, kafka_security_protocol=" sasl_ssl", kafka_sasl_mechanism="scram-sha-256")
    )

    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-256"
