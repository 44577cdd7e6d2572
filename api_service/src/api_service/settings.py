"""The API's configuration, read once from the environment at start-up.

Shared names (``KAFKA_BOOTSTRAP_SERVERS``, the topics) come from
:class:`~tracking_common.settings.KafkaTopicsSettings`; the API's own are ``API_*`` plus
``IGLU_*`` and ``LOG_LEVEL``. A bad value fails start-up naming the variable.
"""

from __future__ import annotations

import re

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from tracking_common.record import MAX_PAYLOAD_VALUE_CHARS
from tracking_common.settings import IgluSettings, KafkaTopicsSettings, describe_settings_error
from tracking_producer.settings import PublisherSettings

from api_service.client_address import Network, parse_networks

__all__ = ["MAX_EVENT_BYTES_CEILING", "ApiSettings", "load_settings"]


# One field of a record's payload holds at most MAX_PAYLOAD_VALUE_CHARS; an event's data becomes
# one field (``ue_pr``, ``co``) inside an envelope of under 200 characters, so events up to this
# size always make a record the forwarder accepts.
MAX_EVENT_BYTES_CEILING = MAX_PAYLOAD_VALUE_CHARS - 1024


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"\.?{_LABEL}(?:\.{_LABEL})*")


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


class ApiSettings(BaseSettings, KafkaTopicsSettings, IgluSettings, PublisherSettings):
    """Everything the API reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    log_level: str = Field(
        default="INFO",
        pattern=r"(?i)^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$",
        description="Log level of the JSON log lines on stderr.",
    )
    api_host: str = Field(default="0.0.0.0", description="Address the public server binds.")  # noqa: S104
    api_port: int = Field(default=8080, ge=0, le=65535, description="Public port.")
    api_admin_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - scraped and probed from outside the pod
        description="Address of the admin server (`/metrics`, `/healthz`, `/readyz`).",
    )
    api_admin_port: int = Field(
        default=9464, ge=0, le=65535, description="Admin port: Prometheus `/metrics` and probes."
    )
    api_keys: str = Field(
        default="",
        repr=False,
        description="Comma-separated API keys (`Authorization: Bearer` or `X-API-Key`).",
    )
    api_auth_disabled: bool = Field(
        default=False, description="Accept requests without a key (development only)."
    )
    api_tracker_auth_required: bool = Field(
        default=False,
        description="Require a key on the Snowplow endpoints (`/tp2`, `/i`) too; browsers "
        "cannot keep secrets, so they are open by default.",
    )
    api_allowed_origins: str = Field(
        default="*",
        description="Comma-separated browser origins allowed on the open tracker endpoints "
        "(`*` = any); a request from another origin gets 403.",
    )
    api_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body, as sent (413 beyond)."
    )
    api_body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Deadline for receiving a whole request body (408 beyond): a client "
        "trickling its body cannot hold a connection open indefinitely.",
    )
    api_max_inflated_bytes: int = Field(
        default=4_194_304, ge=1024, description="Largest body after gzip inflation (413 beyond)."
    )
    api_max_event_bytes: int = Field(
        default=65_536,
        ge=512,
        le=MAX_EVENT_BYTES_CEILING,
        description="Largest single event, as JSON (rejected beyond; at most 130048, so every "
        "accepted event fits the Kafka record contract).",
    )
    api_max_events_per_request: int = Field(
        default=500, ge=1, le=10_000, description="Most events in one request (413 beyond)."
    )
    api_max_concurrent_requests: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="Ingest requests handled at once by one process; beyond it 503 with "
        "`Retry-After`, so memory stays bounded (each holds at most one body).",
    )
    api_max_json_depth: int = Field(
        default=32, ge=4, le=256, description="Deepest JSON nesting accepted (400 beyond)."
    )
    api_rate_limit_per_s: float = Field(
        default=1000.0,
        ge=0,
        description="Requests per second per key (or per client IP on "
        "open endpoints); 0 disables the limit.",
    )
    api_rate_limit_burst: int = Field(
        default=2000, ge=1, description="Requests a key may send at once above the rate."
    )
    api_trust_forwarded_for: bool = Field(
        default=False,
        description="Take the client IP from `X-Forwarded-For`, when the connection comes "
        "from one of `API_TRUSTED_PROXIES`; otherwise the client is always the socket's peer.",
    )
    api_trusted_proxies: str = Field(
        default="127.0.0.1,::1",
        description="Comma-separated IPs/CIDRs of the proxies whose `X-Forwarded-For` is "
        "believed (`*` = any peer, only when nothing else can reach the port).",
    )
    api_trusted_proxy_hops: int = Field(
        default=1,
        ge=1,
        le=16,
        description="How many trusted proxies append to `X-Forwarded-For`: the client is the "
        "entry that many places from the right.",
    )
    api_nuid_cookie_name: str = Field(
        default="sp",
        pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]*$",
        description="Cookie of the network user id on the tracker endpoints, written into each "
        "event as `tnuid` unless the tracker set one (empty = no cookie).",
    )
    api_nuid_cookie_domains: str = Field(
        default="",
        description="Comma-separated cookie domains; the first that the request's host is or "
        "is under is used (unset or none matching = the request's host only).",
    )
    api_nuid_cookie_max_age_days: int = Field(
        default=365, ge=1, le=400, description="Lifetime of the network user id cookie."
    )
    api_nuid_cookie_secure: bool = Field(
        default=True,
        description="`Secure; SameSite=None` on the cookie (sent cross-site over HTTPS); false "
        "gives `SameSite=Lax` (plain-HTTP development). Always `HttpOnly`.",
    )
    api_redirect_domains: str = Field(
        default="",
        description="Comma-separated hosts `GET /r/tp2?u=` may redirect to (unset = the "
        "redirect route answers 404).",
    )
    api_retry_after_s: int = Field(
        default=5,
        ge=1,
        le=3600,
        description="`Retry-After` sent with 503 answers (a 429 carries the seconds "
        "until the rate limit frees a request).",
    )
    api_drain_grace_s: float = Field(
        default=5.0,
        ge=0,
        description="On SIGTERM, how long to keep serving with readiness failed, so load "
        "balancers stop sending.",
    )
    api_shutdown_timeout_s: float = Field(
        default=20.0, gt=0, description="On SIGTERM, deadline for in-flight requests and the flush."
    )
    api_bench_noop_endpoint: bool = Field(
        default=False,
        description="Serve `POST /bench/noop` (the request layer alone: nothing parsed or "
        "published), for the benchmark.",
    )

    @field_validator("api_nuid_cookie_domains", "api_redirect_domains")
    @classmethod
    def _hosts(cls, value: str) -> str:
        for host in _split(value):
            if not _HOST.fullmatch(host):
                raise ValueError(f"{host!r} is not a host name")
        return value

    @field_validator("api_trusted_proxies")
    @classmethod
    def _proxies_parse(cls, value: str) -> str:
        parse_networks(value)
        return value

    @model_validator(mode="after")
    def _keys_unless_disabled(self) -> ApiSettings:
        if not self.keys and not self.api_auth_disabled:
            raise ValueError(
                "API_KEYS: set at least one key (or API_AUTH_DISABLED=true for development)"
            )
        if any(len(key) < 16 for key in self.keys):
            raise ValueError("API_KEYS: every key must be at least 16 characters")
        return self

    @property
    def keys(self) -> tuple[str, ...]:
        """The API keys."""
        return _split(self.api_keys)

    @property
    def trusted_proxies(self) -> tuple[Network, ...] | None:
        """The trusted proxies' networks (``None``: any peer)."""
        return parse_networks(self.api_trusted_proxies)

    @property
    def nuid_cookie_domains(self) -> tuple[str, ...]:
        """The cookie domains to choose from."""
        return _split(self.api_nuid_cookie_domains)

    @property
    def redirect_domains(self) -> tuple[str, ...]:
        """The hosts redirects may go to."""
        return _split(self.api_redirect_domains)

    @property
    def allowed_origins(self) -> frozenset[str]:
        """The allowed browser origins (``*`` for any)."""
        return frozenset(_split(self.api_allowed_origins))


def load_settings() -> ApiSettings:
    """Read the environment; raise SettingsError naming every bad variable."""
    try:
        return ApiSettings()
    except ValidationError as exc:
        raise describe_settings_error(exc) from exc
