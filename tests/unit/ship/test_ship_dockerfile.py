"""The Dockerfile, parsed with dockerfile-parse: targets, commands, user, health checks, deps.

Docker cannot run here, so the build itself is checked by replaying each target's builder
stage (its COPY and ``uv sync`` lines) against a scratch copy of the repository.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from scripts import check_terraform

REPO = Path(__file__).resolve().parents[3]

# target -> (builder stage, workspace member dir, distribution, admin/health port variable;
# None for a batch job, which has no server to check)
TARGETS: dict[str, tuple[str, str, str, str | None]] = {
    "api": ("build-api", "api_service", "api-service", "API_PORT"),
    "forwarder": (
        "build-forwarder",
        "forwarder_service",
        "forwarder-service",
        "FORWARDER_ADMIN_PORT",
    ),
    "collector": ("build-collector", "local_collector", "local-collector", "COLLECTOR_PORT"),
    "produce": ("build-produce", "producer", "tracking-producer", None),
}
SERVICES = sorted(target for target, (*_, port) in TARGETS.items() if port is not None)
WEB_FRAMEWORK = {"fastapi", "starlette", "uvicorn"}
DEV_TOOLS = {"pytest", "ruff", "mypy", "hypothesis", "import-linter", "coverage"}
SECRET_WORDS = ("KEY", "SECRET", "PASSWORD", "TOKEN", "CREDENTIAL")


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[dict[str, Any]] = field(default_factory=list)


def _stages() -> dict[str, Stage]:
    parser = DockerfileParser(path=str(REPO / "Dockerfile"))
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for item in parser.structure:
        if item["instruction"] == "FROM":
            words = item["value"].split()
            assert len(words) == 3, f"unnamed stage: {item['value']}"
            assert words[1].upper() == "AS"
            current = Stage(name=words[2], base=words[0])
            stages[current.name] = current
        elif current is not None and item["instruction"] != "COMMENT":
            current.instructions.append(item)
    return stages


STAGES = _stages()


def _effective(stage: str, instruction: str) -> list[str]:
    """Values of ``instruction`` in ``stage`` and the stages it is built FROM, base first."""
    chain: list[Stage] = []
    name: str | None = stage
    while name in STAGES:
        chain.append(STAGES[name])
        name = STAGES[name].base
    return [
        item["value"]
        for s in reversed(chain)
        for item in s.instructions
        if item["instruction"] == instruction
    ]


def _last(stage: str, instruction: str) -> str:
    values = _effective(stage, instruction)
    assert values, f"{stage} has no {instruction}"
    return values[-1]


def _member_scripts(member: str) -> dict[str, str]:
    project = tomllib.loads((REPO / member / "pyproject.toml").read_text())["project"]
    return dict(project["scripts"])


def _closure(lock: dict[str, Any], root: str) -> set[str]:
    """Every package ``root`` pulls in according to uv.lock (extras followed, markers ignored)."""
    packages = {p["name"]: p for p in lock["package"]}
    seen: set[str] = set()
    todo: list[tuple[str, tuple[str, ...]]] = [(root, ())]
    while todo:
        name, extras = todo.pop()
        package = packages[name]
        deps = list(package.get("dependencies", []))
        for extra in extras:
            deps += package.get("optional-dependencies", {}).get(extra, [])
        if name in seen and not extras:
            continue
        seen.add(name)
        todo.extend((dep["name"], tuple(dep.get("extra", ()))) for dep in deps)
    return seen


@pytest.fixture(scope="module")
def lock() -> dict[str, Any]:
    return tomllib.loads((REPO / "uv.lock").read_text())


def _uv_sync_lines(stage: str) -> list[str]:
    return [
        item["value"]
        for item in STAGES[stage].instructions
        if item["instruction"] == "RUN" and "uv sync" in item["value"]
    ]


def test_every_service_has_a_named_target_from_the_slim_base() -> None:
    assert set(TARGETS) <= set(STAGES)
    assert STAGES["builder"].base == "python:3.11-slim"
    for target in TARGETS:
        assert STAGES[target].base == "runtime", f"{target} must build on the runtime stage"
    assert STAGES["runtime"].base == "python:3.11-slim", "runtime must not inherit build tools"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_target_runs_its_members_console_script_in_exec_form(target: str) -> None:
    _, member, _, _ = TARGETS[target]
    entrypoint = json.loads(_last(target, "ENTRYPOINT"))
    assert isinstance(entrypoint, list), "exec form, so the service is PID 1 and gets SIGTERM"
    assert len(entrypoint) == 1
    assert entrypoint[0] in _member_scripts(member)
    assert not _effective(target, "CMD"), "extra arguments would change what the tests start"
    assert _last(target, "STOPSIGNAL") == "SIGTERM"


@pytest.mark.parametrize("target", ["api", "forwarder"])
def test_tests_start_the_same_command_the_image_runs(target: str) -> None:
    entrypoint = json.loads(_last(target, "ENTRYPOINT"))[0]
    starters = [*(REPO / "tests").rglob("*.py"), REPO / "scripts" / "run_pipeline.py"]
    users = [
        path
        for path in starters
        if "ship" not in path.parts and f'"{entrypoint}"' in path.read_text()
    ]
    assert users, f"no test or script starts {entrypoint}"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_target_runs_as_a_numeric_non_root_user(target: str) -> None:
    user = _last(target, "USER").split(":")[0]
    assert user.isdigit(), "numeric, so Kubernetes can enforce runAsNonRoot"
    assert int(user) != 0


@pytest.mark.parametrize("target", SERVICES)
def test_target_health_check_gets_healthz_with_python(target: str) -> None:
    _, _, _, port_variable = TARGETS[target]
    assert port_variable is not None
    check = _last(target, "HEALTHCHECK")
    command = json.loads(check.split("CMD", 1)[1])
    assert command[0] == "python", "the slim base has no curl"
    assert "/healthz" in command[-1]
    assert port_variable in command[-1]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_target_copies_only_its_own_venv(target: str) -> None:
    builder, _, _, _ = TARGETS[target]
    copies = [i["value"] for i in STAGES[target].instructions if i["instruction"] == "COPY"]
    assert copies == [f"--from={builder} /app/.venv /app/.venv"]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_builder_syncs_only_its_package_from_the_lock(target: str) -> None:
    builder, _, dist, _ = TARGETS[target]
    lines = _uv_sync_lines(builder)
    assert lines
    for line in lines:
        words = shlex.split(line)
        assert {"--frozen", "--no-dev", "--no-editable"} <= set(words)
        packages = [words[i + 1] for i, word in enumerate(words) if word == "--package"]
        assert packages == [dist]


def test_forwarder_closure_in_the_lock_has_no_web_framework(lock: dict[str, Any]) -> None:
    closure = _closure(lock, "forwarder-service")
    assert "tracking-common" in closure
    assert "aiokafka" in closure
    assert not closure & WEB_FRAMEWORK
    assert "api-service" not in closure


def test_the_producer_cli_is_a_job_without_a_health_check_or_web_framework(
    lock: dict[str, Any],
) -> None:
    assert not _effective("produce", "HEALTHCHECK")
    assert not _effective("produce", "EXPOSE")
    closure = _closure(lock, "tracking-producer")
    assert "aiokafka" in closure
    assert not closure & WEB_FRAMEWORK


@pytest.mark.parametrize(
    "dist", ["api-service", "forwarder-service", "local-collector", "tracking-producer"]
)
def test_no_service_closure_has_dev_tools(lock: dict[str, Any], dist: str) -> None:
    assert not _closure(lock, dist) & DEV_TOOLS


def test_no_secret_is_baked_in() -> None:
    for stage in STAGES.values():
        for item in stage.instructions:
            if item["instruction"] in {"ENV", "ARG"}:
                assert not any(word in item["value"].upper() for word in SECRET_WORDS), item


def test_dockerignore_allows_only_manifests_and_sources() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = [line[1:] for line in lines if line.startswith("!")]
    assert all(path.endswith(("pyproject.toml", "uv.lock", "/src/")) for path in allowed)


def _replay_builder(stage: str, context: Path, workdir: Path, venv: Path) -> None:
    """Run ``stage``'s COPY-from-context and ``uv sync`` lines the way the build would."""
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv is not None, "uv runs the tests, so it is on PATH or in $UV"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_LINK_MODE": "copy"}
    env.pop("VIRTUAL_ENV", None)
    chain = [STAGES[stage]]
    while chain[-1].base in STAGES:
        chain.append(STAGES[chain[-1].base])
    for item in (i for s in reversed(chain) for i in s.instructions):
        words = shlex.split(item["value"])
        if item["instruction"] == "COPY" and not words[0].startswith("--"):
            *sources, dest = words
            for source in sources:
                target = workdir / dest
                if (context / source).is_dir():
                    shutil.copytree(context / source, target, dirs_exist_ok=True)
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(context / source, target)
        elif item["instruction"] == "RUN" and "uv sync" in item["value"]:
            args = [w for w in words if not w.startswith("--mount=")]
            assert args[:2] == ["uv", "sync"]
            subprocess.run([uv, *args[1:]], cwd=workdir, env=env, check=True, capture_output=True)  # noqa: S603


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_replayed_build_installs_the_entrypoint_and_nothing_foreign(
    target: str, tmp_path: Path
) -> None:
    builder, _member, dist, _ = TARGETS[target]
    venv = tmp_path / "venv"
    _replay_builder(builder, REPO, tmp_path / "src", venv)
    entrypoint = json.loads(_last(target, "ENTRYPOINT"))[0]
    assert (venv / "bin" / entrypoint).is_file()
    site = next((venv / "lib").glob("python3*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert dist.replace("-", "_") in installed
    assert "tracking_common" in installed
    assert not installed & {d.replace("-", "_") for d in DEV_TOOLS}
    for pth in site.glob("*.pth"):
        assert str(tmp_path / "src") not in pth.read_text(), f"editable install: {pth.name}"
    if target != "api":
        assert not installed & WEB_FRAMEWORK
        assert "api_service" not in installed


@pytest.mark.timeout(300)
def test_hadolint_finds_nothing() -> None:
    assert check_terraform.hadolint() == []
