"""Fixtures of the terraform/ checks: modules initialised without providers."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import check_terraform
from tests.unit.ship.terraform_support import MODULE, TOPICS_MODULE, init_scratch

# Every value the tests read from the module's locals.
_PROBE = """
output "api_env" { value = local.api_env }
output "forwarder_env" { value = local.forwarder_env }
output "forwarder_grace_s" { value = local.forwarder_grace_s }
output "api_grace_s" { value = local.api_grace_s }
output "forwarder_max" { value = local.forwarder_max }
output "api_memory_limit" { value = local.api_memory_limit }
output "kafka_secret_env" { value = local.kafka_secret_env }
output "kafka_tls_files" { value = local.kafka_tls_files }
output "keda_sasl" { value = local.keda_sasl }
output "keda_tls" { value = local.keda_tls }
output "keda_secret_refs" { value = local.keda_secret_refs }
output "keda_auth_name" { value = local.keda_auth_name }
output "network_rules" { value = local.network_rules }
output "network_policies" {
  value = { for name, rules in local.network_rules : name => rules if var.network_policy.enabled }
}
"""


def _tofu_or_skip() -> None:
    try:
        check_terraform.tofu_binary()
    except check_terraform.ToolUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def variables_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pipeline module's variables, locals and checks, initialised: no provider needed."""
    _tofu_or_skip()
    return init_scratch(
        MODULE,
        ("variables.tf", "locals.tf", "checks.tf"),
        tmp_path_factory.mktemp("variables"),
        _PROBE,
    )


@pytest.fixture(scope="session")
def topics_variables(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The topics module's variables and checks, initialised without the Kafka provider."""
    _tofu_or_skip()
    return init_scratch(
        TOPICS_MODULE, ("variables.tf", "checks.tf"), tmp_path_factory.mktemp("topics")
    )
