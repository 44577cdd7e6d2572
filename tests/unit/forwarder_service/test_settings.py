"""The forwarder's settings: defaults, cross-checks and errors that name the variable."""

from __future__ import annotations

import pytest
from forwarder_service.settings import ForwarderSettings, load_settings
from tracking_common.settings import SettingsError


def test_defaults_are_valid_and_the_memory_bound_is_estimated() -> None:
    settings = ForwarderSettings()
    assert settings.forwarder_group_id == "tracking-forwarder"
    assert settings.forwarder_admin_port == 9465
    assert settings.memory_bound_mb > 90
    assert ForwarderSettings(forwarder_memory_bound_mb=300).memory_bound_mb == 300


def test_every_setting_is_described() -> None:
    undocumented = [
        name for name, field in ForwarderSettings.model_fields.items() if not field.description
    ]
    assert undocumented == []


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COLLECTOR_URL", "ftp://collector"),
        ("FORWARDER_STATUS_OVERRIDES", "404=maybe"),
        ("FORWARDER_MAX_IN_FLIGHT", "0"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert variable in str(raised.value)


def test_the_revoke_drain_must_fit_in_the_rebalance_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORWARDER_REVOKE_DRAIN_TIMEOUT_S", "40")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "FORWARDER_REVOKE_DRAIN_TIMEOUT_S" in str(raised.value)
