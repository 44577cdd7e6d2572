"""tracking_pipeline and kafka_topics: what a platform team checks before accepting them.

Structure is asserted on the HCL (python-hcl2); validations, cross-input preconditions
(checks.tf) and computed values are evaluated by tofu without providers (terraform_support).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.ship.terraform_support import (
    KAFKA_SECURITY_ENV,
    REPO,
    TERRAFORM,
    TOPICS_MODULE,
    VALID_INPUTS,
    assert_plan,
    blocks,
    env_keys,
    evaluate,
    load,
    preconditions,
)

RESOURCES = blocks("resource")
LOCALS = blocks("locals")
VARIABLES = blocks("variable")


def _pod(name: str) -> dict[str, Any]:
    deployment = RESOURCES[f"kubernetes_deployment_v1.{name}"]
    return dict(deployment["spec"][0]["template"][0]["spec"][0])


def _dynamic(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``dynamic "name"`` block of ``body``."""
    found = [item[name] for item in body.get("dynamic", []) if name in item]
    assert found, f"no dynamic {name}"
    return dict(found[0])


# --- the example and the deploy guide ----------------------------------------------------------


def test_example_does_not_create_the_namespace_the_deploy_guide_creates() -> None:
    guide = (REPO / "docs" / "deploy.md").read_text()
    assert "kubectl create namespace tracking" in guide
    example = load(TERRAFORM / "examples" / "basic" / "main.tf")
    pipeline = next(m["pipeline"] for m in example["module"] if "pipeline" in m)
    assert pipeline["namespace"] == "tracking"
    assert pipeline.get("create_namespace", False) is False


# --- Service, probes, env ----------------------------------------------------------------------


def test_service_carries_only_the_api_port_and_its_type_is_checked() -> None:
    ports = RESOURCES["kubernetes_service_v1.api"]["spec"][0]["port"]
    assert [p["target_port"] for p in ports] == ["http"]
    condition = VARIABLES["service_type"]["validation"][0]["condition"]
    assert "ClusterIP" in condition
    assert "ExternalName" not in condition


@pytest.mark.parametrize("service", ["api", "forwarder"])
def test_probes_go_to_the_admin_port(service: str) -> None:
    container = _pod(service)["container"][0]
    admin = f"${{local.{service if service == 'api' else 'forwarder'}_admin_port_name}}"
    assert any(port["name"] == admin for port in container["port"])
    for probe in ("liveness_probe", "readiness_probe", "startup_probe"):
        assert container[probe][0]["http_get"][0]["port"] == admin


def _reserved(variable: str) -> set[str]:
    condition = VARIABLES[variable]["validation"][0]["condition"]
    return set(re.findall(r'"([A-Z][A-Z0-9_]+)"', str(condition)))


@pytest.mark.parametrize("service", ["api", "forwarder"])
def test_extra_env_cannot_override_what_the_module_sets(service: str) -> None:
    own = (
        env_keys(LOCALS["kafka_env"])
        | env_keys(LOCALS[f"{service}_own_env"])
        | KAFKA_SECURITY_ENV
        | (env_keys(LOCALS["api_forwarded_env"]) | {"API_KEYS"} if service == "api" else set())
    )
    # The log level and the OTEL_* names are defaults the caller may change.
    expected = {n for n in own if n != "LOG_LEVEL" and not n.startswith("OTEL_")}
    assert sorted(expected - _reserved(f"{service}_env")) == []


# --- scaling, disruption, placement ------------------------------------------------------------


