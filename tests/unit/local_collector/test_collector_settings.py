"""Settings: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import pytest
from local_collector.settings import load_settings
from tracking_common.settings import SettingsError


def test_defaults() -> None:
    settings = load_settings({})
    assert (settings.collector_host, settings.collector_port) == ("127.0.0.1", 9090)
    assert settings.collector_max_events == 100_000
    assert not settings.collector_count_only
    assert settings.log_level == "INFO"


def test_values_are_read_from_the_environment_names() -> None:
    settings = load_settings(
        {
            "COLLECTOR_HOST": "localhost",
            "COLLECTOR_PORT": "9191",
            "COLLECTOR_MAX_EVENTS": "5",
            "COLLECTOR_COUNT_ONLY": "true",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings.collector_port == 9191
    assert settings.collector_max_events == 5
    assert settings.collector_count_only
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COLLECTOR_PORT", "http"),
        ("COLLECTOR_PORT", "70000"),
        ("COLLECTOR_MAX_EVENTS", "-1"),
        ("COLLECTOR_COUNT_ONLY", "perhaps"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings({variable: value})
