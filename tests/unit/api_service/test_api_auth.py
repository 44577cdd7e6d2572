"""API keys, the rate limit and the origin allow-list."""

from __future__ import annotations

from api_service.auth import ApiKeys, fingerprint, key_from_headers
from api_service.ratelimit import RateLimiter

from tests.unit.api_service.api_support import (
    KEY,
    OTHER_KEY,
    Api,
    MakeApi,
    page_view,
    tracker_page_view,
)


async def test_no_key_is_401(api: Api) -> None:
    answer = await api.client.post("/v1/events", json=page_view())

    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"]["code"] == "unauthorized"
    assert api.publisher.calls == 0


async def test_a_wrong_key_is_401_and_never_echoed(api: Api) -> None:
    wrong = "wrong-key-0123456789abcdef"
    for headers in ({"x-api-key": wrong}, {"authorization": f"Bearer {wrong}"}):
        answer = await api.client.post("/v1/events", json=page_view(), headers=headers)
        assert answer.status_code == 401
        assert wrong not in answer.text


async def test_both_header_styles_and_every_configured_key_are_accepted(api: Api) -> None:
    for headers in (
        {"x-api-key": KEY},
        {"authorization": f"Bearer {KEY}"},
        {"authorization": f"bearer {OTHER_KEY}"},
    ):
        answer = await api.client.post("/v1/events", json=page_view(), headers=headers)
        assert answer.status_code == 200, headers


async def test_basic_auth_is_not_a_bearer_key(api: Api) -> None:
    answer = await api.client.post(
        "/v1/events", json=page_view(), headers={"authorization": f"Basic {KEY}"}
    )

    assert answer.status_code == 401


async def test_auth_can_be_disabled_for_development(make_api: MakeApi) -> None:
    api = make_api(api_keys="", api_auth_disabled=True)

    answer = await api.client.post("/v1/events", json=page_view())

    assert answer.status_code == 200


async def test_tracker_endpoints_are_open_by_default(api: Api) -> None:
    post = await api.tp2([tracker_page_view()])
    pixel = await api.client.get("/i", params=tracker_page_view())

    assert post.status_code == 200
    assert pixel.status_code == 200


async def test_tracker_endpoints_can_require_a_key(make_api: MakeApi) -> None:
    api = make_api(api_tracker_auth_required=True)

    refused = await api.tp2([tracker_page_view()])
    pixel = await api.client.get("/i", params=tracker_page_view())
    allowed = await api.tp2([tracker_page_view()], headers={"x-api-key": KEY})

    assert refused.status_code == 401
    assert pixel.status_code == 401
    assert allowed.status_code == 200


def _frozen_limiter(api: Api) -> RateLimiter:
    """The API's limits on a clock that stands still, so no token refills however slow the run."""
    return RateLimiter(
        api.settings.api_rate_limit_per_s, api.settings.api_rate_limit_burst, clock=lambda: 1000.0
    )


async def test_the_rate_limit_answers_429_with_retry_after(make_api: MakeApi) -> None:
    api = make_api(api_rate_limit_per_s=0.5, api_rate_limit_burst=2)
    api.pipeline.admission.limiter = _frozen_limiter(api)

    statuses = [(await api.v1(page_view())).status_code for _ in range(3)]
    limited = await api.v1(page_view())
    other_key = await api.v1(page_view(), headers={"x-api-key": OTHER_KEY})

    assert statuses == [200, 200, 429]
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.json()["error"]["code"] == "rate_limited"
    assert other_key.status_code == 200  # each key has its own bucket


async def test_open_endpoints_are_limited_per_client_ip(make_api: MakeApi) -> None:
    api = make_api(api_rate_limit_per_s=0.5, api_rate_limit_burst=1, api_trust_forwarded_for=True)
    api.pipeline.admission.limiter = _frozen_limiter(api)

    first = await api.tp2([tracker_page_view()], headers={"x-forwarded-for": "203.0.113.7"})
    second = await api.tp2([tracker_page_view()], headers={"x-forwarded-for": "203.0.113.7"})
    elsewhere = await api.tp2([tracker_page_view()], headers={"x-forwarded-for": "203.0.113.8"})

    assert (first.status_code, second.status_code, elsewhere.status_code) == (200, 429, 200)


async def test_origins_outside_the_allow_list_are_403(make_api: MakeApi) -> None:
    api = make_api(api_allowed_origins="https://shop.example, https://blog.example")

    allowed = await api.tp2([tracker_page_view()], headers={"origin": "https://shop.example"})
    refused = await api.tp2([tracker_page_view()], headers={"origin": "https://evil.example"})
    no_origin = await api.tp2([tracker_page_view()])  # a server-side tracker

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "origin_not_allowed"
    assert no_origin.status_code == 200
    assert api.publisher.calls == 2


async def test_cors_preflight(make_api: MakeApi) -> None:
    api = make_api(api_allowed_origins="https://shop.example")
    path = "/com.snowplowanalytics.snowplow/tp2"

    allowed = await api.client.options(path, headers={"origin": "https://shop.example"})
    refused = await api.client.options(path, headers={"origin": "https://evil.example"})

    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert refused.status_code == 403


def test_keys_are_identified_by_fingerprint_only() -> None:
    keys = ApiKeys([KEY, OTHER_KEY])

    assert keys.identify(KEY) == fingerprint(KEY)
    assert keys.identify(OTHER_KEY) == fingerprint(OTHER_KEY)
    assert keys.identify(KEY[:-1]) is None
    assert keys.identify(None) is None
    assert KEY not in fingerprint(KEY)


def test_key_from_headers() -> None:
    assert key_from_headers({"authorization": "Bearer  abc "}) == "abc"
    assert key_from_headers({"x-api-key": "abc"}) == "abc"
    assert key_from_headers({"authorization": "Bearer "}) is None
    assert key_from_headers({"x-api-key": "  "}) is None
    assert key_from_headers({}) is None


def test_token_bucket_refills_at_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(10.0, 2, clock=lambda: now[0])

    assert [limiter.take("a"), limiter.take("a")] == [0.0, 0.0]
    assert limiter.take("a") == 0.1
    now[0] += 0.1
    assert limiter.take("a") == 0.0
    assert RateLimiter.retry_after(0.1) == 1


def test_token_bucket_keeps_a_bounded_number_of_clients() -> None:
    limiter = RateLimiter(1.0, 1, clock=lambda: 0.0, max_clients=2)

    for client in ("a", "b", "c"):
        assert limiter.take(client) == 0.0
    assert limiter.take("a") == 0.0  # "a" was dropped (least recently used): a fresh bucket
    assert limiter.take("c") > 0


def test_a_zero_rate_disables_the_limit() -> None:
    limiter = RateLimiter(0.0, 1)

    assert not limiter.enabled
    assert all(limiter.take("a") == 0.0 for _ in range(10))
