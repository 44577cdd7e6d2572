"""promtool's unit tests of the alert rules (ops/prometheus/alerts.test.yaml), run as written.

They evaluate the real expressions, ``for`` holds and annotations over synthetic series: the
alerts the live scenario (tests/integration/prometheus/) cannot bring about in a minute, and
when each alert stops.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from scripts import check_terraform

REPO = Path(__file__).resolve().parents[3]
RULES_DIR = REPO / "ops" / "prometheus"


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    # Debian's prometheus package ships promtool beside it; make test installs it.
    promtool = check_terraform.prometheus_binary().with_name("promtool")
    result = subprocess.run(  # noqa: S603 - our own files
        [str(promtool), "test", "rules", "alerts.test.yaml"],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_is_tested_live_or_by_promtool() -> None:
    rules = yaml.safe_load((RULES_DIR / "alerts.yaml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    unit = yaml.safe_load((RULES_DIR / "alerts.test.yaml").read_text())
    by_promtool = {
        case["alertname"] for test in unit["tests"] for case in test.get("alert_rule_test", [])
    }
    live = (REPO / "tests" / "integration" / "prometheus" / "test_prometheus_alerts.py").read_text()
    assert sorted(a for a in alerts if a not in by_promtool and f'"{a}"' not in live) == []


def test_every_runbook_url_is_absolute_from_the_external_label() -> None:
    rules = yaml.safe_load((RULES_DIR / "alerts.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            url = rule["annotations"]["runbook_url"]
            assert url.startswith("{{ $externalLabels.runbook_base_url }}/docs/operations.md#")
