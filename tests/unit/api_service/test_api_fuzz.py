"""Schema-driven fuzz of the public routes (schemathesis over the OpenAPI document): no 5xx,
and only the answers the document declares.

The publisher is the in-memory fake, so any 5xx here is the API's own fault. Examples are
bounded so the whole fuzz stays within a few seconds.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from api_service.app import build_pipeline, create_app
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.fuzzing import examples
from tests.unit.api_service.api_support import AUTH, FakePublisher, make_settings

# Redirects on, so /r/tp2 is fuzzed past its 404.
_SETTINGS = make_settings(api_redirect_domains="shop.example")
_APP = create_app(_SETTINGS, build_pipeline(_SETTINGS, FakePublisher()))
# No 5xx, and every answer is one the document declares, in the declared shape.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


@schema.parametrize()
@settings(
    max_examples=examples(50),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_input_makes_the_api_fail(case: Case[Any]) -> None:
    case.call_and_validate(headers=AUTH, checks=CHECKS)
