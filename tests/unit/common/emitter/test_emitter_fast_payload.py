"""The tracker's fast path renders exactly what the event model and ``to_payload`` render.

For generated input, valid or not, ``Tracker.track_*`` (fast path, falling back to the model)
is compared with building the event as the model (``event_adapter().validate_python``) and
rendering it with ``to_payload``: the same payload (``eid`` and ``dtm`` aside, unless an
event id is given), or both refuse with ``InvalidEventError``. The fast path writes JSON
bytes: they must decode to exactly that dict, keys in the same order, and be what
``encode_event`` would send for it.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from tracking_common.emitter import Tracker
from tracking_common.emitter.fast_fields import NeedsModel, page_fields
from tracking_common.emitter.fast_payload import PayloadBuilder
from tracking_common.emitter.payload import encode_event
from tracking_common.errors import InvalidEventError
from tracking_common.event_ids import EventIds
from tracking_common.events import (
    Platform,
    Resolution,
    SelfDescribingJson,
    Subject,
    event_adapter,
    utc_from_ms,
)
from tracking_common.protocol import Payload, to_payload

from tests.support.fuzzing import examples

NOW_S = 1_700_000_000.123


class RecordingEmitter:
    """An ``Emitter`` that keeps what it is given (``add_json``'s bytes decoded, and kept)."""

    def __init__(self) -> None:
        self.payloads: list[Mapping[str, str]] = []
        self.encoded: list[bytes] = []

    def add(self, payload: Mapping[str, str], *, tag: Any = None) -> None:
        self.payloads.append(payload)

    def add_json(self, data: bytes, *, tag: Any = None) -> None:
        self.encoded.append(data)
        self.payloads.append(orjson.loads(data))

    def flush_nowait(self) -> None:
        pass

    async def flush(self) -> None:
        pass

    async def close(self, timeout_s: float | None = None) -> None:
        pass


def mostly(
    valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """``valid`` eleven times in twelve, so whole events are often valid and get compared."""
    return st.integers(0, 11).flatmap(lambda n: invalid if n == 7 else valid)


def texts(limit: int) -> st.SearchStrategy[Any]:
    """Short strings, strings at ``limit`` characters (both sides of it), and non-strings."""
    return mostly(
        st.one_of(
            st.text(min_size=1, max_size=12),
            st.sampled_from([1, limit - 1, limit]).map(lambda n: "é" * n),
        ),
        st.one_of(st.sampled_from(["", "é" * (limit + 1)]), st.integers(-3, 3)),
    )


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


VALID_URIS = st.from_regex(
    r"\Aiglu:[a-z0-9_\-]{1,8}(\.[a-z0-9_\-]{1,8}){0,2}/[a-zA-Z0-9_\-]{1,8}/jsonschema/"
    r"[0-9]{1,2}-[0-9]-[0-9]\Z"
)
URIS = mostly(
    VALID_URIS,
    st.sampled_from(
        [
            "iglu:com.acme/x/jsonschema/1-0",
            "iglu:com.acme/x/jsonschema/1-0-0\n",
            "iglu:../x/jsonschema/1-0-0",
            "com.acme/x/jsonschema/1-0-0",
            "iglu:com.acme/" + "x" * 500 + "/jsonschema/1-0-0",
            "",
        ]
    ),
) | st.integers(0, 1)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
DATA = mostly(
    st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=4),
    st.sampled_from([[], "data", None]),
)


@st.composite
def entities(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["dict", "dict", "dict", "model", "extra_key"]))
    if kind == "model":
        return SelfDescribingJson.model_validate({"schema": draw(VALID_URIS), "data": {"n": 1}})
    if kind == "extra_key":
        return {"schema": draw(VALID_URIS), "data": {}, "extra": 1}
    return {"schema": draw(URIS), "data": draw(DATA)}


