"""The forwarder's configuration: one pydantic-settings class, read once by ``main``.

Variable names are an interface. Shared ones (``KAFKA_BOOTSTRAP_SERVERS``, ``EVENTS_TOPIC``,
``BAD_EVENTS_TOPIC``, ``DLQ_TOPIC``) validate exactly as in the API (they come from
:class:`~tracking_common.settings.KafkaTopicsSettings`); ``COLLECTOR_URL``,
``FORWARDER_GROUP_ID`` and ``FORWARDER_ADMIN_PORT`` are named by the team brief; everything
else is prefixed ``FORWARDER_``. A bad value fails start-up with a message naming the variable.
"""

from __future__ import annotations

from typing import Annotated, Final
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from tracking_common.gc_tuning import GEN0_THRESHOLD
from tracking_common.settings import KafkaTopicsSettings, describe_settings_error

from forwarder_service.classification import parse_status_overrides

__all__ = ["TRACKED_OBJECTS_PER_RECORD", "ForwarderSettings", "load_settings", "young_gc_threshold"]


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials")
    return value.rstrip("/")


def _check_overrides(value: str) -> str:
    parse_status_overrides(value)
    return value


class ForwarderSettings(BaseSettings, KafkaTopicsSettings):
    """Everything the forwarder reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    log_level: str = Field(
        default="INFO",
        pattern=r"(?i)^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$",
        description="Log level of the JSON log lines on stderr.",
    )
    collector_url: Annotated[str, AfterValidator(_check_url)] = Field(
        default="http://127.0.0.1:9090", description="Base URL of the Snowplow collector."
    )
    forwarder_group_id: str = Field(
        default="tracking-forwarder",
        min_length=1,
        max_length=249,
        description="Kafka consumer group; instances with the same id share the partitions.",
    )
    forwarder_group_instance_id: str | None = Field(
        default=None, description="Static membership id (avoids rebalances on restarts)."
    )
    forwarder_admin_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - probes come from outside the pod
        description="Address of the admin server (/healthz, /readyz, /metrics).",
    )
    forwarder_admin_port: int = Field(
        default=9465,
        ge=0,
        le=65535,
        description="Port of the admin server (/healthz, /readyz, /metrics).",
    )

    # Kafka consumer: small fetches keep memory independent of the topic's backlog.
    forwarder_max_poll_records: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Most records taken per poll (also the backlog bound's overshoot).",
    )
    forwarder_poll_timeout_ms: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Longest wait of one poll; the loop polls even while paused.",
    )
    forwarder_fetch_max_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Most bytes per fetch response (bounds the fetch buffers).",
    )
    forwarder_max_partition_fetch_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Most bytes fetched per partition per request."
    )
    forwarder_check_crcs: bool = Field(
        default=True,
        description="Check the CRC of every fetched record batch (detects corruption on the way).",
    )
    forwarder_session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        description="Group session timeout: a silent member is dropped after it.",
    )
    forwarder_heartbeat_interval_ms: int = Field(
        default=3000,
        ge=100,
        description="Heartbeat interval; at most a third of the session timeout.",
    )
    forwarder_rebalance_timeout_ms: int = Field(
        default=30_000,
        ge=1000,
        description="Time members get to rejoin (above the revoke drain timeout).",
    )
    forwarder_max_poll_interval_ms: int = Field(
        default=300_000,
        ge=1000,
        description="Longest gap between polls before the member leaves the group.",
    )
    forwarder_commit_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=300,
        description=(
            "Least time between two commits; the settled watermark is committed as soon as it "
            "advances, at most this often (and at once on revoke and shutdown)."
        ),
    )
    forwarder_revoke_drain_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="On revoke, how long in-flight work may finish before the commit.",
    )
    forwarder_shutdown_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "On SIGTERM, deadline to deliver, commit and close; undelivered work stays uncommitted."
        ),
    )
    forwarder_lag_interval_s: float = Field(
        default=5.0, gt=0, description="How often the consumer lag gauge is refreshed."
    )

    # Backlog bound (events and bytes taken from Kafka, not yet delivered or dead-lettered).
    forwarder_max_backlog_events: int = Field(
        default=20_000,
        ge=1,
        description=(
            "Backlog bound: events taken and not yet delivered or dead-lettered; fetching"
            " pauses above it."
        ),
    )
    forwarder_max_backlog_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Backlog bound in bytes; fetching pauses above it.",
    )
    forwarder_resume_ratio: float = Field(
        default=0.5,
        ge=0,
        lt=1,
        description="Fetching resumes once the backlog is below this fraction of both bounds.",
    )
    forwarder_memory_bound_mb: int = Field(
        default=0,
        ge=0,
        description="RSS bound to check against; 0 = computed from the bounds above.",
    )

    # Sending to the collector.
    forwarder_batch_max_events: int = Field(
        default=1000, ge=1, le=10_000, description="Most events per collector request."
    )
    forwarder_batch_max_bytes: int = Field(
        default=900_000,
        ge=1024,
        description="Most bytes per collector request body; one larger event is dead-lettered.",
    )
    forwarder_linger_ms: int = Field(
        default=50,
        ge=0,
        le=60_000,
        description="How long a partial batch waits for more events before it is sent.",
    )
    forwarder_max_in_flight: int = Field(
        default=4, ge=1, le=256, description="Collector requests in flight at once."
    )
    forwarder_request_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Deadline of one collector request (a timeout is retried).",
    )
    forwarder_retry_max_attempts: int = Field(
        default=0, ge=0, description="Attempts per batch for transient failures; 0 = forever."
    )
    forwarder_retry_base_delay_s: float = Field(
        default=0.5,
        gt=0,
        description="First retry delay (exponential, full jitter; Retry-After wins).",
    )
    forwarder_retry_max_delay_s: float = Field(
        default=30.0, gt=0, description="Cap of the retry delay."
    )
    forwarder_setup_backoff_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Retry delay after a setup failure (401, 403, 404, TLS, DNS); fetching stays paused."
        ),
    )
    forwarder_status_overrides: Annotated[str, AfterValidator(_check_overrides)] = Field(
        default="", description="e.g. '404=retry,409=reject': overrides of the status table."
    )
    forwarder_bisect_rejects: bool = Field(
        default=True,
        description="Bisect a rejected batch so only the rejected events are dead-lettered.",
    )

    # Dead letters.
    forwarder_dlq_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Deadline of a dead-letter write (acks=all); missing it stops the service.",
    )

    @model_validator(mode="after")
    def _check_timeouts(self) -> ForwarderSettings:
        if self.forwarder_revoke_drain_timeout_s * 1000 >= self.forwarder_rebalance_timeout_ms:
            raise ValueError(
                "FORWARDER_REVOKE_DRAIN_TIMEOUT_S must be below FORWARDER_REBALANCE_TIMEOUT_MS"
            )
        if self.forwarder_heartbeat_interval_ms * 3 > self.forwarder_session_timeout_ms:
            raise ValueError(
                "FORWARDER_HEARTBEAT_INTERVAL_MS must be at most a third of the session timeout"
            )
        if self.forwarder_retry_base_delay_s > self.forwarder_retry_max_delay_s:
            raise ValueError(
                "FORWARDER_RETRY_BASE_DELAY_S must not exceed FORWARDER_RETRY_MAX_DELAY_S"
            )
        return self

    @property
    def memory_bound_mb(self) -> int:
        """The RSS the process should stay under (configured, or estimated; see docs)."""
        if self.forwarder_memory_bound_mb:
            return self.forwarder_memory_bound_mb
        return estimate_memory_bound_mb(self)

    @property
    def young_gc_threshold(self) -> int:
        """The garbage collector's young threshold: above what a full backlog holds."""
        return young_gc_threshold(self)


