"""A ``SASL_SSL`` listener for the project's throwaway brokers: CA, certificates, SCRAM users.

:func:`make_certificates` writes, with ``openssl`` alone, a throwaway CA, a broker certificate
for the given host names and a client certificate (for mutual TLS), all PEM: the broker reads
them as PEM key and trust stores (``ssl.keystore.type=PEM``), so no ``keytool`` step is needed.
:class:`BrokerSecurity` turns them into the listener's ``server.properties`` entries and the
``kafka-storage format --add-scram`` arguments that create the SCRAM users at format time, and
into the ``KAFKA_*`` variables a client of the project connects with.

The listener is added next to the node's PLAINTEXT one (which stays the inter-broker and
controller side, on loopback: these brokers are for development and tests only), at
``localhost`` (the name in its certificate) on a port of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Final

__all__ = [
    "MECHANISMS",
    "BrokerSecurity",
    "Certificates",
    "client_options_from_env",
    "make_ca",
    "make_certificates",
]

MECHANISMS: Final = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")
ADMIN_USER: Final = "admin"
CLIENT_USER: Final = "tracking"
# The secured listener's host: the only name its certificate carries, so connecting to it as
# 127.0.0.1 is a host-name mismatch (a test relies on it).
SECURE_HOST: Final = "localhost"
# ``make kafka-up`` puts a node's SASL_SSL listener this far above its PLAINTEXT port.
SECURE_PORT_OFFSET: Final = 1000
_DAYS: Final = "7"


class SecurityError(RuntimeError):
    """``openssl`` could not make the throwaway certificates."""


@dataclass(frozen=True)
class Certificates:
    """PEM files: the CA, the broker's key+chain, and a client key and certificate."""

    ca_file: Path
    broker_keystore: Path
    client_cert_file: Path
    client_key_file: Path