def test_keda_scales_in_small_steps_and_ignores_paused_partitions() -> None:
    manifest = RESOURCES["kubernetes_manifest.forwarder_scaler"]["manifest"]
    behavior = manifest["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert {"scaleUp", "scaleDown"} <= set(behavior)
    assert "scale_down_window_s" in str(behavior["scaleDown"]["stabilizationWindowSeconds"])
    trigger = str(manifest["spec"]["triggers"])
    assert 'excludePersistentLag = "true"' in trigger
    assert "local.keda_sasl" in trigger
    assert "local.keda_tls" in trigger


def test_lag_threshold_exceeds_what_a_healthy_replica_holds() -> None:
    conditions = preconditions(RESOURCES["terraform_data.invariants"])
    assert any("lag_threshold > local.forwarder_lag_held" in c for c in conditions)
    held = str(LOCALS["forwarder_lag_held"])
    assert "forwarder_max_backlog_events" in held
    assert "forwarder_commit_interval_s" in held


@pytest.mark.parametrize("name", ["api_pdb", "forwarder_pdb"])
def test_disruption_budgets_never_block_a_drain_on_unready_pods(name: str) -> None:
    spec = RESOURCES[f"kubernetes_manifest.{name}"]["manifest"]["spec"]
    assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert spec["maxUnavailable"] == 1


@pytest.mark.parametrize("service", ["api", "forwarder"])
def test_pods_spread_over_zones_and_hosts(service: str) -> None:
    spread = _dynamic(_pod(service), "topology_spread_constraint")
    assert spread["for_each"] == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]


# --- network policy, ingress, Prometheus Operator ----------------------------------------------


def test_network_policy_denies_by_default_both_ways() -> None:
    policy = RESOURCES["kubernetes_network_policy_v1.this"]
    assert policy["spec"][0]["policy_types"] == ["Ingress", "Egress"]
    assert "local.network_rules" in str(policy["for_each"])
    assert "var.network_policy.enabled" in str(policy["for_each"])
    rules = str(LOCALS["network_rules"])
    assert "collector_port" in rules
    assert "local.otlp_rules" in rules


def test_ingress_is_optional_and_sets_the_forwarded_header_trust() -> None:
    ingress = RESOURCES["kubernetes_ingress_v1.api"]
    assert "var.ingress.enabled" in str(ingress["count"])
    forwarded = str(LOCALS["api_forwarded_env"])
    assert "var.ingress.proxy_hops" in forwarded
    assert "var.ingress.trusted_proxies" in forwarded


def test_prometheus_operator_resources_read_the_alert_rules_file() -> None:
    monitor = RESOURCES["kubernetes_manifest.pod_monitor"]["manifest"]
    assert monitor["kind"] == "PodMonitor"
    rule = RESOURCES["kubernetes_manifest.prometheus_rule"]["manifest"]
    assert rule["kind"] == "PrometheusRule"
    default = re.search(r'"\$\{path\.module\}/([^"]+)"', str(LOCALS["rules_file"]))
    assert default, LOCALS["rules_file"]
    rules_file = (TERRAFORM / "modules" / "tracking_pipeline" / default[1]).resolve()
    assert yaml.safe_load(rules_file.read_text())["groups"]


# --- secured Kafka -----------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["api", "forwarder"])
def test_kafka_credentials_come_from_secrets(service: str) -> None:
    pod = _pod(service)
    container = pod["container"][0]
    secret_env = [
        item["env"] for item in container["dynamic"] if "env" in item and "value_from" in str(item)
    ]
    assert any("local.kafka_secret_env" in str(env["for_each"]) for env in secret_env)
    volume = _dynamic(pod, "volume")
    assert "secret" in str(volume["content"])
    mount = _dynamic(container, "volume_mount")
    assert mount["content"][0]["read_only"] is True


def test_scaler_authenticates_with_the_same_secrets() -> None:
    auth = RESOURCES["kubernetes_manifest.forwarder_kafka_auth"]["manifest"]
    assert auth["kind"] == "TriggerAuthentication"
    assert "local.keda_secret_refs" in str(auth["spec"]["secretTargetRef"])


# --- memory ------------------------------------------------------------------------------------