_BASELINE_MB = 90
"""Interpreter, aiokafka, aiohttp, OpenTelemetry and pydantic loaded, idle."""
_BYTES_PER_EVENT_OVERHEAD = 2500
"""Python objects behind one buffered event: the payload dict of ~15 string pairs, its
serialised form, the record's raw value and the tag (measured ~2 KB; rounded up)."""


def estimate_memory_bound_mb(settings: ForwarderSettings) -> int:
    """A conservative RSS bound: baseline + fetch buffers + the backlog at its bound.

    Fetch buffers: aiokafka keeps at most one fetched batch per partition and one fetch
    response in flight, so about twice ``fetch_max_bytes``, plus the ``max_poll_records``
    overshoot that one poll can add above the backlog bound.
    """
    events = settings.forwarder_max_backlog_events + settings.forwarder_max_poll_records
    backlog = min(
        events * _BYTES_PER_EVENT_OVERHEAD,
        settings.forwarder_max_backlog_bytes * 3 + events * 600,
    )
    fetch = 2 * settings.forwarder_fetch_max_bytes
    return _BASELINE_MB + (backlog + fetch) // (1024 * 1024) + 1


TRACKED_OBJECTS_PER_RECORD: Final = 10
"""Container objects (the ones the garbage collector tracks) one held record keeps alive:
aiokafka's record, its header list and tuples, the payload view, the pending event and its
tag (9 measured by a unit test; rounded up)."""


def young_gc_threshold(settings: ForwarderSettings) -> int:
    """A young-generation threshold no full backlog reaches (and never below the default).

    CPython collects the young generation when container allocations outnumber deallocations
    by the threshold. A backlog that fills from half to full (the gate's swing) allocates
    ~90,000 such objects net at the defaults; at 50,000 each swing ran one or two
    collections, and each walked the whole young backlog: 1.5-2 us of CPU per record, as much
    as the contract check. Above what a full backlog, one poll and one batch hold, holding
    records never triggers one; the data path frees by reference counting, so nothing waits
    for a collection but rare cycles.
    """
    held = (
        settings.forwarder_max_backlog_events
        + settings.forwarder_max_poll_records
        + settings.forwarder_batch_max_events
    )
    return max(GEN0_THRESHOLD, held * TRACKED_OBJECTS_PER_RECORD)


def load_settings() -> ForwarderSettings:
    """Read the environment; raise SettingsError naming every bad variable."""
    try:
        return ForwarderSettings()
    except ValidationError as exc:
        raise describe_settings_error(exc) from exc
