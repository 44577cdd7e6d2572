"""How every Kafka client of the project authenticates: TLS and SASL, validated alike everywhere.

:class:`KafkaSecuritySettings` holds ``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_*`` and
``KAFKA_SSL_*``; both services inherit it (through
:class:`~tracking_common.settings.KafkaTopicsSettings`). It checks, at start-up, that the
combination is whole and the files are readable PEM, builds the stdlib ``ssl.SSLContext`` and
returns the client keyword options (:meth:`KafkaSecuritySettings.client_options`) each service
passes to its aiokafka clients; this module imports no Kafka client.

Decision: SASL or TLS settings given while the protocol does not use them are an error, not a
warning: a password next to ``PLAINTEXT`` means a forgotten protocol, and connecting anyway
would either fail obscurely or reach a listener the operator meant to avoid.

:func:`check_access` tells a broker that refuses *us* (wrong password, untrusted or mismatched
certificate, wrong protocol: permanent, :class:`KafkaSecurityError` naming the setting) from a
broker that is not there (retried as before). aiokafka's clients log and swallow the reason a
bootstrap connection failed, so the check opens one connection of its own per address, with a
connection class the service passes in (its Kafka client's; see :class:`ProbeConnection`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Protocol

from opentelemetry import trace
from opentelemetry.trace import StatusCode
from pydantic import BaseModel, BeforeValidator, Field, SecretStr, field_validator, model_validator

__all__ = [
    "KafkaSecurityError",
    "KafkaSecuritySettings",
    "ProbeConnection",
    "SaslMechanism",
    "SecurityProtocol",
    "check_access",
    "classify_connection_error",
]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

_tracer = trace.get_tracer(__name__)
_SASL: Final = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
_TLS: Final = frozenset({"SSL", "SASL_SSL"})
# Kafka protocol error codes (stable across clients): the broker refused the SASL exchange.
_SASL_FAILED: Final = 58
_SASL_MECHANISM_UNSUPPORTED: Final = 33
_SASL_ILLEGAL_STATE: Final = 34
# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH: Final = frozenset({62, 64})


def _blank_is_unset(value: object) -> object:
    # Deployment templates often pass every variable, empty when unused.
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _readable_file(path: Path | None) -> Path | None:
    if path is None:
        return None
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{path} cannot be read (permission denied)")
    return path


def _upper(value: object) -> object:
    # `sasl_ssl` and `scram-sha-512` are what people type; the names are case-insensitive.
    return value.strip().upper() if isinstance(value, str) else value


_Unset = BeforeValidator(_blank_is_unset)
_Upper = BeforeValidator(_upper)
PemFile = Annotated[Path | None, _Unset]


class KafkaSecurityError(ValueError):
    """The broker refuses this client: permanent until ``setting`` is fixed (exit code 2)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class KafkaSecuritySettings(BaseModel):
    """TLS and SASL for every Kafka client; the password is never shown."""

    kafka_security_protocol: Annotated[SecurityProtocol, _Upper] = Field(
        default="PLAINTEXT",
        description="`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL` (TLS and SASL).",
    )
    kafka_sasl_mechanism: Annotated[SaslMechanism | None, _Upper, _Unset] = Field(
        default=None,
        description="`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; required with a SASL protocol.",
    )
    kafka_sasl_username: Annotated[str | None, _Unset] = Field(
        default=None, description="SASL user; required with a SASL protocol."
    )
    kafka_sasl_password: Annotated[SecretStr | None, _Unset] = Field(
        default=None,
        repr=False,
        description="SASL password (a secret: never logged); required with a SASL protocol.",
    )
    kafka_ssl_ca_file: PemFile = Field(
        default=None,
        description="PEM CA bundle the broker certificates are checked against; unset = the "
        "system's trusted CAs.",
    )
    kafka_ssl_cert_file: PemFile = Field(
        default=None, description="PEM client certificate for mutual TLS (with the key)."
    )
    kafka_ssl_key_file: PemFile = Field(
        default=None,
        description="PEM private key (unencrypted) of the client certificate, for mutual TLS.",
    )

    @field_validator("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file")
    @classmethod
    def _file_is_readable(cls, value: Path | None) -> Path | None:
        return _readable_file(value)

    @model_validator(mode="after")
    def _combination_is_whole(self) -> KafkaSecuritySettings:
        problems = self._problems()
        if problems:
            raise ValueError("; ".join(problems))
        if self.kafka_security_protocol in _TLS:
            self.ssl_context()  # a file that is not PEM, or a key that is not the cert's
        return self

    def _problems(self) -> list[str]:
        protocol = self.kafka_security_protocol
        sasl = {
            "KAFKA_SASL_MECHANISM": self.kafka_sasl_mechanism,
            "KAFKA_SASL_USERNAME": self.kafka_sasl_username,
            "KAFKA_SASL_PASSWORD": self.kafka_sasl_password,
        }
        tls = {
            "KAFKA_SSL_CA_FILE": self.kafka_ssl_ca_file,
            "KAFKA_SSL_CERT_FILE": self.kafka_ssl_cert_file,
            "KAFKA_SSL_KEY_FILE": self.kafka_ssl_key_file,
        }
        problems = []
        if protocol in _SASL:
            problems += [f"{name}: required when KAFKA_SECURITY_PROTOCOL={protocol}"
                         for name, value in sasl.items() if value is None]  # fmt: skip
        else:
            problems += [f"{name}: set, but KAFKA_SECURITY_PROTOCOL={protocol} uses no SASL "
                         "(use SASL_SSL or SASL_PLAINTEXT, or unset it)"
                         for name, value in sasl.items() if value is not None]  # fmt: skip
        if protocol not in _TLS:
            problems += [f"{name}: set, but KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS "
                         "(use SSL or SASL_SSL, or unset it)"
                         for name, value in tls.items() if value is not None]  # fmt: skip
        elif (self.kafka_ssl_cert_file is None) != (self.kafka_ssl_key_file is None):
            given, missing = (
                ("KAFKA_SSL_CERT_FILE", "KAFKA_SSL_KEY_FILE")
                if self.kafka_ssl_key_file is None
                else ("KAFKA_SSL_KEY_FILE", "KAFKA_SSL_CERT_FILE")
            )
            problems.append(f"{missing}: required with {given} (mutual TLS needs both)")
        return problems

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context: verifies the broker's chain and host name.

        Raises ValueError naming the variable whose file is not usable.
        """
        try:
            context = ssl.create_default_context(
                cafile=str(self.kafka_ssl_ca_file) if self.kafka_ssl_ca_file else None
            )
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"KAFKA_SSL_CA_FILE: not a PEM CA bundle ({exc})") from exc
        if self.kafka_ssl_cert_file is not None and self.kafka_ssl_key_file is not None:
            try:
                context.load_cert_chain(self.kafka_ssl_cert_file, self.kafka_ssl_key_file)
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(
                    "KAFKA_SSL_CERT_FILE/KAFKA_SSL_KEY_FILE: not a PEM certificate and its "
                    f"unencrypted private key ({exc})"
                ) from exc
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword options for aiokafka's clients (producer, consumer, admin, connection)."""
        protocol = self.kafka_security_protocol
        options: dict[str, Any] = {"security_protocol": protocol}
        if protocol in _TLS:
            options["ssl_context"] = self.ssl_context()
        if protocol in _SASL and self.kafka_sasl_password is not None:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return options

    def describe_security(self) -> str:
        """One line for logs: protocol, mechanism, user, CA (never the password)."""
        parts: list[str] = [self.kafka_security_protocol]
        if self.kafka_security_protocol in _SASL:
            parts.append(f"{self.kafka_sasl_mechanism} as {self.kafka_sasl_username!r}")
        if self.kafka_security_protocol in _TLS:
            parts.append(f"CA {self.kafka_ssl_ca_file or 'system'}")
            if self.kafka_ssl_cert_file is not None:
                parts.append(f"client certificate {self.kafka_ssl_cert_file}")
        return ", ".join(parts)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def classify_connection_error(
    exc: BaseException, *, address: str, settings: KafkaSecuritySettings
) -> KafkaSecurityError | None:
    """The permanent refusal behind ``exc`` (naming the setting to fix), or None if transient.

    Looks through the exception's causes for a TLS verification failure, a TLS alert or
    protocol mismatch, or a Kafka SASL error code.
    """
    for cause in _causes(exc):
        if _answered_in_tls(cause):
            return KafkaSecurityError(
                "KAFKA_SECURITY_PROTOCOL",
                f"{address} answered with TLS; KAFKA_SECURITY_PROTOCOL="
                f"{settings.kafka_security_protocol} does not use it (SSL or SASL_SSL)",
            )
        if isinstance(cause, ssl.SSLError):
            refusal = _tls_refusal(cause, address, settings)
        else:
            refusal = _sasl_refusal(cause, address, settings)
        if refusal is not None:
            return refusal
    return None