def test_api_memory_limit_is_sized_from_the_concurrency_bound() -> None:
    limits = RESOURCES["kubernetes_deployment_v1.api"]["spec"][0]["template"][0]["spec"][0][
        "container"
    ][0]["resources"][0]["limits"]
    assert limits["memory"] == "${local.api_memory_limit}"
    sizing = str(LOCALS["api_memory_limit_mib"])
    for term in ("producer_buffer_bytes", "max_concurrent_requests", "max_inflated_bytes"):
        assert term in sizing


# --- topics ------------------------------------------------------------------------------------


def test_topics_are_protected_and_replicated() -> None:
    topic = blocks("resource", TOPICS_MODULE)["kafka_topic.this"]
    assert topic["lifecycle"][0]["prevent_destroy"] is True
    variables = blocks("variable", TOPICS_MODULE)
    assert variables["replication_factor"]["default"] == 3
    assert variables["min_insync_replicas"]["default"] == 2
    invariants = blocks("resource", TOPICS_MODULE)["terraform_data.invariants"]
    assert "${var.min_insync_replicas < var.replication_factor}" in preconditions(invariants)


# --- compose -----------------------------------------------------------------------------------


def test_compose_restarts_long_running_services_and_not_the_one_shot() -> None:
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    assert services["topics"]["restart"] == "no"
    for name, spec in services.items():
        if name != "topics":
            assert spec.get("restart") in {"unless-stopped", "always", "on-failure"}, name


def test_compose_default_api_key_is_one_the_api_accepts() -> None:
    api = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["api"]
    default = re.fullmatch(r"\$\{API_KEYS:-(.+)\}", api["environment"]["API_KEYS"])
    assert default
    assert len(default[1]) >= 16


# --- evaluated by tofu -------------------------------------------------------------------------

_SASL_SSL = {
    "protocol": "SASL_SSL",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_secret": {"name": "kafka-user"},
    "tls_secret": {"name": "kafka-tls", "cert_key": "tls.crt", "key_key": "tls.key"},
}
_INGRESS = {
    "enabled": True,
    "host": "t.example.com",
    "trusted_proxies": ["10.42.0.0/16", "fd00::/8"],
    "proxy_hops": 2,
}


