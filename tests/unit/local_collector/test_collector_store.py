"""The event store: bounds, totals, filters, count-only and reset."""

from __future__ import annotations

from typing import Any

from local_collector.store import EventStore, GoodFilter


def entry(eid: str, **fields: Any) -> dict[str, Any]:
    base = {"eid": eid, "event_type": "pv", "app_id": None, "schema": None}
    return base | fields


def test_keeps_the_newest_entries_but_counts_every_one() -> None:
    store = EventStore(max_events=2)

    store.add_good([entry("a"), entry("b")])
    store.add_good([entry("c")])

    assert store.good_total == 3
    assert store.eids() == ["b", "c"]


def test_filters_then_offset_then_limit() -> None:
    store = EventStore(max_events=10)
    store.add_good(
        [
            entry("1", app_id="x"),
            entry("2", app_id="y", event_type="se"),
            entry("3", app_id="x", event_type="ue", schema="iglu:a/b/jsonschema/1-0-0"),
            entry("4", app_id="x"),
        ]
    )

    def eids(query: GoodFilter) -> list[str]:
        return [found["eid"] for found in store.good(query)]

    assert eids(GoodFilter(app_id="x")) == ["1", "3", "4"]
    assert eids(GoodFilter(event_type="se")) == ["2"]
    assert eids(GoodFilter(schema="iglu:a/b/jsonschema/1-0-0")) == ["3"]
    assert eids(GoodFilter(eid="4")) == ["4"]
    assert eids(GoodFilter(app_id="x", offset=1, limit=1)) == ["3"]
    assert eids(GoodFilter(limit=0)) == []


def test_count_only_keeps_totals_and_no_entries() -> None:
    store = EventStore(max_events=10, count_only=True)

    store.add_good([entry("a")])
    store.count_good(5)
    store.add_bad({"reason": "x"})

    assert (store.good_total, store.bad_total) == (6, 1)
    assert store.good() == []
    assert store.bad() == []


def test_reset_forgets_entries_and_totals() -> None:
    store = EventStore(max_events=10)
    store.add_good([entry("a")])
    store.add_bad({"reason": "x"})

    store.reset()

    assert (store.good_total, store.bad_total) == (0, 0)
    assert store.eids() == []
    assert store.bad() == []