def _answered_in_tls(error: BaseException) -> bool:
    # A plaintext client reads the TLS record header (0x15 or 0x16, then 0x03 for the version)
    # of the listener's answer as a Kafka frame length, and the connection ends short of it.
    if not isinstance(error, asyncio.IncompleteReadError) or error.expected is None:
        return False
    return error.expected >> 24 in {0x15, 0x16} and (error.expected >> 16) & 0xFF == 0x03


def _tls_refusal(
    error: ssl.SSLError, address: str, settings: KafkaSecuritySettings
) -> KafkaSecurityError | None:
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = error.verify_message or str(error)
        if error.verify_code in _NAME_MISMATCH:
            return KafkaSecurityError(
                "KAFKA_BOOTSTRAP_SERVERS",
                f"the certificate of {address} is not valid for that name ({reason}); "
                "name the brokers as their certificates do",
            )
        return KafkaSecurityError(
            "KAFKA_SSL_CA_FILE",
            f"the certificate of {address} is not trusted ({reason}); "
            f"KAFKA_SSL_CA_FILE={settings.kafka_ssl_ca_file or '(system CAs)'}",
        )
    # A connection cut mid-handshake is an outage, not a refusal.
    if isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return None
    reason = str(error.reason or error)
    if "CERTIFICATE" in reason or "UNKNOWN_CA" in reason:
        return KafkaSecurityError(
            "KAFKA_SSL_CERT_FILE", f"{address} refused the client certificate ({reason})"
        )
    if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason:
        return KafkaSecurityError(
            "KAFKA_SECURITY_PROTOCOL",
            f"{address} does not speak TLS ({reason}); "
            f"KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}",
        )
    return None