@pytest.mark.timeout(900)  # may build tofu on first use
@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"api_env": {"API_PORT": "9000"}}, "api_env must not set"),
        ({"api_env": {"API_TRUSTED_PROXY_HOPS": "3"}}, "api_env must not set"),
        ({"api_env": {"API_MAX_CONCURRENT_REQUESTS": "9999"}}, "api_env must not set"),
        ({"forwarder_env": {"FORWARDER_GROUP_INSTANCE_ID": "a"}}, "forwarder_env must not set"),
        ({"forwarder_env": {"FORWARDER_SHUTDOWN_TIMEOUT_S": "90"}}, "forwarder_env must not"),
        ({"forwarder_env": {"FORWARDER_LINGER_MS": "20"}}, None),
        ({"service_type": "ExternalName"}, "ClusterIP, NodePort or LoadBalancer"),
        ({"service_type": "LoadBalancer"}, None),
        ({"kafka_security": _SASL_SSL}, None),
        ({"kafka_security": {"protocol": "SSL"}}, None),
        ({"kafka_security": {"protocol": "TLS"}}, "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
        ({"kafka_security": {"protocol": "SASL_SSL"}}, "need sasl_mechanism and sasl_secret"),
        (
            {"kafka_security": {**_SASL_SSL, "protocol": "SSL"}},
            "need sasl_mechanism and sasl_secret",
        ),
        ({"kafka_security": {**_SASL_SSL, "sasl_mechanism": "GSSAPI"}}, "SCRAM-SHA-512"),
        (
            {"kafka_security": {"protocol": "PLAINTEXT", "tls_secret": {"name": "t"}}},
            "tls_secret needs protocol SSL",
        ),
        (
            {"kafka_security": {"protocol": "SSL", "tls_secret": {"name": "t", "cert_key": "c"}}},
            "cert_key and key_key go together",
        ),
        ({"ingress": _INGRESS}, None),
        ({"ingress": {"enabled": True, "host": "t.example.com"}}, "trusted_proxies"),
        ({"ingress": {**_INGRESS, "trusted_proxies": ["proxy.local"]}}, "IP addresses or CIDRs"),
        ({"ingress": {**_INGRESS, "proxy_hops": 0}}, "whole number >= 1"),
        ({"network_policy": {"kafka": [{"cidr": "10.0.0.0/8"}]}}, None),
        (
            {"network_policy": {"kafka": [{"cidr": "10.0.0.0/8", "pod_labels": {"a": "b"}}]}},
            "either a cidr or namespace/pod labels",
        ),
        ({"network_policy": {"otlp": [{}]}}, "either a cidr or namespace/pod labels"),
        ({"api_drain_grace_s": 5}, "readiness window"),
        ({"api_drain_grace_s": 11}, None),
        ({"api_resources": {"memory_limit": "256Mi"}}, "memory_limit is below"),
        ({"api_resources": {"memory_limit": "1Gi"}}, None),
        ({"api_resources": {"memory_limit": "1G"}}, "whole number of Mi or Gi"),
        ({"api_limits": {"max_concurrent_requests": 0}}, "max_concurrent_requests >= 1"),
        (
            {"forwarder_scaling": {"partitions": 6, "lag_threshold": 5000}},
            "lag a healthy replica holds",
        ),
        (
            {"forwarder_scaling": {"partitions": 6, "scale_up_pods": 0}},
            "scale_*_pods >= 1",
        ),
    ],
)
def test_module_inputs_as_tofu_evaluates_them(
    variables_only: Path, override: dict[str, object], error: str | None, tmp_path: Path
) -> None:
    assert_plan(variables_only, tmp_path / "case.tfvars.json", {**VALID_INPUTS, **override}, error)


@pytest.mark.timeout(900)
def test_evaluated_secured_kafka_settings(variables_only: Path, tmp_path: Path) -> None:
    values = evaluate(variables_only, tmp_path, {**VALID_INPUTS, "kafka_security": _SASL_SSL})
    for service in ("api", "forwarder"):
        env = values[f"{service}_env"]
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["KAFKA_SSL_CA_FILE"] == "/etc/tracking/kafka-tls/ca.crt"
        assert env["KAFKA_SSL_CERT_FILE"] == "/etc/tracking/kafka-tls/client.crt"
        assert env["KAFKA_SSL_KEY_FILE"] == "/etc/tracking/kafka-tls/client.key"
        # Secrets are references only, never values in the plan.
        assert "KAFKA_SASL_PASSWORD" not in env
    assert values["kafka_secret_env"]["KAFKA_SASL_PASSWORD"] == {
        "secret": "kafka-user",
        "key": "password",
    }
    assert values["keda_sasl"] == "scram_sha512"
    assert values["keda_tls"] == "enable"
    refs = values["keda_secret_refs"]
    assert set(refs) == {"username", "password", "ca", "cert", "key"}
    assert refs["ca"] == {"secret": "kafka-tls", "key": "ca.crt"}
    assert refs["cert"] == {"secret": "kafka-tls", "key": "tls.crt"}
    assert values["keda_auth_name"] == "tracking-forwarder-kafka"


