"""The operator's view names real metrics: dashboard, alert rules and docs/metrics.md.

The instruments are found by reading the services' source (every ``meter.create_*`` call and
every ``HistogramTally``), so
a renamed or removed metric fails here instead of leaving an empty panel or a silent alert.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_service.metrics import ApiMetrics, HistogramTally
from api_service.settings import ApiSettings
from forwarder_service.metrics import ForwarderMetrics
from forwarder_service.replay import parse_replay_args
from forwarder_service.settings import ForwarderSettings
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import Counter, Histogram
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry
from pydantic_settings import BaseSettings
from tracking_common.emitter.instruments import EmitterInstruments
from tracking_common.iglu.instruments import IgluInstruments
from tracking_producer.instruments import ProducerInstruments

from scripts import check_terraform

REPO = Path(__file__).resolve().parents[3]
SOURCES = [
    REPO / "common" / "src",
    REPO / "producer" / "src",
    REPO / "api_service" / "src",
    REPO / "forwarder_service" / "src",
    REPO / "local_collector" / "src",
]
DASHBOARD = REPO / "ops" / "grafana" / "tracking-pipeline.json"
ALERTS = REPO / "ops" / "prometheus" / "alerts.yaml"
METRICS_DOC = REPO / "docs" / "metrics.md"
OPERATIONS_DOC = REPO / "docs" / "operations.md"
_NAME = re.compile(r"\btracking_[a-z0-9]+_[a-z0-9_]+\b")
_KIND = {
    "create_counter": "counter",
    "create_observable_counter": "counter",
    "create_histogram": "histogram",
    "create_up_down_counter": "gauge",
    "create_observable_up_down_counter": "gauge",
    "create_observable_gauge": "gauge",
    "create_gauge": "gauge",
}

# Instruments kept by the service and rendered at scrape time (api_service.metrics), named in
# full (with the unit suffix) by their first argument.
_SCRAPED = {"HistogramTally": "histogram"}

# Units the OpenTelemetry Prometheus exporter spells out as a name suffix.
_UNIT_SUFFIX = {"s": "seconds", "ms": "milliseconds", "By": "bytes"}


@dataclass(frozen=True)
class Instrument:
    name: str
    kind: str
    source: str
    unit: str = ""

    @property
    def base(self) -> str:
        """The name with the unit suffix the exporter adds (once)."""
        suffix = _UNIT_SUFFIX.get(self.unit)
        if suffix and not self.name.endswith(f"_{suffix}"):
            return f"{self.name}_{suffix}"
        return self.name

    def samples(self) -> set[str]:
        """The sample names of this instrument in the Prometheus text format."""
        if self.kind == "counter":
            return {f"{self.base}_total"}
        if self.kind == "histogram":
            return {f"{self.base}_{s}" for s in ("bucket", "sum", "count")}
        return {self.base}

    def exposed(self) -> set[str]:
        """Names a query or a doc may use: the samples, and a histogram's family name."""
        return self.samples() | ({self.base} if self.kind == "histogram" else set())


