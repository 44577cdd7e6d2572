"""Helpers of the terraform/ checks: HCL parsing (python-hcl2) and tofu runs without providers.

A module's ``variables.tf``, ``locals.tf`` and ``checks.tf`` reference no provider resource
(``terraform_data`` is built in), so tofu plans and applies them in a scratch directory: the
variable validations, the cross-input preconditions and the computed values are evaluated as
tofu evaluates them, with no provider binary.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import hcl2
from api_service.settings import ApiSettings
from forwarder_service.settings import ForwarderSettings
from local_collector.settings import CollectorSettings
from pydantic_settings import BaseSettings

from scripts import check_terraform

REPO = Path(__file__).resolve().parents[3]
TERRAFORM = REPO / "terraform"
MODULE = TERRAFORM / "modules" / "tracking_pipeline"
TOPICS_MODULE = TERRAFORM / "modules" / "kafka_topics"
_OPTIONS = hcl2.SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True, preserve_heredocs=False
)

# Settings of the deployment contract (docs/deploy.md) that the module and compose.yaml pass:
# the Kafka security settings both services read, and the API's forwarded-header trust and
# concurrency bound. They count as known even where a settings class does not declare them yet.
CONTRACT_ENV: dict[str, frozenset[str]] = {
    "api": frozenset(
        {
            "API_TRUSTED_PROXIES",
            "API_TRUSTED_PROXY_HOPS",
            "API_MAX_CONCURRENT_REQUESTS",
        }
    ),
    "forwarder": frozenset(),
    "collector": frozenset(),
}
KAFKA_SECURITY_ENV = frozenset(
    {
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SSL_CA_FILE",
        "KAFKA_SSL_CERT_FILE",
        "KAFKA_SSL_KEY_FILE",
    }
)

VALID_INPUTS: dict[str, object] = {
    "api_image": "registry.example.com/tracking-api:0.1.0",
    "forwarder_image": "registry.example.com/tracking-forwarder@sha256:" + "0" * 64,
    "kafka_bootstrap_servers": "kafka-0:9092,kafka-1:9092",
    "collector_url": "https://collector.example.com",
    "api_keys_secret": {"name": "tracking-api-keys"},
    "forwarder_scaling": {"partitions": 6, "max_replicas": 6},
}


def known_env(service: str) -> set[str]:
    """Variables ``service`` reads: the fields of its settings class, and the contract's."""
    settings: dict[str, type[BaseSettings]] = {
        "api": ApiSettings,
        "forwarder": ForwarderSettings,
        "collector": CollectorSettings,
    }
    names = {name.upper() for name in settings[service].model_fields}
    kafka = KAFKA_SECURITY_ENV if service != "collector" else frozenset()
    return names | CONTRACT_ENV[service] | kafka


def is_known(name: str, service: str) -> bool:
    """``name`` is a setting ``service`` reads (``OTEL_*`` are the SDK's own)."""
    return name.startswith("OTEL_") or name in known_env(service)


def load(path: Path) -> dict[str, Any]:
    """One ``.tf`` file, parsed."""
    with path.open() as handle:
        return dict(hcl2.load(handle, serialization_options=_OPTIONS))


def blocks(kind: str, module: Path = MODULE) -> dict[str, Any]:
    """``resource``/``variable``/``locals`` blocks of ``module``, by ``type.name`` or name."""
    found: dict[str, Any] = {}
    for path in module.glob("*.tf"):
        for block in load(path).get(kind, []):
            if kind == "resource":
                for rtype, named in block.items():
                    found.update({f"{rtype}.{name}": body for name, body in named.items()})
            else:
                found.update(block)
    return found


def preconditions(resource: dict[str, Any]) -> list[str]:
    """The conditions of a resource's lifecycle preconditions, as text."""
    lifecycle = resource.get("lifecycle", [{}])[0]
    return [str(item["condition"]) for item in lifecycle.get("precondition", [])]


def env_keys(expression: object) -> set[str]:
    """Environment names in an HCL map expression (a dict, or its text)."""
    if isinstance(expression, dict):
        return set(expression)
    return set(re.findall(r"\b([A-Z][A-Z0-9_]+)\b", str(expression)))


def init_scratch(module: Path, names: tuple[str, ...], workdir: Path, probe: str = "") -> Path:
    """``names`` of ``module`` (and a probe of outputs) copied to ``workdir`` and initialised."""
    tofu = check_terraform.tofu_binary()
    for name in names:
        (workdir / name).write_text((module / name).read_text())
    if probe:
        (workdir / "probe.tf").write_text(probe)
    subprocess.run(  # noqa: S603 - our own binary
        [str(tofu), "init", "-input=false", "-no-color"], cwd=workdir,
        env=check_terraform.quiet_env(), check=True, capture_output=True,
    )  # fmt: skip
    return workdir


def plan(workdir: Path, tfvars: Path, inputs: dict[str, object]) -> tuple[int, str]:
    """``tofu plan`` of ``workdir`` with ``inputs``: the exit code and the output on one line."""
    tfvars.write_text(json.dumps(inputs))
    result = subprocess.run(  # noqa: S603 - our own binary
        [
            str(check_terraform.tofu_binary()), "plan", "-input=false", "-no-color",
            "-lock=false", f"-var-file={tfvars}",
        ],
        cwd=workdir, env=check_terraform.quiet_env(), capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def assert_plan(workdir: Path, tfvars: Path, inputs: dict[str, object], error: str | None) -> None:
    """``tofu plan`` accepts ``inputs`` (``error`` None), or refuses them saying ``error``."""
    returncode, output = plan(workdir, tfvars, inputs)
    if error is None:
        assert returncode == 0, output
    else:
        assert returncode != 0
        assert error in output


def evaluate(workdir: Path, tmp_path: Path, inputs: dict[str, object]) -> Any:
    """The probe's outputs after ``tofu apply`` of ``workdir`` with ``inputs`` (no resources)."""
    tfvars = tmp_path / "case.tfvars.json"
    tfvars.write_text(json.dumps(inputs))
    tofu, env = str(check_terraform.tofu_binary()), check_terraform.quiet_env()
    state = tmp_path / "probe.tfstate"
    subprocess.run(  # noqa: S603 - our own binary
        [tofu, "apply", "-input=false", "-no-color", "-auto-approve", "-lock=false",
         f"-state={state}", f"-var-file={tfvars}"],
        cwd=workdir, env=env, check=True, capture_output=True,
    )  # fmt: skip
    result = subprocess.run(  # noqa: S603 - our own binary
        [tofu, "output", "-json", f"-state={state}"],
        cwd=workdir, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return {name: value["value"] for name, value in json.loads(result.stdout).items()}
