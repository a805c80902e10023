"""The OpenAPI document says every answer the API can give, errors included.

FastAPI documents only the success and a 422 in its own validation format. Every error here
is an RFC 9457 problem (``application/problem+json``), so one pass over the generated
document adds, per operation, the problem answers its shape allows: 401 and 403 under
``/v1`` (a key is needed there), 404 where a path names an object, 422 where there is input,
and 409 and 413 where there is a body. A route declares the rarer ones itself (402 for a
consumption) with a description only; this pass gives them the problem schema too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from creditpool.holds.models import HoldStatus
from creditpool.http.problems import MEDIA_TYPE
from creditpool.http.replay import HEADER, REPLAYED
from creditpool.http.routing import IDEMPOTENCY_KEY_PATTERN
from creditpool.idempotency.service import KEY_LENGTH_MAX

PROBLEM_REF = "#/components/schemas/Problem"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem: `code` is stable; some codes carry more fields.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "examples": ["insufficient_credits"]},
        "left": {"type": "string", "description": "insufficient_credits: the balance left"},
        "required": {"type": "string", "description": "insufficient_credits: the cost"},
        "hold_status": {
            "type": "string",
            "enum": [status.value for status in HoldStatus],
            "description": "hold_not_open: the hold's status",
        },
        "errors": {
            "type": "array",
            "description": "invalid_input: every field that failed",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}
DESCRIPTIONS = {
    401: "Missing, unknown or revoked API key (`unauthorized`)",
    403: "The key's role may not do this (`forbidden`)",
    404: "Not found (`not_found`), also for an organization other than the key's own",
    409: "Conflict: `idempotency_conflict`, `idempotency_in_flight`, `already_exists`, ...",
    413: "Request body too large (`payload_too_large`)",
    422: "Invalid input (`invalid_input`, `invalid_amount`, `pool_limit_exceeded`)",
}
IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Replays of the same key with the same body return the first answer and change "
        "nothing; another body with the same key is refused (409). Scoped to the API key."
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": KEY_LENGTH_MAX,
        "pattern": IDEMPOTENCY_KEY_PATTERN,
    },
}
REPLAYED_HEADER: dict[str, Any] = {
    "description": "`true` when this is the stored answer to an earlier request with the key",
    "schema": {"type": "string", "enum": ["true"]},
}
METHODS = ("get", "put", "post", "patch", "delete")


def install(app: FastAPI) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document(generate())
        return generate()

    app.openapi = openapi  # type: ignore[method-assign]


def document(schema: dict[str, Any]) -> None:
    """Add the problem answers to every operation of a generated document, in place."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    _closed_mappings(schema)
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                _document_operation(path, item[method])


def _document_operation(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    has_body = "requestBody" in operation
    statuses: set[int] = set()
    if path.startswith("/v1/"):
        statuses |= {401, 403}
    if "{" in path:
        statuses.add(404)
    if operation.get("parameters") or has_body:
        statuses.add(422)
    if has_body:
        statuses |= {409, 413}
        operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
        for status, response in responses.items():
            if status.startswith("2"):
                response.setdefault("headers", {})[REPLAYED] = REPLAYED_HEADER
    for code in statuses:
        declared = responses.get(str(code))
        # A route's own description of a status says more (FastAPI's 422 is its own).
        if declared is None or code == 422:
            responses[str(code)] = {"description": DESCRIPTIONS[code]}
    for status, response in responses.items():
        if status.startswith("4"):
            response["content"] = {MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}
    if "401" in responses:
        responses["401"]["headers"] = {
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}
        }


def _closed_mappings(node: Any) -> None:
    """Pydantic documents a mapping with constrained keys (``dict[Id, int]``) as
    ``patternProperties``, which lets any key that does not match through. The server
    refuses those keys: say so with ``propertyNames``."""
    if isinstance(node, dict):
        patterns = node.get("patternProperties")
        if isinstance(patterns, dict) and len(patterns) == 1 and "additionalProperties" not in node:
            [(pattern, values)] = patterns.items()
            del node["patternProperties"]
            node["propertyNames"] = {"pattern": pattern}
            node["additionalProperties"] = values
        for value in node.values():
            _closed_mappings(value)
    elif isinstance(node, list):
        for value in node:
            _closed_mappings(value)
