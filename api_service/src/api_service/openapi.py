"""What the OpenAPI document shows: the event model with examples, and every answer's shape.

The routes read raw bodies (to enforce size and depth limits before parsing, and to check a
batch event by event), so their request bodies are described here rather than inferred.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, Field, TypeAdapter
from tracking_common.events import TrackedEvent

__all__ = [
    "PIXEL_PARAMETERS",
    "REDIRECT_PARAMETERS",
    "REDIRECT_RESPONSES",
    "RESPONSES",
    "TP2_REQUEST_BODY",
    "V1_REQUEST_BODY",
    "component_schemas",
]

REF: Final = "#/components/schemas/{model}"


class EventError(BaseModel):
    """One problem with one event."""

    path: str = Field(examples=["/page/url"])
    code: str = Field(examples=["missing"])
    message: str = Field(examples=["Field required"])


class RejectedEvent(BaseModel):
    """A rejected event: its index in the request, its id if known, and all its errors."""

    index: int
    event_id: str | None
    errors: list[EventError]


class IngestResult(BaseModel):
    """The answer to an ingest request: 200 all accepted, 207 some, 400 none."""

    accepted: int
    rejected: int
    event_ids: list[str] = Field(description="Ids of the accepted events, in request order.")
    errors: list[RejectedEvent] | None = Field(
        default=None, description="Every rejected event (absent when none was)."
    )


class ErrorDetail(BaseModel):
    """Why a whole request was refused."""

    code: str = Field(examples=["payload_too_large"])
    message: str


class ErrorBody(BaseModel):
    """A refused request."""

    error: ErrorDetail


class V1Batch(BaseModel):
    """Several events in one request."""

    events: list[TrackedEvent] = Field(min_length=1)


PAGE_VIEW_EXAMPLE: Final = {
    "event_type": "page_view",
    "app_id": "shop",
    "page": {"url": "https://shop.example/pricing", "title": "Pricing"},
    "subject": {"user_id": "user-42", "language": "en-GB"},
}
SELF_DESCRIBING_EXAMPLE: Final = {
    # Self-describing data is checked against its Iglu schema: com.acme/button_click must be in
    # IGLU_SCHEMA_DIR or a registry of IGLU_RESOLVER_CONFIG (or API_ALLOW_UNKNOWN_SCHEMAS=true)
    # for this example to be accepted.
    "event_type": "self_describing",
    "app_id": "shop",
    "event": {
        "schema": "iglu:com.acme/button_click/jsonschema/1-0-0",
        "data": {"button_id": "signup"},
    },
    "subject": {"user_id": "user-42"},
}
STRUCT_EXAMPLE: Final = {
    "event_type": "struct",
    "app_id": "shop",
    "category": "checkout",
    "action": "add-to-basket",
    "label": "sku-123",
    "value": 2.0,
}

_SINGLE = TypeAdapter(TrackedEvent).json_schema(ref_template=REF)
_BATCH = V1Batch.model_json_schema(ref_template=REF)


def component_schemas() -> dict[str, Any]:
    """The models the routes refer to, for ``components/schemas``."""
    schemas: dict[str, Any] = {}
    for document in (_SINGLE, _BATCH):
        schemas.update(document.get("$defs", {}))
    for model in (IngestResult, ErrorBody):
        document = model.model_json_schema(ref_template=REF)
        schemas.update(document.pop("$defs", {}))
        schemas[model.__name__] = document
    schemas["V1Batch"] = {k: v for k, v in _BATCH.items() if k != "$defs"}
    schemas["TrackedEvent"] = {k: v for k, v in _SINGLE.items() if k != "$defs"}
    return schemas


V1_REQUEST_BODY: Final = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": REF.format(model="TrackedEvent")},
                    {"$ref": REF.format(model="V1Batch")},
                ]
            },
            "examples": {
                "page_view": {"summary": "One page view", "value": PAGE_VIEW_EXAMPLE},
                "struct": {"summary": "One structured event", "value": STRUCT_EXAMPLE},
                "self_describing": {
                    "summary": "A self-describing event (its schema must be resolvable)",
                    "value": SELF_DESCRIBING_EXAMPLE,
                },
                "batch": {
                    "summary": "A batch",
                    "value": {"events": [PAGE_VIEW_EXAMPLE, STRUCT_EXAMPLE]},
                },
            },
        }
    },
}

TP2_REQUEST_BODY: Final = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["schema", "data"],
                "properties": {
                    "schema": {
                        "type": "string",
                        "example": (
                            "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
                        ),
                    },
                    "data": {
                        "type": "array",
                        "items": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
            },
            "example": {
                "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
                "data": [
                    {
                        "e": "pv",
                        "p": "web",
                        "tv": "js-3.0.0",
                        "url": "https://shop.example/",
                        "eid": "c6ef3124-b53a-4b13-a233-0088f79dcbcb",
                        "dtm": "1700000000000",
                        "stm": "1700000000100",
                    }
                ],
            },
        }
    },
}


def _answer(description: str, *models: str, retry_after: bool = False) -> dict[str, Any]:
    refs = [{"$ref": REF.format(model=model)} for model in models]
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": refs[0] if len(refs) == 1 else {"oneOf": refs}}},
    }
    if retry_after:
        answer["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "integer"},
            }
        }
    return answer


_RESULT: Final = "IngestResult"
_ERROR: Final = "ErrorBody"
RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: _answer("Every event was accepted and acknowledged by Kafka.", _RESULT),
    207: _answer("Some events were accepted and acknowledged; the rest are listed.", _RESULT),
    400: _answer(
        "No event was accepted (each one listed), or the body is unreadable (an error).",
        _RESULT,
        _ERROR,
    ),
    401: _answer("No API key, or a wrong one.", _ERROR),
    403: _answer("A browser origin outside API_ALLOWED_ORIGINS (tracker routes).", _ERROR),
    408: _answer("The body did not all arrive within API_BODY_TIMEOUT_S.", _ERROR),
    413: _answer("The body, inflated body or event count is over a limit.", _ERROR),
    415: _answer("An unsupported Content-Encoding.", _ERROR),
    429: _answer("Over the rate limit.", _ERROR, retry_after=True),
    503: _answer(
        "Kafka did not acknowledge in time; nothing was accepted.", _ERROR, retry_after=True
    ),
}


def _query(name: str, description: str, *, required: bool = False, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string", **schema},
    }


PIXEL_PARAMETERS: Final = [
    _query("e", "Event type code", required=True, enum=["pv", "pp", "se", "ue"], example="pv"),
    _query("p", "Platform", required=True, example="web"),
    _query("tv", "Tracker version", required=True, example="pixel-1"),
    _query("url", "Page URL (page views and pings)", example="https://shop.example/"),
    _query("eid", "Event id (a UUID; generated when absent)"),
    _query("aid", "App id", example="shop"),
    _query("uid", "User id"),
    _query("se_ca", "Structured event category"),
    _query("se_ac", "Structured event action"),
    _query("ue_pr", "Self-describing event (unstruct_event JSON)"),
    _query("ue_px", "Self-describing event, base64url"),
]
"""The commonest tracker-protocol fields of ``GET /i``; any other payload_data field is read too."""

REDIRECT_PARAMETERS: Final = [
    _query(
        "u",
        "Where to redirect: an absolute http(s) URL on a host of API_REDIRECT_DOMAINS",
        required=True,
        example="https://shop.example/pricing",
    ),
    _query("e", "Event type code; when set, the redirect is attached to it as an entity"),
    _query("aid", "App id", example="shop"),
    _query("p", "Platform (default web)"),
    _query("tv", "Tracker version (default r-tp2)"),
    _query("eid", "Event id (a UUID; generated when absent)"),
    _query("co", "Entities (contexts JSON)"),
]
"""``GET /r/tp2``'s own ``u`` and common tracker fields; any other payload_data field is read."""

REDIRECT_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    400: _answer("No u, or a target that may not be redirected to.", _ERROR),
    404: _answer("Redirects are off (API_REDIRECT_DOMAINS is empty).", _ERROR),
    **{status: RESPONSES[status] for status in (401, 403, 429, 503)},
}
