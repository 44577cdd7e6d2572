"""terraform/ and compose.yaml: they parse, set only real settings, and pass the offline checks.

HCL is parsed with python-hcl2; checkov and ``tofu fmt`` run through
:mod:`scripts.check_terraform`, which obtains the tools itself (see its docstring for why
``tofu validate`` needs a provider mirror). The module's newer guarantees (network policy,
secured Kafka, scaling behaviour, memory sizing) are checked in test_ship_module.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_service.settings import ApiSettings
from forwarder_service.settings import ForwarderSettings

from scripts import check_terraform
from tests.unit.ship.terraform_support import (
    REPO,
    TERRAFORM,
    VALID_INPUTS,
    assert_plan,
    evaluate,
    is_known,
    load,
)
from tests.unit.ship.terraform_support import blocks as _blocks
from tests.unit.ship.terraform_support import env_keys as _keys

TF_FILES = sorted(TERRAFORM.rglob("*.tf"))
_is_known = is_known
_load = load


@pytest.mark.parametrize("path", TF_FILES, ids=[str(p.relative_to(TERRAFORM)) for p in TF_FILES])
def test_every_tf_file_parses(path: Path) -> None:
    assert _load(path)


def test_module_declares_both_services_and_their_scalers() -> None:
    assert {
        "kubernetes_deployment_v1.api",
        "kubernetes_service_v1.api",
        "kubernetes_horizontal_pod_autoscaler_v2.api",
        "kubernetes_deployment_v1.forwarder",
        "kubernetes_manifest.forwarder_scaler",
        "kubernetes_manifest.forwarder_pdb",
    } <= set(_blocks("resource"))


def test_hpa_scales_the_api_on_cpu() -> None:
    spec = _blocks("resource")["kubernetes_horizontal_pod_autoscaler_v2.api"]["spec"][0]
    resource = spec["metric"][0]["resource"][0]
    assert resource["name"] == "cpu"
    assert resource["target"][0]["type"] == "Utilization"


def test_keda_scales_the_forwarder_on_lag_up_to_the_partition_count() -> None:
    manifest = _blocks("resource")["kubernetes_manifest.forwarder_scaler"]["manifest"]
    assert manifest["kind"] == "ScaledObject"
    assert manifest["spec"]["maxReplicaCount"] == "${local.forwarder_max}"
    trigger = str(manifest["spec"]["triggers"])
    assert 'type = "kafka"' in trigger
    assert "lagThreshold" in trigger
    assert 'local.forwarder_env["FORWARDER_GROUP_ID"]' in trigger
    forwarder_max = _blocks("locals")["forwarder_max"]
    assert "var.forwarder_scaling.partitions" in forwarder_max
    conditions = [v["condition"] for v in _blocks("variable")["forwarder_scaling"]["validation"]]
    assert any(
        "<= var.forwarder_scaling.partitions" in c and "max_replicas" in c for c in conditions
    )


def test_termination_grace_exceeds_the_forwarders_shutdown_deadline() -> None:
    template = _blocks("resource")["kubernetes_deployment_v1.forwarder"]["spec"][0]["template"]
    assert template[0]["spec"][0]["termination_grace_period_seconds"] == (
        "${local.forwarder_grace_s}"
    )
    grace = _blocks("locals")["forwarder_grace_s"]
    assert grace == "${var.forwarder_shutdown_timeout_s + var.termination_grace_margin_s}"
    variables = _blocks("variable")
    assert variables["forwarder_shutdown_timeout_s"]["default"] == (
        ForwarderSettings.model_fields["forwarder_shutdown_timeout_s"].default
    )
    assert variables["api_shutdown_timeout_s"]["default"] == (
        ApiSettings.model_fields["api_shutdown_timeout_s"].default
    )
    # The drain must outlast the readiness window, which the service's own default (suited to
    # compose, where no endpoints list is updated) does not; checks.tf enforces it.
    readiness = _blocks("locals")["api_readiness"]
    window = readiness["period_s"] * readiness["failure_threshold"]
    assert 10 <= variables["api_drain_grace_s"]["default"] <= 15
    assert variables["api_drain_grace_s"]["default"] > window
    api_pod = _blocks("resource")["kubernetes_deployment_v1.api"]["spec"][0]["template"][0]
    assert api_pod["spec"][0]["termination_grace_period_seconds"] == "${local.api_grace_s}"
    margin = variables["termination_grace_margin_s"]["validation"][0]["condition"]
    assert ">= 5" in margin
    own_env = _blocks("locals")["forwarder_own_env"]
    assert (
        own_env["FORWARDER_SHUTDOWN_TIMEOUT_S"] == "${tostring(var.forwarder_shutdown_timeout_s)}"
    )


@pytest.mark.parametrize("service", ["api", "forwarder"])
def test_module_sets_only_variables_the_service_reads(service: str) -> None:
    local_values = _blocks("locals")
    names = (
        _keys(local_values["kafka_env"])
        | _keys(local_values["kafka_security_env"])
        | _keys(local_values["kafka_secret_env"])
        | _keys(local_values["otel_env"])
        | _keys(local_values[f"{service}_own_env"])
    )
    if service == "api":
        names |= _keys(local_values["api_forwarded_env"])
    assert names
    assert sorted(n for n in names if not _is_known(n, service)) == []


@pytest.mark.parametrize("service", ["api", "forwarder"])
def test_containers_are_locked_down(service: str) -> None:
    deployment = _blocks("resource")[f"kubernetes_deployment_v1.{service}"]
    pod = deployment["spec"][0]["template"][0]["spec"][0]
    assert pod["security_context"][0]["run_as_non_root"] is True
    assert pod["automount_service_account_token"] is False
    container = pod["container"][0]
    context = container["security_context"][0]
    assert context["read_only_root_filesystem"] is True
    assert context["allow_privilege_escalation"] is False
    assert context["capabilities"][0]["drop"] == ["ALL"]
    assert {"liveness_probe", "readiness_probe", "resources"} <= set(container)
    assert container["liveness_probe"][0]["http_get"][0]["path"] == "/healthz"
    assert container["readiness_probe"][0]["http_get"][0]["path"] == "/readyz"


def test_api_keys_come_from_a_secret_reference() -> None:
    container = _blocks("resource")["kubernetes_deployment_v1.api"]["spec"][0]["template"][0][
        "spec"
    ][0]["container"][0]
    env = {e["name"]: e for e in container["env"]}
    reference = env["API_KEYS"]["value_from"][0]["secret_key_ref"][0]
    assert reference["name"] == "${var.api_keys_secret.name}"
    assert "value" not in env["API_KEYS"]


# --- compose.yaml -------------------------------------------------------------------------------

COMPOSE_SERVICES = {"api": "api", "forwarder": "forwarder", "collector": "collector"}


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "compose.yaml").read_text()))


def test_compose_runs_kafka_in_kraft_mode_from_the_official_image() -> None:
    kafka = _compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]


@pytest.mark.parametrize("service", sorted(COMPOSE_SERVICES))
def test_compose_builds_each_service_from_its_dockerfile_target(service: str) -> None:
    spec = _compose()["services"][service]
    assert spec["build"]["target"] == COMPOSE_SERVICES[service]
    names = set(spec.get("environment", {}))
    assert sorted(n for n in names if not _is_known(n, service)) == []


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, duration
    return float(match[1]) * (60 if match[2] == "m" else 1)


def test_compose_stop_grace_outlasts_each_services_shutdown_deadline() -> None:
    services = _compose()["services"]
    forwarder, api = services["forwarder"], services["api"]
    forwarder_deadline = float(
        forwarder["environment"].get(
            "FORWARDER_SHUTDOWN_TIMEOUT_S",
            ForwarderSettings.model_fields["forwarder_shutdown_timeout_s"].default,
        )
    )
    assert _seconds(forwarder["stop_grace_period"]) > forwarder_deadline
    api_deadline = sum(
        float(api["environment"].get(name.upper(), ApiSettings.model_fields[name].default))
        for name in ("api_drain_grace_s", "api_shutdown_timeout_s")
    )
    assert _seconds(api["stop_grace_period"]) > api_deadline


def test_compose_otel_collector_is_optional() -> None:
    services = _compose()["services"]
    assert services["otel-collector"]["profiles"] == ["otel"]


# --- offline tool checks ------------------------------------------------------------------------


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("target", "framework"), check_terraform.CHECKOV_TARGETS, ids=["terraform", "dockerfile"]
)
def test_checkov_finds_nothing_unjustified(target: Path, framework: str) -> None:
    summary = check_terraform.checkov(target, framework)
    assert summary.passed > 0
    assert summary.failed == []


@pytest.mark.timeout(900)  # the first run builds tofu from source (~3 min); then cached
def test_terraform_is_formatted() -> None:
    try:
        check_terraform.tofu_binary()
    except check_terraform.ToolUnavailableError as exc:
        pytest.skip(str(exc))
    assert check_terraform.fmt_check() == []


@pytest.mark.timeout(900)  # may build tofu on first use
@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({}, None),
        ({"forwarder_scaling": {"partitions": 6}}, None),
        ({"forwarder_scaling": {"partitions": 6, "max_replicas": 7}}, "partition count"),
        ({"forwarder_scaling": {"partitions": 4, "min_replicas": 5}}, "partition count"),
        ({"api_image": "registry.example.com/tracking-api:latest"}, "pinned"),
        ({"api_image": "tracking-api"}, "pinned"),
        ({"kafka_bootstrap_servers": "kafka-0"}, "host:port"),
        ({"collector_url": "ftp://collector"}, "http(s) URL"),
        ({"namespace": "default"}, "DNS label"),
        ({"api_scaling": {"min_replicas": 3, "max_replicas": 2}}, "min_replicas <= max"),
        ({"termination_grace_margin_s": 1}, "at least 5 seconds"),
    ],
)
def test_variable_validations_as_tofu_evaluates_them(
    variables_only: Path, override: dict[str, object], error: str | None, tmp_path: Path
) -> None:
    assert_plan(variables_only, tmp_path / "case.tfvars.json", {**VALID_INPUTS, **override}, error)


def _evaluate_locals(workdir: Path, tmp_path: Path, override: dict[str, object]) -> Any:
    return evaluate(workdir, tmp_path, {**VALID_INPUTS, **override})


@pytest.mark.timeout(900)  # may build tofu on first use
def test_evaluated_environment_is_what_the_services_read(
    variables_only: Path, tmp_path: Path
) -> None:
    values = _evaluate_locals(
        variables_only,
        tmp_path,
        {"otel": {"exporter_otlp_endpoint": "http://otel:4318"}, "api_env": {"LOG_LEVEL": "DEBUG"}},
    )
    for service in ("api", "forwarder"):
        env = values[f"{service}_env"]
        assert sorted(n for n in env if not _is_known(n, service)) == []
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka-0:9092,kafka-1:9092"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel:4318"
    assert values["api_env"]["LOG_LEVEL"] == "DEBUG"
    assert values["forwarder_env"]["LOG_LEVEL"] == "INFO"
    assert values["forwarder_env"]["COLLECTOR_URL"] == "https://collector.example.com"


@pytest.mark.timeout(900)  # may build tofu on first use
def test_evaluated_grace_period_and_replica_ceiling(variables_only: Path, tmp_path: Path) -> None:
    values = _evaluate_locals(
        variables_only,
        tmp_path,
        {"forwarder_scaling": {"partitions": 12}, "forwarder_shutdown_timeout_s": 40},
    )
    assert values["forwarder_env"]["FORWARDER_SHUTDOWN_TIMEOUT_S"] == "40"
    assert values["forwarder_grace_s"] > 40
    assert values["forwarder_max"] == 12
    api_deadline = float(values["api_env"]["API_DRAIN_GRACE_S"]) + float(
        values["api_env"]["API_SHUTDOWN_TIMEOUT_S"]
    )
    assert values["api_grace_s"] > api_deadline
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in values["forwarder_env"]


@pytest.mark.timeout(300)
def test_example_validates_against_the_providers() -> None:
    mirror = check_terraform.provider_mirror()
    if mirror is None:
        pytest.skip(
            "tofu validate needs the hashicorp/kubernetes and Mongey/kafka providers: their "
            "registries are unreachable and the Go module proxy has neither at a usable "
            "version; set TF_PROVIDER_MIRROR to a filesystem mirror holding both"
        )
    check_terraform.validate(mirror)