def _sasl_refusal(
    error: BaseException, address: str, settings: KafkaSecuritySettings
) -> KafkaSecurityError | None:
    # An OSError's errno is the OS's, not Kafka's.
    code = None if isinstance(error, OSError) else getattr(error, "errno", None)
    if code == _SASL_FAILED:
        return KafkaSecurityError(
            "KAFKA_SASL_PASSWORD",
            f"{address} rejected user {settings.kafka_sasl_username!r} with "
            f"{settings.kafka_sasl_mechanism} (wrong KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD)",
        )
    if code in {_SASL_MECHANISM_UNSUPPORTED, _SASL_ILLEGAL_STATE}:
        return KafkaSecurityError(
            "KAFKA_SASL_MECHANISM",
            f"{address} does not accept {settings.kafka_sasl_mechanism} ({error})",
        )
    return None


class ProbeConnection(Protocol):
    """One Kafka connection (aiokafka's ``AIOKafkaConnection`` is one)."""

    async def connect(self) -> object:
        """Open it: TCP, TLS handshake, version lookup, SASL exchange; raise on failure."""
        ...

    def close(self) -> Awaitable[object]:
        """Start closing; the awaitable resolves once the transport is gone."""
        ...


ConnectionFactory = Callable[..., ProbeConnection]
"""Called as ``factory(host, port, on_close=callback)``; ``callback`` runs when an opened
transport starts closing."""


async def _open_once(factory: ConnectionFactory, host: str, port: int, timeout_s: float) -> None:
    opened: list[object] = []
    connection = factory(host, port, on_close=lambda *_: opened.append(True))
    try:
        async with asyncio.timeout(timeout_s):
            await connection.connect()
    finally:
        closed = connection.close()
        # A transport that was opened (even one refused mid-handshake) is waited for, so no
        # TLS transport is left closing behind the check.
        if opened:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await closed


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


async def check_access(
    settings: KafkaSecuritySettings,
    servers: Sequence[str],
    factory: ConnectionFactory,
    *,
    timeout_s: float = 10.0,
    tracer: trace.Tracer | None = None,
) -> str | None:
    """The first of ``servers`` that accepts one connection from ``factory``, or None if none
    answered (transient).

    Raises KafkaSecurityError as soon as a broker refuses the credentials or the TLS setup:
    every broker of a cluster would, so retrying cannot help. One span, ``kafka.check_access``,
    carries the outcome (``accepted``, ``refused`` with the setting, ``unreachable``).
    """
    attributes = {
        "messaging.system": "kafka",
        "kafka.security_protocol": settings.kafka_security_protocol,
    }
    with (tracer or _tracer).start_as_current_span(
        "kafka.check_access", attributes=attributes
    ) as span:
        for address in servers:
            host, port = _host_port(address)
            try:
                await _open_once(factory, host, port, timeout_s)
            except Exception as exc:  # classified below: anything but a refusal is an outage
                refusal = classify_connection_error(exc, address=address, settings=settings)
                if refusal is not None:
                    span.set_attributes(
                        {"kafka.access": "refused", "kafka.access.setting": refusal.setting}
                    )
                    span.set_status(StatusCode.ERROR, str(refusal))
                    raise refusal from exc
                continue
            span.set_attributes({"kafka.access": "accepted", "server.address": address})
            return address
        span.set_attribute("kafka.access", "unreachable")
        return None