ENTITY_LISTS = st.one_of(
    st.none(),
    st.lists(entities(), max_size=3),
    st.lists(entities(), max_size=3),
    st.sampled_from([49, 50, 51]).map(
        lambda n: [
            {"schema": "iglu:com.acme/e/jsonschema/1-0-0", "data": {"i": i}} for i in range(n)
        ]
    ),
)
RESOLUTIONS = st.builds(Resolution, width=st.integers(0, 4000), height=st.integers(0, 4000))
SUBJECTS = maybe(
    st.builds(
        Subject,
        user_id=maybe(st.text(min_size=1, max_size=10)),
        domain_user_id=maybe(st.text(min_size=1, max_size=10)),
        session_index=maybe(st.integers(0, 2**31 - 1)),
        ip_address=maybe(st.sampled_from(["10.0.0.1", "::1"])),
        useragent=maybe(st.text(min_size=1, max_size=10)),
        timezone=maybe(st.just("Europe/London")),
        screen_resolution=maybe(RESOLUTIONS),
        viewport=maybe(RESOLUTIONS),
        color_depth=maybe(st.integers(0, 1024)),
    )
)
OFFSETS = maybe(
    mostly(
        st.integers(-(2**31), 2**31 - 1),
        st.sampled_from([-(2**31) - 1, 2**31, True, 2.0, "12"]),
    )
)
NUMBERS = maybe(
    mostly(
        st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**60), 2**60)),
        st.sampled_from([math.nan, math.inf, True, "1.5"]),
    )
)
EVENT_IDS = maybe(mostly(st.uuids(), st.sampled_from([str(uuid.UUID(int=7)), "not-a-uuid"])))
TIMESTAMPS = maybe(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from([None, UTC]),
    )
)


@st.composite
def trackers(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "namespace": draw(maybe(texts(128))),
        "app_id": draw(maybe(texts(255))),
        "platform": draw(mostly(st.sampled_from(Platform), st.sampled_from(["mob", "nope"]))),
        "tracker_version": draw(texts(100)),
        "subject": draw(SUBJECTS),
        "encode_base64": draw(st.booleans()),
    }


@st.composite
def options(draw: st.DrawFn) -> dict[str, Any]:
    chosen = {
        "entities": draw(ENTITY_LISTS),
        "subject": draw(SUBJECTS),
        "true_timestamp": draw(TIMESTAMPS),
        "event_id": draw(EVENT_IDS),
    }
    return {key: value for key, value in chosen.items() if value is not None}


def _merge(base: Subject | None, override: Subject | None) -> Subject | None:
    if base is None or override is None:
        return override or base
    fields = {name: getattr(override, name) for name in Subject.model_fields}
    return base.model_copy(update={k: v for k, v in fields.items() if v is not None})


def model_payload(
    setup: Mapping[str, Any], event_type: str, fields: Mapping[str, Any], opts: Mapping[str, Any]
) -> Payload:
    """The reference: the event model, validated, rendered by ``to_payload``."""
    document: dict[str, Any] = {
        "event_type": event_type,
        "namespace": setup["namespace"],
        "app_id": setup["app_id"],
        "platform": setup["platform"],
        "tracker_version": setup["tracker_version"],
        **{key: value for key, value in fields.items() if value is not None},
        "event_id": opts.get("event_id") or uuid.uuid4(),
        "created_at": utc_from_ms(int(NOW_S * 1000)),
    }
    subject = _merge(setup["subject"], opts.get("subject"))
    if subject is not None:
        document["subject"] = subject
    if opts.get("entities"):
        document["entities"] = list(opts["entities"])
    if opts.get("true_timestamp") is not None:
        document["true_timestamp"] = opts["true_timestamp"]
    event = event_adapter().validate_python(document)
    return to_payload(event, base64_encode=setup["encode_base64"])


