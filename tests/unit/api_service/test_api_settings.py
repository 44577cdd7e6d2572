"""Start-up configuration: bad values fail with the variable named, and the process exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_service.main import main
from api_service.settings import load_settings
from tracking_common.settings import SettingsError

GOOD_KEY = "settings-test-key-0123456789"


def test_defaults_with_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", f" {GOOD_KEY} , other-key-0123456789 ,")

    settings = load_settings()

    assert settings.keys == (GOOD_KEY, "other-key-0123456789")
    assert settings.api_port == 8080
    assert settings.api_admin_port == 9464
    assert settings.allowed_origins == frozenset({"*"})
    assert GOOD_KEY not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("API_KEYS", "", "API_KEYS"),
        ("API_KEYS", "short", "API_KEYS"),
        ("API_PORT", "http", "API_PORT"),
        ("API_MAX_JSON_DEPTH", "1", "API_MAX_JSON_DEPTH"),
        ("API_PRODUCE_TIMEOUT_S", "0", "API_PRODUCE_TIMEOUT_S"),
        ("KAFKA_BOOTSTRAP_SERVERS", "no-port", "KAFKA_BOOTSTRAP_SERVERS"),
        ("IGLU_SCHEMA_DIR", "/nonexistent/iglu", "IGLU_SCHEMA_DIR"),
        ("IGLU_RESOLVER_CONFIG", "/nonexistent/resolver.json", "IGLU_RESOLVER_CONFIG"),
        ("IGLU_RESOLVE_TIMEOUT_S", "0", "IGLU_RESOLVE_TIMEOUT_S"),
        ("API_TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal", "API_TRUSTED_PROXIES"),
        ("API_TRUSTED_PROXY_HOPS", "0", "API_TRUSTED_PROXY_HOPS"),
        ("API_NUID_COOKIE_NAME", "s p", "API_NUID_COOKIE_NAME"),
        ("API_NUID_COOKIE_NAME", "sp;domain=evil", "API_NUID_COOKIE_NAME"),
        ("API_NUID_COOKIE_DOMAINS", "shop.example, https://x", "API_NUID_COOKIE_DOMAINS"),
        ("API_NUID_COOKIE_MAX_AGE_DAYS", "0", "API_NUID_COOKIE_MAX_AGE_DAYS"),
        ("API_REDIRECT_DOMAINS", "shop.example/path", "API_REDIRECT_DOMAINS"),
    ],
)
def test_a_bad_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv("API_KEYS", GOOD_KEY)
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError, match=named):
        load_settings()


def test_a_bad_resolver_configuration_is_named_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "resolver.json"
    config.write_text('{"schema": "iglu:com.acme/x/jsonschema/1-0-0", "data": {}}')
    monkeypatch.setenv("API_KEYS", GOOD_KEY)
    monkeypatch.setenv("IGLU_RESOLVER_CONFIG", str(config))

    with pytest.raises(SettingsError, match=r"IGLU_RESOLVER_CONFIG.*resolver-config"):
        load_settings()


def test_auth_disabled_needs_no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("API_KEYS", raising=False)
    monkeypatch.setenv("API_AUTH_DISABLED", "true")

    assert load_settings().keys == ()


def test_main_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("API_KEYS", GOOD_KEY)
    monkeypatch.setenv("API_PORT", "-1")

    assert main() == 2
    assert "API_PORT" in capsys.readouterr().err