def _constants(tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        target: ast.expr | None = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        elif isinstance(node, ast.AnnAssign):
            target = node.target
        value = getattr(node, "value", None)
        if (
            isinstance(target, ast.Name)
            and isinstance(value, ast.Constant)
            and isinstance(value.value, str)
        ):
            found[target.id] = value.value
    return found


def _evaluate(node: ast.expr, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _evaluate(node.left, constants), _evaluate(node.right, constants)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.JoinedStr):
        parts = [
            _evaluate(v.value, constants) if isinstance(v, ast.FormattedValue) else v.value
            for v in node.values
            if isinstance(v, ast.FormattedValue | ast.Constant)
        ]
        return None if any(not isinstance(p, str) for p in parts) else "".join(map(str, parts))
    return None


def source_instruments() -> dict[str, Instrument]:
    """Every instrument created in the services' and common's source, by name."""
    instruments: dict[str, Instrument] = {}
    for root in SOURCES:
        for path in root.rglob("*.py"):
            tree = ast.parse(path.read_text())
            constants = _constants(tree)
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                if isinstance(node.func, ast.Name) and node.func.id in _SCRAPED:
                    kind = _SCRAPED[node.func.id]
                elif isinstance(node.func, ast.Attribute) and node.func.attr in _KIND:
                    kind = _KIND[node.func.attr]
                else:
                    continue
                argument = node.args[0] if node.args else None
                keyword = next((k.value for k in node.keywords if k.arg == "name"), None)
                expression = argument or keyword
                name = None if expression is None else _evaluate(expression, constants)
                relative = str(path.relative_to(REPO))
                assert name is not None, f"{relative}:{node.lineno}: cannot read the metric name"
                unit = next(
                    (
                        k.value.value
                        for k in node.keywords
                        if k.arg == "unit" and isinstance(k.value, ast.Constant)
                    ),
                    "",
                )
                instruments[name] = Instrument(name, kind, relative, str(unit))
    return instruments


INSTRUMENTS = source_instruments()
EXPOSED = {name: i for i in INSTRUMENTS.values() for name in i.exposed()}


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def _alert_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def _unknown(text: str) -> list[str]:
    return sorted({name for name in _NAME.findall(text) if name not in EXPOSED})


def test_the_services_define_instruments() -> None:
    prefixes = {name.split("_")[1] for name in INSTRUMENTS}
    assert {"api", "forwarder", "emitter"} <= prefixes
    assert all(name.startswith("tracking_") for name in INSTRUMENTS)


def test_names_read_from_the_source_are_the_names_the_exporter_serves() -> None:
    registry = CollectorRegistry()
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(disable_target_info=True, registry=registry)]
    )
    try:
        api = ApiMetrics(provider.get_meter("api"))
        registry.register(api.histograms)  # as api_service.main does
        owners: list[object] = [
            api,
            EmitterInstruments(meter=provider.get_meter("emitter")),
            IgluInstruments(meter=provider.get_meter("iglu")),
            ProducerInstruments(meter=provider.get_meter("producer")),
        ]
        forwarder = ForwarderMetrics(provider.get_meter("forwarder"))
        forwarder.gauges.lag[("events", 0)] = 1
        owners.append(forwarder)
        # Synchronous instruments appear once they have a value; gauges at every scrape.
        for owner in owners:
            for value in vars(owner).values():
                if isinstance(value, Counter):
                    value.add(1)
                elif isinstance(value, Histogram):
                    value.record(0.1)
                elif isinstance(value, HistogramTally):
                    value.record(0.1, *("x" for _ in value.labels))
        served = {
            sample.name
            for family in registry.collect()
            for sample in family.samples
            if sample.name.startswith("tracking_")
        }
    finally:
        provider.shutdown()
    expected = set().union(*(i.samples() for i in INSTRUMENTS.values()))
    assert served == expected


def test_dashboard_parses_and_has_the_operators_panels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("throughput", "rejections", "dlq", "lag", "paused", "latency"):
        assert topic in titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_queries_name_real_metrics() -> None:
    exprs = _dashboard_exprs()
    assert exprs
    assert _unknown("\n".join(exprs)) == []


def test_alert_rules_parse_and_name_real_metrics() -> None:
    rules = _alert_rules()
    names = {rule["alert"] for rule in rules}
    assert {
        "TrackingForwarderLagGrowing",
        "TrackingForwarderDeadLetters",
        "TrackingApi5xxRate",
        "TrackingApiKafkaErrors",
        "TrackingForwarderSetupFailures",
    } <= names
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert _NAME.search(rule["expr"]), rule["alert"]
    assert _unknown("\n".join(rule["expr"] for rule in rules)) == []


def test_alert_runbook_links_point_at_sections_of_the_runbook() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in OPERATIONS_DOC.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in _alert_rules():
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in headings, rule["alert"]


def test_metrics_doc_names_only_real_metrics() -> None:
    assert _unknown(METRICS_DOC.read_text()) == []


@pytest.mark.parametrize("name", sorted(INSTRUMENTS))
def test_every_instrument_is_documented_in_the_table(name: str) -> None:
    rows = [line for line in METRICS_DOC.read_text().splitlines() if line.startswith("|")]
    documented = {match for row in rows for match in _NAME.findall(row.split("|")[1])}
    assert INSTRUMENTS[name].exposed() & documented, f"{name} missing from docs/metrics.md"


@pytest.mark.timeout(600)  # the first run builds ops/promcheck (~1 min); then cached
def test_prometheus_parses_the_rules_and_the_dashboard_queries() -> None:
    try:
        check_terraform.promcheck_binary()
    except check_terraform.ToolUnavailableError as exc:
        pytest.skip(str(exc))
    assert check_terraform.check_prometheus() == []


def test_runbook_documents_every_replay_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_replay_args(["--help"])
    flags = set(re.findall(r"--[a-z][a-z-]+", capsys.readouterr().out)) - {"--help"}
    assert flags
    runbook = OPERATIONS_DOC.read_text()
    assert sorted(flag for flag in flags if f"`{flag}" not in runbook) == []


@pytest.mark.parametrize(
    ("prefix", "settings"), [("FORWARDER_", ForwarderSettings), ("API_", ApiSettings)]
)
def test_docs_name_only_real_settings(prefix: str, settings: type[BaseSettings]) -> None:
    known = {name.upper() for name in settings.model_fields}
    docs = (OPERATIONS_DOC, REPO / "docs" / "deploy.md", REPO / "terraform" / "README.md")
    for doc in docs:
        named = set(re.findall(rf"\b{prefix}[A-Z_]+\b", doc.read_text()))
        assert sorted(named - known) == [], doc.name
