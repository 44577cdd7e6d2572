"""Iglu schema keys and repositories: bundled look-up, directories, errors, caching."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from tracking_common.iglu import (
    BUNDLED_SCHEMA_DIR,
    CONTEXTS_SCHEMA,
    IGLU_URI_PATTERN,
    PAYLOAD_DATA_SCHEMA,
    UNSTRUCT_EVENT_SCHEMA,
    IgluRepository,
    SchemaKey,
    SchemaNotFoundError,
    SchemaValidationError,
    bundled_repository,
)

CLICK = SchemaKey.parse("iglu:com.acme/button_click/jsonschema/1-0-0")
CLICK_SCHEMA: dict[str, Any] = {
    "$schema": "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
    "self": {
        "vendor": "com.acme",
        "name": "button_click",
        "format": "jsonschema",
        "version": "1-0-0",
    },
    "type": "object",
    "properties": {
        "button_id": {"type": "string", "maxLength": 10},
        "position": {"type": "object", "properties": {"x": {"type": "integer"}}},
    },
    "required": ["button_id"],
    "additionalProperties": False,
}


def _write(directory: Path, key: SchemaKey, schema: Any) -> Path:
    path = directory / key.relative_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(schema))
    return path


def test_schema_keys_parse_and_render() -> None:
    key = SchemaKey.parse("iglu:com.acme-co.x/my_event/jsonschema/12-0-3")

    assert (key.vendor, key.name, key.format, key.version) == (
        "com.acme-co.x",
        "my_event",
        "jsonschema",
        "12-0-3",
    )
    assert key.uri == "iglu:com.acme-co.x/my_event/jsonschema/12-0-3"
    assert key.relative_path == Path("com.acme-co.x/my_event/jsonschema/12-0-3")


@pytest.mark.parametrize(
    "uri",
    [
        "com.acme/x/jsonschema/1-0-0",
        "iglu:com.acme/x/jsonschema/1-0",
        "iglu:com.acme/x/1-0-0",
        "iglu:com.acme/x/jsonschema/1-0-0/extra",
        "iglu:com.acme/../jsonschema/1-0-0",
        "iglu:../x/jsonschema/1-0-0",
        "iglu:./x/jsonschema/1-0-0",
        "iglu:com..acme/x/jsonschema/1-0-0",
        "iglu:.acme/x/jsonschema/1-0-0",
        "iglu:com.acme/x/jsonschema/1-0-0\n",
        "",
    ],
)
def test_malformed_uris_are_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="not an Iglu schema URI"):
        SchemaKey.parse(uri)
    # The event model's pattern (what /v1 accepts) refuses the same URIs.
    assert re.fullmatch(IGLU_URI_PATTERN.strip("^$"), uri) is None


def test_the_bundled_repository_has_the_snowplow_schemas_and_is_shared() -> None:
    repository = bundled_repository()

    assert repository is bundled_repository()
    assert repository.directories == (BUNDLED_SCHEMA_DIR,)
    for key in (PAYLOAD_DATA_SCHEMA, CONTEXTS_SCHEMA, UNSTRUCT_EVENT_SCHEMA):
        assert repository.has(key), key.uri
    repository.validate(PAYLOAD_DATA_SCHEMA, [{"e": "pv", "p": "web", "tv": "t"}])
    repository.validate(
        CONTEXTS_SCHEMA, [{"schema": "iglu:com.acme/x/jsonschema/1-0-0", "data": {"a": 1}}]
    )


@pytest.mark.parametrize(
    "uri",
    [
        "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0",
        "iglu:com.snowplowanalytics.snowplow/uri_redirect/jsonschema/1-0-0",
        "iglu:com.snowplowanalytics.snowplow/client_session/jsonschema/1-0-2",
        "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1",
        "iglu:com.snowplowanalytics.snowplow/mobile_context/jsonschema/1-0-3",
    ],
)
def test_iglu_central_is_bundled_for_the_standard_tracker_schemas(uri: str) -> None:
    assert bundled_repository().has(SchemaKey.parse(uri))
    assert (BUNDLED_SCHEMA_DIR / "LICENSE").is_file()


def test_the_bundled_web_page_entity_is_checked() -> None:
    web_page = SchemaKey.parse("iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0")

    bundled_repository().validate(web_page, {"id": "6f5c3c8e-6a6b-4b4e-9c62-6b8e0f0f2d6d"})
    with pytest.raises(SchemaValidationError):
        bundled_repository().validate(web_page, {"id": "not-a-uuid"})


def test_payload_data_describes_the_data_array() -> None:
    repository = bundled_repository()

    with pytest.raises(SchemaValidationError):
        repository.validate(PAYLOAD_DATA_SCHEMA, {"e": "pv", "p": "web", "tv": "t"})
    with pytest.raises(SchemaValidationError):
        repository.validate(PAYLOAD_DATA_SCHEMA, [])
    with pytest.raises(SchemaValidationError) as caught:
        repository.validate(PAYLOAD_DATA_SCHEMA, [{"e": "pv", "p": "web", "tv": "t", "vid": 1}])
    assert caught.value.uri == PAYLOAD_DATA_SCHEMA.uri


def test_a_directory_in_iglu_layout_serves_its_schemas(tmp_path: Path) -> None:
    _write(tmp_path, CLICK, CLICK_SCHEMA)
    repository = IgluRepository(tmp_path)

    assert repository.has(CLICK)
    repository.validate(CLICK, {"button_id": "signup", "position": {"x": 3}})


def test_an_unknown_schema_raises_not_found_with_its_key(tmp_path: Path) -> None:
    repository = IgluRepository(tmp_path)

    assert not repository.has(CLICK)
    with pytest.raises(SchemaNotFoundError) as caught:
        repository.validate(CLICK, {})
    assert caught.value.key == CLICK
    assert CLICK.uri in str(caught.value)


def test_invalid_data_raises_with_a_path_into_the_instance(tmp_path: Path) -> None:
    _write(tmp_path, CLICK, CLICK_SCHEMA)
    repository = IgluRepository(tmp_path)

    with pytest.raises(SchemaValidationError) as caught:
        repository.validate(CLICK, {"button_id": "signup", "position": {"x": "left"}})
    assert caught.value.path == "position/x"
    assert caught.value.uri == CLICK.uri
    assert "integer" in caught.value.detail

    with pytest.raises(SchemaValidationError) as too_long:
        repository.validate(CLICK, {"button_id": "x" * 11})
    assert too_long.value.path == "button_id"

    with pytest.raises(SchemaValidationError) as missing:
        repository.validate(CLICK, {})
    assert missing.value.path == ""


def test_messages_name_the_place_and_are_cut_when_they_quote_a_long_value(
    tmp_path: Path,
) -> None:
    _write(tmp_path, CLICK, CLICK_SCHEMA)
    repository = IgluRepository(tmp_path)

    with pytest.raises(SchemaValidationError) as caught:
        repository.validate(CLICK, {"button_id": "signup", "position": {"x": "left"}})
    assert caught.value.detail.startswith("data.position.x: ")
    assert "<" not in caught.value.detail  # plain values, no Python reprs

    with pytest.raises(SchemaValidationError) as long_value:
        repository.validate(CLICK, {"button_id": "x" * 5000})
    assert len(long_value.value.detail) < 400


@pytest.mark.parametrize(
    ("fmt", "value", "valid"),
    [
        ("date-time", "2023-11-14T22:13:20Z", True),
        ("date-time", "yesterday", False),
        ("date", "2023-11-14", True),
        ("date", "2023-13-45", False),  # checked as Enrich does; fastjsonschema let it through
        ("uri", "https://shop.example/", True),
        ("uri", "not a uri", False),
        ("email", "nope", False),
        ("uuid", "not-a-uuid", True),  # not a draft-04 format (web_page adds a pattern)
    ],
)
def test_formats_are_checked_deliberately(
    tmp_path: Path, fmt: str, value: str, valid: bool
) -> None:
    schema = {**CLICK_SCHEMA, "properties": {"button_id": {"type": "string", "format": fmt}}}
    _write(tmp_path, CLICK, schema)
    repository = IgluRepository(tmp_path)

    if valid:
        repository.validate(CLICK, {"button_id": value})
    else:
        with pytest.raises(SchemaValidationError):
            repository.validate(CLICK, {"button_id": value})


def test_the_first_directory_holding_a_schema_wins(tmp_path: Path) -> None:
    strict = {**CLICK_SCHEMA, "properties": {"button_id": {"type": "string", "maxLength": 1}}}
    _write(tmp_path / "first", CLICK, strict)
    _write(tmp_path / "second", CLICK, CLICK_SCHEMA)
    repository = IgluRepository(tmp_path / "first", tmp_path / "second", BUNDLED_SCHEMA_DIR)

    with pytest.raises(SchemaValidationError):
        repository.validate(CLICK, {"button_id": "signup"})
    assert repository.has(PAYLOAD_DATA_SCHEMA)


def test_validators_and_misses_are_cached(tmp_path: Path) -> None:
    path = _write(tmp_path, CLICK, CLICK_SCHEMA)
    repository = IgluRepository(tmp_path)
    repository.validate(CLICK, {"button_id": "a"})
    missing = SchemaKey.parse("iglu:com.acme/later/jsonschema/1-0-0")
    assert not repository.has(missing)

    # Once compiled, the file is not read again; a miss stays a miss.
    path.unlink()
    _write(tmp_path, missing, CLICK_SCHEMA)

    repository.validate(CLICK, {"button_id": "a"})
    assert not repository.has(missing)
    assert IgluRepository(tmp_path).has(missing)


def test_a_schema_file_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, CLICK, [1, 2])

    with pytest.raises(ValueError, match="not a JSON object"):
        IgluRepository(tmp_path).has(CLICK)


def test_a_key_cannot_reach_outside_the_directory(tmp_path: Path) -> None:
    inside = tmp_path / "iglu"
    inside.mkdir()
    outside = tmp_path / "x" / "jsonschema" / "1-0-0"
    outside.parent.mkdir(parents=True)
    outside.write_bytes(orjson.dumps(CLICK_SCHEMA))

    with pytest.raises(ValueError, match="not an Iglu schema URI"):
        IgluRepository(inside).validate(SchemaKey.parse("iglu:../x/jsonschema/1-0-0"), {})


def test_remembered_misses_are_bounded(tmp_path: Path) -> None:
    repository = IgluRepository(tmp_path, max_cached_misses=10)

    for n in range(25):
        assert not repository.has(SchemaKey.parse(f"iglu:com.acme/made_up_{n}/jsonschema/1-0-0"))

    assert 0 < repository.cached_misses <= 10


@pytest.mark.parametrize(
    "uri",
    [
        f"iglu:{'v' * 300}/ctx/jsonschema/1-0-0",
        f"iglu:com.acme/{'n' * 300}/jsonschema/1-0-0",
        f"iglu:com.acme/ctx/{'f' * 300}/1-0-0",
    ],
)
def test_a_key_too_long_for_a_file_name_is_unknown(tmp_path: Path, uri: str) -> None:
    repository = IgluRepository(tmp_path)

    with pytest.raises(SchemaNotFoundError):
        repository.validate(SchemaKey.parse(uri), {})
