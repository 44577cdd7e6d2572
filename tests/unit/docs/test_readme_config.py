"""The README documents every variable the services read, as the code reads it."""

from __future__ import annotations

from scripts import config_table


def test_the_readme_configuration_table_is_generated_from_the_current_settings() -> None:
    assert config_table.main(["--check"]) == 0, (
        "README.md is stale: run `uv run python -m scripts.config_table`"
    )


def test_the_table_names_the_variables_the_issue_makes_part_of_the_interface() -> None:
    table = config_table.render()
    for variable in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "EVENTS_TOPIC",
        "BAD_EVENTS_TOPIC",
        "DLQ_TOPIC",
        "API_PORT",
        "API_KEYS",
        "IGLU_SCHEMA_DIR",
        "COLLECTOR_URL",
        "FORWARDER_GROUP_ID",
        "FORWARDER_ADMIN_PORT",
    ):
        assert f"| `{variable}` |" in table, variable
