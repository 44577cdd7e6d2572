"""Fault matching, consumption, expiry and ordering, on a fake clock."""

from __future__ import annotations

import pytest
from local_collector.faults import FaultInjector, FaultSpec
from pydantic import ValidationError


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def spec(**fields: object) -> FaultSpec:
    return FaultSpec.model_validate(fields)


def test_empty_injector_is_false_and_takes_nothing() -> None:
    injector = FaultInjector()
    assert not injector
    assert injector.take(1) is None


def test_count_is_consumed_per_matching_request() -> None:
    injector = FaultInjector()
    injector.add(spec(status=500, count=2))

    taken = [injector.take(1) for _ in range(3)]

    assert [action.status if action else None for action in taken] == [500, 500, None]
    assert not injector


def test_duration_expires_on_the_clock() -> None:
    clock = FakeClock()
    injector = FaultInjector(clock=clock)
    injector.add(spec(status=503, duration_s=2, retry_after="1"))

    clock.now += 1.9
    action = injector.take(1)
    assert action is not None
    assert (action.status, action.retry_after) == (503, "1")
    assert injector.active()[0]["remaining_s"] == pytest.approx(0.1)

    clock.now += 0.1
    assert injector.take(1) is None
    assert injector.active() == []


def test_fault_without_count_or_duration_lasts_until_cleared() -> None:
    clock = FakeClock()
    injector = FaultInjector(clock=clock)
    injector.add(spec(status=502))

    clock.now += 10_000
    assert all(injector.take(1) is not None for _ in range(50))

    injector.clear()
    assert injector.take(1) is None


def test_first_matching_fault_applies_and_only_it_is_consumed() -> None:
    injector = FaultInjector()
    injector.add(spec(status=413, max_events=10))
    injector.add(spec(status=500, count=1))

    small = injector.take(10)
    large = injector.take(11)

    assert small is not None
    assert small.status == 500
    assert large is not None
    assert large.status == 413
    assert [fault["status"] for fault in injector.active()] == [413]


def test_when_eid_matches_any_listed_eid() -> None:
    injector = FaultInjector()
    injector.add(spec(when_eid=["bad-1", "bad-2"]))

    assert injector.needs_eids
    assert injector.take(2, ["ok", "other"]) is None
    action = injector.take(2, ["ok", "bad-2"])
    assert action is not None
    assert action.status == 400
    assert action.stops_request


def test_max_events_defaults_to_413_and_delay_alone_does_not_stop_the_request() -> None:
    injector = FaultInjector()
    injector.add(spec(max_events=1))
    injector.add(spec(delay_s=0.5, count=1))

    delayed = injector.take(1)
    too_big = injector.take(2)

    assert delayed is not None
    assert (delayed.delay_s, delayed.stops_request) == (0.5, False)
    assert too_big is not None
    assert too_big.status == 413


def test_drop_connection_stops_the_request() -> None:
    injector = FaultInjector()
    described = injector.add(spec(drop_connection=True, count=1))

    action = injector.take(1)

    assert described == {"id": 1, "drop_connection": True, "count": 1, "remaining": 1}
    assert action is not None
    assert action.drop_connection
    assert action.stops_request


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"count": 3},
        {"status": 500, "unknown": 1},
        {"status": 700},
        {"status": 500, "count": 0},
        {"status": 500, "drop_connection": True},
        {"delay_s": 1, "retry_after": "1"},
        {"status": 500, "duration_s": -1},
    ],
)
def test_invalid_faults_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        spec(**fields)