def _openssl(*args: str) -> None:
    result = subprocess.run(  # noqa: S603
        ["openssl", *args],  # noqa: S607 - the system's openssl is the point
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SecurityError(f"openssl {args[0]} failed:\n{result.stderr}")


def make_ca(directory: Path, name: str = "ca") -> tuple[Path, Path]:
    """A self-signed CA in ``directory``: (certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", _DAYS,
        "-keyout", str(key), "-out", str(cert),
        "-subj", f"/CN=tracking-pipeline throwaway {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def _sign(directory: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    cert, key, csr = (directory / f"{name}{ext}" for ext in (".pem", ".key", ".csr"))
    ext_file = directory / f"{name}.ext"
    ext_file.write_text(extensions)
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-days", _DAYS, "-out", str(cert), "-extfile", str(ext_file),
    )  # fmt: skip
    csr.unlink()
    ext_file.unlink()
    return cert, key


def _subject_alt_names(hostnames: Sequence[str]) -> str:
    names = []
    for host in hostnames:
        try:
            ip_address(host)
        except ValueError:
            names.append(f"DNS:{host}")
        else:
            names.append(f"IP:{host}")
    return ",".join(names)


def make_certificates(directory: Path, hostnames: Sequence[str]) -> Certificates:
    """A throwaway CA, a broker certificate valid for ``hostnames`` and a client certificate."""
    ca = make_ca(directory)
    usage = "authorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n"
    broker_cert, broker_key = _sign(
        directory,
        "broker",
        ca,
        f"{usage}subjectAltName={_subject_alt_names(hostnames)}\n"
        "extendedKeyUsage=serverAuth,clientAuth\n",
    )
    client_cert, client_key = _sign(
        directory, "client", ca, f"{usage}extendedKeyUsage=clientAuth\n"
    )
    # The broker's PEM key store: its private key (PKCS#8, unencrypted) then its chain.
    keystore = directory / "broker-keystore.pem"
    keystore.write_text(broker_key.read_text() + broker_cert.read_text() + ca[0].read_text())
    for path in (broker_key, client_key, keystore, ca[1]):
        path.chmod(0o600)
    return Certificates(ca[0], keystore, client_cert, client_key)


def client_options_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """aiokafka options from the ``KAFKA_SECURITY_PROTOCOL``/``KAFKA_SASL_*``/``KAFKA_SSL_*``
    variables, validated by the services' own model: for the scripts' and the bench's clients."""
    from tracking_common.kafka_security import KafkaSecuritySettings  # noqa: PLC0415

    environ = os.environ if environ is None else environ
    values = {
        name: environ[name.upper()]
        for name in KafkaSecuritySettings.model_fields
        if name.upper() in environ
    }
    return KafkaSecuritySettings.model_validate(values).client_options()


def _jaas_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class BrokerSecurity:
    """A ``SASL_SSL`` listener with SCRAM (SHA-256 and SHA-512) and PLAIN users.

    ``users`` maps user names to passwords (the broker's own ``admin`` is added);
    ``client_auth`` is ``none``, ``requested`` or ``required`` (mutual TLS).
    """

    certificates: Certificates
    users: Mapping[str, str]
    client_auth: str = "none"
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        hostnames: Sequence[str],
        users: Mapping[str, str],
        client_auth: str = "none",
    ) -> BrokerSecurity:
        """Make the certificates in ``directory`` and describe the listener."""
        return cls(make_certificates(directory, hostnames), dict(users), client_auth)

    @classmethod
    def load_or_create(cls, directory: Path, *, bootstrap: str) -> BrokerSecurity:
        """The listener kept in ``directory`` (``make kafka-up`` after ``kafka-down``), or a
        new one with a ``tracking`` user, whose settings (``bootstrap`` included) go to
        ``client.env``."""
        state = directory / "users.json"
        if state.exists():
            saved = json.loads(state.read_text())
            names = ("ca.pem", "broker-keystore.pem", "client.pem", "client.key")
            certificates = Certificates(*(directory / name for name in names))
            return cls(certificates, saved["users"], admin_password=saved["admin"])
        security = cls.create(
            directory, hostnames=[SECURE_HOST], users={CLIENT_USER: secrets.token_urlsafe(18)}
        )
        state.write_text(json.dumps({"users": security.users, "admin": security.admin_password}))
        variables = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            **security.client_environment(CLIENT_USER),
        }
        lines = [f"{name}={value}" for name, value in variables.items()]
        security.client_env_file.write_text("\n".join(lines) + "\n")
        for path in (state, security.client_env_file):
            path.chmod(0o600)
        return security

    @property
    def client_env_file(self) -> Path:
        """``KEY=value`` lines: the settings the services connect as ``tracking`` with."""
        return self.certificates.ca_file.parent / "client.env"

    def admin_client_options(self) -> dict[str, Any]:
        """aiokafka options for the broker's own admin user, built by the services' model."""
        from tracking_common.kafka_security import KafkaSecuritySettings  # noqa: PLC0415

        variables = self.client_environment(ADMIN_USER)
        settings = KafkaSecuritySettings.model_validate(
            {name.lower(): value for name, value in variables.items()}
        )
        return settings.client_options()

    def _all_users(self) -> dict[str, str]:
        return {**self.users, ADMIN_USER: self.admin_password}

    def listener_properties(self, port: int) -> dict[str, str]:
        """``server.properties`` entries adding a ``SASL_SSL`` listener at ``localhost:port``.

        For :func:`~scripts.kafka.properties.node_properties`'s ``extra``: the listener keys
        are appended to the node's PLAINTEXT listener, which stays the inter-broker one (and
        the one the harness checks readiness on).
        """
        users = self._all_users()
        plain_users = " ".join(
            f'user_{name}="{_jaas_quote(password)}"' for name, password in users.items()
        )
        admin = f'username="{ADMIN_USER}" password="{_jaas_quote(self.admin_password)}"'
        prefix = "listener.name.sasl_ssl"
        return {
            "listeners": f"SASL_SSL://{SECURE_HOST}:{port}",
            "advertised.listeners": f"SASL_SSL://{SECURE_HOST}:{port}",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL",
            "sasl.enabled.mechanisms": ",".join(MECHANISMS),
            f"{prefix}.scram-sha-256.sasl.jaas.config": (
                f"org.apache.kafka.common.security.scram.ScramLoginModule required {admin};"
            ),
            f"{prefix}.scram-sha-512.sasl.jaas.config": (
                f"org.apache.kafka.common.security.scram.ScramLoginModule required {admin};"
            ),
            f"{prefix}.plain.sasl.jaas.config": (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f"{admin} {plain_users};"
            ),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.certificates.broker_keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.certificates.ca_file),
            "ssl.client.auth": self.client_auth,
            "ssl.endpoint.identification.algorithm": "https",
        }

    def format_args(self) -> list[str]:
        """``kafka-storage format`` arguments creating every SCRAM user at format time."""
        args: list[str] = []
        for name, password in self._all_users().items():
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                args += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
        return args

    def client_environment(
        self, user: str, *, mechanism: str = "SCRAM-SHA-512", mutual_tls: bool = False
    ) -> dict[str, str]:
        """The ``KAFKA_*`` variables a service connects as ``user`` with."""
        env = {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": mechanism,
            "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD": self._all_users()[user],
            "KAFKA_SSL_CA_FILE": str(self.certificates.ca_file),
        }
        if mutual_tls:
            env["KAFKA_SSL_CERT_FILE"] = str(self.certificates.client_cert_file)
            env["KAFKA_SSL_KEY_FILE"] = str(self.certificates.client_key_file)
        return env