def assert_same(
    setup: Mapping[str, Any],
    event_type: str,
    fields: Mapping[str, Any],
    opts: Mapping[str, Any],
    track: Any,
) -> None:
    recorder = RecordingEmitter()
    tracker = Tracker(recorder, clock=lambda: NOW_S, **setup)
    try:
        expected = model_payload(setup, event_type, fields, opts)
    except ValidationError:
        event("refused by both")
        with pytest.raises(InvalidEventError):
            track(tracker)
        assert recorder.payloads == []
        return
    event("accepted by both")
    eid = track(tracker)
    (actual,) = recorder.payloads
    assert actual["eid"] == eid
    assert uuid.UUID(eid).version == 4 or "event_id" in opts
    ignored = {"dtm"} if "event_id" in opts else {"dtm", "eid"}
    assert {k: v for k, v in actual.items() if k not in ignored} == {
        k: v for k, v in expected.items() if k not in ignored
    }
    assert list(actual) == list(expected)  # same order, so the same bytes on the wire
    assert actual["dtm"] == str(int(NOW_S * 1000))
    for data in recorder.encoded:  # the fast path's bytes are what the dict would be sent as
        assert data[1:] == encode_event(orjson.loads(data))[0]
    if recorder.encoded:
        event("fast path")


FAST = settings(
    max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@FAST
@given(trackers(), texts(4096), maybe(texts(2000)), maybe(texts(4096)), options())
def test_page_view(setup: dict[str, Any], url: Any, title: Any, referrer: Any, opts: Any) -> None:
    page = {
        key: v
        for key, v in {"url": url, "title": title, "referrer": referrer}.items()
        if v is not None
    }
    assert_same(
        setup,
        "page_view",
        {"page": page},
        opts,
        lambda t: t.track_page_view(url, title=title, referrer=referrer, **opts),
    )


@FAST
@given(trackers(), texts(4096), st.lists(OFFSETS, min_size=4, max_size=4), options())
def test_page_ping(setup: dict[str, Any], url: Any, offsets: list[Any], opts: Any) -> None:
    names = ("min_x_offset", "max_x_offset", "min_y_offset", "max_y_offset")
    by_name = dict(zip(names, offsets, strict=True))
    assert_same(
        setup,
        "page_ping",
        {"page": {"url": url}, **by_name},
        opts,
        lambda t: t.track_page_ping(url, **by_name, **opts),
    )


@FAST
@given(
    trackers(), texts(1000), texts(1000), maybe(texts(4096)), maybe(texts(1000)), NUMBERS, options()
)
def test_struct_event(  # noqa: PLR0917 - one argument per generated field
    setup: dict[str, Any],
    category: Any,
    action: Any,
    label: Any,
    property_: Any,
    value: Any,
    opts: Any,
) -> None:
    fields = {
        "category": category,
        "action": action,
        "label": label,
        "property": property_,
        "value": value,
    }
    assert_same(
        setup,
        "struct",
        fields,
        opts,
        lambda t: t.track_struct_event(
            category, action, label=label, property_=property_, value=value, **opts
        ),
    )


@FAST
@given(trackers(), entities(), options())
def test_self_describing(setup: dict[str, Any], event: Any, opts: Any) -> None:
    assert_same(
        setup,
        "self_describing",
        {"event": event},
        opts,
        lambda t: t.track_self_describing_event(event, **opts),
    )


def builder(**overrides: Any) -> PayloadBuilder:
    setup: dict[str, Any] = {
        "namespace": "ns",
        "app_id": "app",
        "platform": Platform.SERVER,
        "tracker_version": "py-1",
        "subject": Subject(user_id="u1"),
        "encode_base64": False,
        "clock": lambda: NOW_S,
    }
    setup.update(overrides)
    return PayloadBuilder(**setup)


def test_the_usual_input_takes_the_fast_path() -> None:
    entity = {"schema": "iglu:com.acme/user/jsonschema/1-0-0", "data": {"id": 1}}
    data, eid = builder().build(
        b"pv", page_fields("https://example.com/", "Home", None), {}, {"entities": [entity]}
    )
    payload = orjson.loads(b"{" + data)  # written less its opening brace
    assert payload["eid"] == eid
    assert payload["url"] == "https://example.com/"
    assert payload["uid"] == "u1"
    assert payload["co"].startswith('{"schema":"iglu:com.snowplowanalytics.snowplow/contexts/')


@pytest.mark.parametrize(
    ("overrides", "options"),
    [
        ({"namespace": "n" * 129}, {}),
        ({"platform": "srv"}, {}),
        ({}, {"event_id": str(uuid.uuid4())}),
        ({}, {"entities": [{"schema": "iglu:bad", "data": {}}]}),
        ({}, {"entities": [{"schema": "iglu:com.a/b/jsonschema/1-0-0", "data": {}}] * 51}),
        ({}, {"true_timestamp": 1_700_000_000_000}),
        (
            {},
            {"entities": [{"schema": "iglu:com.a/" + "b" * 500 + "/jsonschema/1-0-0", "data": {}}]},
        ),
    ],
)
def test_input_it_does_not_vouch_for_goes_to_the_model(
    overrides: dict[str, Any], options: dict[str, Any]
) -> None:
    with pytest.raises(NeedsModel):
        builder(**overrides).build(b"pv", {"url": "https://e.x/"}, {}, options)


def test_refusals_name_the_field() -> None:
    tracker = Tracker(RecordingEmitter())
    with pytest.raises(InvalidEventError) as caught:
        tracker.track_page_view("https://e.x/", title="t" * 2001)
    assert [issue.path for issue in caught.value.issues] == ["/page/title"]
    with pytest.raises(InvalidEventError) as caught:
        tracker.track_struct_event("c", "a", entities=[{"schema": "nope", "data": {}}])
    assert caught.value.issues[0].path.startswith("/entities/0/schema")


def test_event_ids_are_random_version_4_uuids() -> None:
    ids = EventIds()
    seen = {ids() for _ in range(2_000)}
    assert len(seen) == 2_000
    for text in list(seen)[:200]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


class DictOnlyEmitter(RecordingEmitter):
    """An ``Emitter`` with ``add`` alone (as ``KafkaEmitter``)."""

    add_json = None  # type: ignore[assignment]


def test_an_emitter_without_add_json_gets_the_payload_decoded() -> None:
    both, dict_only = RecordingEmitter(), DictOnlyEmitter()
    tracker = Tracker([both, dict_only], namespace="ns", clock=lambda: NOW_S)
    eid = tracker.track_struct_event("shop", "add", value=2.5)
    assert dict_only.encoded == []
    assert dict_only.payloads == both.payloads
    assert both.payloads[0]["eid"] == eid
    assert both.payloads[0]["se_va"] == "2.5"


def test_a_checked_schema_is_remembered_and_a_bad_one_is_refused_every_time() -> None:
    good = {"schema": "iglu:com.acme/remembered/jsonschema/1-0-0", "data": {}}
    bad = {"schema": "iglu:com.acme/remembered/jsonschema/1-0", "data": {}}
    for _ in range(2):
        builder().build(b"pv", {"url": "https://e.x/"}, {}, {"entities": [good]})
        with pytest.raises(NeedsModel):
            builder().build(b"pv", {"url": "https://e.x/"}, {}, {"entities": [good, bad]})


def test_a_forked_child_never_hands_out_its_parents_ids() -> None:
    ids = EventIds()
    ids()  # a chunk is being handed out
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, " ".join(ids() for _ in range(300)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = set(pipe.read().decode().split())
    os.waitpid(pid, 0)
    assert len(child) == 300
    assert child.isdisjoint(ids() for _ in range(300))


def test_an_unknown_option_is_refused_by_name() -> None:
    recorder = RecordingEmitter()
    tracker = Tracker(recorder)
    with pytest.raises(TypeError, match="unexpected options: colour"):
        tracker.track_page_view("https://e.x/", colour="red")
    with pytest.raises(TypeError, match="unexpected options: colour, size"):
        tracker.track_struct_event("c", "a", size=1, colour="red", entities=[])
    assert recorder.payloads == []