@pytest.mark.timeout(900)
def test_evaluated_plaintext_kafka_needs_no_trigger_authentication(
    variables_only: Path, tmp_path: Path
) -> None:
    values = evaluate(variables_only, tmp_path, VALID_INPUTS)
    assert values["api_env"]["KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert values["keda_sasl"] == "none"
    assert values["keda_tls"] == "disable"
    assert values["keda_secret_refs"] == {}
    assert values.get("keda_auth_name") is None  # tofu omits null outputs
    assert values["kafka_secret_env"] == {}


@pytest.mark.timeout(900)
def test_evaluated_forwarded_header_trust_follows_the_ingress(
    variables_only: Path, tmp_path: Path
) -> None:
    without = evaluate(variables_only, tmp_path, VALID_INPUTS)["api_env"]
    assert without["API_TRUST_FORWARDED_FOR"] == "false"
    assert "API_TRUSTED_PROXIES" not in without
    env = evaluate(variables_only, tmp_path, {**VALID_INPUTS, "ingress": _INGRESS})["api_env"]
    assert env["API_TRUST_FORWARDED_FOR"] == "true"
    assert env["API_TRUSTED_PROXIES"] == "10.42.0.0/16,fd00::/8"
    assert env["API_TRUSTED_PROXY_HOPS"] == "2"


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        # 192 MiB baseline + 64 MiB buffer + 64 x 4 MiB bodies
        ({}, "512Mi"),
        # 192 + 64 + 256 x 4
        ({"max_concurrent_requests": 256}, "1280Mi"),
        # 192 + 16 + 32 x 1
        (
            {
                "max_concurrent_requests": 32,
                "max_inflated_bytes": 1048576,
                "producer_buffer_bytes": 16777216,
            },
            "240Mi",
        ),
    ],
)
def test_evaluated_api_memory_limit(
    variables_only: Path, tmp_path: Path, limits: dict[str, int], expected: str
) -> None:
    values = evaluate(variables_only, tmp_path, {**VALID_INPUTS, "api_limits": limits})
    assert values["api_memory_limit"] == expected
    assert values["api_env"]["API_MAX_CONCURRENT_REQUESTS"] == str(
        limits.get("max_concurrent_requests", 64)
    )


@pytest.mark.timeout(900)
def test_evaluated_network_rules(variables_only: Path, tmp_path: Path) -> None:
    inputs = {
        **VALID_INPUTS,
        "kafka_bootstrap_servers": "kafka-0:9093,kafka-1:9093,kafka-2:9094",
        "collector_url": "https://collector.example.com/com.snowplowanalytics.snowplow/tp2",
        "otel": {"exporter_otlp_endpoint": "http://otel.observability:4318"},
        "network_policy": {"kafka": [{"namespace_labels": {"team": "kafka"}}]},
    }
    rules = evaluate(variables_only, tmp_path, inputs)["network_rules"]

    def ports(rule: dict[str, Any]) -> list[int]:
        return [p["port"] for p in rule["ports"]]

    api_egress = [ports(rule) for rule in rules["api"]["egress"]]
    assert api_egress == [[53, 53], [9093, 9094], [4318]]
    forwarder_egress = [ports(rule) for rule in rules["forwarder"]["egress"]]
    assert forwarder_egress == [[53, 53], [9093, 9094], [443], [4318]]
    assert rules["api"]["egress"][1]["peers"][0]["namespace_labels"] == {"team": "kafka"}
    assert [ports(rule) for rule in rules["api"]["ingress"]] == [[8080], [9464]]
    assert [ports(rule) for rule in rules["forwarder"]["ingress"]] == [[9465]]
    disabled = {**inputs, "network_policy": {"enabled": False}}
    assert evaluate(variables_only, tmp_path, disabled)["network_policies"] == {}


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({}, None),
        ({"replication_factor": 3, "min_insync_replicas": 3}, "below replication_factor"),
        ({"replication_factor": 1, "min_insync_replicas": 1}, "below replication_factor"),
        ({"replication_factor": 5, "min_insync_replicas": 3}, None),
        ({"min_insync_replicas": 0}, "whole number >= 1"),
    ],
)
def test_topic_inputs_as_tofu_evaluates_them(
    topics_variables: Path, override: dict[str, object], error: str | None, tmp_path: Path
) -> None:
    assert_plan(topics_variables, tmp_path / "topics.tfvars.json", override, error)
