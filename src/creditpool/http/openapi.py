"""The OpenAPI document: exact for the fuzzer, readable for client generators.

FastAPI documents only the success and a 422 in its own validation format. Every error here
is an RFC 9457 problem (``application/problem+json``), so one pass over the generated
document adds, per operation, the problem answers its shape allows: 401 and 403 under
``/v1`` (a key is needed there), 404 where a path names an object, 422 where there is input,
and 409 and 413 where there is a body. A route declares the rarer ones itself (402 for a
consumption) with a description only; this pass gives them the problem schema too.

The same pass makes the document one that client generators (openapi-python-client, tested
in tests/e2e/test_generated_client.py) read without loss: operation ids are the routes'
names (``operation_id``); every enum is a named schema, never an inline copy; every amount
of an answer is a decimal string with a pattern; metadata is described without a recursive
union (which generators cannot read); an inline answer schema gets a name.

``install`` also serves ``/docs`` (Swagger UI) and ``/redoc`` from the assets of the
``fastapi-offline`` package, so that they work without a network.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from functools import partial
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.responses import HTMLResponse

from creditpool.consumptions.models import ConsumptionStatus
from creditpool.http.problems import MEDIA_TYPE
from creditpool.http.replay import HEADER, REPLAYED
from creditpool.http.routing import IDEMPOTENCY_KEY_PATTERN
from creditpool.idempotency.service import KEY_LENGTH_MAX
from creditpool.validation import METADATA_NUMBER_MAX, time_zones
from creditpool.webhooks.service import SUBSCRIBABLE

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
            "$ref": "#/components/schemas/HoldStatus",
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
# An amount in an answer: a plain decimal string, as ``core.money`` writes it.
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
# Enums that pydantic leaves inline, by their values: the document names each once.
ENUM_NAMES: dict[frozenset[str], tuple[str, str]] = {
    frozenset(time_zones()): ("TimeZone", "A time zone of the IANA tz database"),
    frozenset(SUBSCRIBABLE): ("SubscribableEventType", "An event type a webhook may ask for"),
    frozenset({ConsumptionStatus.PAID, ConsumptionStatus.REFUNDED}): (
        "RecordedConsumptionStatus",
        "The status of a recorded consumption (a dry run is never recorded)",
    ),
}
# Keys of an inline enum that describe its use rather than its values: they stay by the $ref.
USE_KEYS = ("title", "description", "default", "examples")
# Metadata's values without a (recursive) union: each keyword applies to its own JSON type
# only, so this says exactly what ``validation.metadata`` accepts, depth and size aside.
METADATA_VALUE: dict[str, Any] = {
    "description": "Any JSON value: text without NUL, numbers within ±(2**53 - 1)",
    "pattern": r"^[^\x00]*$",
    "minimum": -METADATA_NUMBER_MAX,
    "maximum": METADATA_NUMBER_MAX,
    "items": {"$ref": "#/components/schemas/MetadataValue"},
    "propertyNames": {"pattern": r"^[^\x00]*$"},
    "additionalProperties": {"$ref": "#/components/schemas/MetadataValue"},
}
DOCS_ASSETS = "/docs-assets"
# The docs pages, by route name: their path, their title (after the app's) and the page
# (given the OpenAPI document's address and the title) with its assets from DOCS_ASSETS.
DOCS_PAGES: dict[str, tuple[str, str, Callable[..., HTMLResponse]]] = {
    "swagger_ui": (
        "/docs",
        "Swagger UI",
        partial(
            get_swagger_ui_html,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        ),
    ),
    "redoc": (
        "/redoc",
        "ReDoc",
        partial(
            get_redoc_html,
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        ),
    ),
}


def operation_id(route: APIRoute) -> str:
    """A route's operation id is its name (the endpoint function's, or ``operation_id=``)."""
    return route.name


# For ``FastAPI(...)``: ``install`` serves the docs pages; operation ids are route names.
APP_OPTIONS: dict[str, Any] = {
    "docs_url": None,
    "redoc_url": None,
    "generate_unique_id_function": operation_id,
}


def install(app: FastAPI, order: Sequence[str] = ()) -> None:
    """Document ``app`` (see the module) and serve its docs pages from packaged assets;
    create the app with ``APP_OPTIONS``. The document lists the paths of ``order`` first,
    in that order (the app may match its routes in another), then the others as routed."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            document(schema, decimals=dict(decimal_fields(app)))
            _reorder(schema.get("paths", {}), order)
        return generate()

    app.openapi = openapi  # type: ignore[method-assign]
    _docs(app)


def _reorder(paths: dict[str, Any], order: Sequence[str]) -> None:
    """``paths`` (in place): those named in ``order`` first, in its order, then the rest."""
    rank = {path: i for i, path in reversed(list(enumerate(order)))}
    ordered = sorted(paths.items(), key=lambda item: rank.get(item[0], len(order)))
    paths.clear()
    paths.update(ordered)


def _docs(app: FastAPI) -> None:
    assets = resources.files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    for name, (path, title, page) in DOCS_PAGES.items():
        _docs_page(
            app, name, path, partial(page, openapi_url=openapi_url, title=f"{app.title} - {title}")
        )


def _docs_page(app: FastAPI, name: str, path: str, page: Callable[[], HTMLResponse]) -> None:
    def serve() -> HTMLResponse:
        return page()

    app.add_api_route(path, serve, name=name, include_in_schema=False, methods=["GET"])


def decimal_fields(app: FastAPI) -> Iterator[tuple[str, set[str]]]:
    """(model name, its ``Decimal`` fields) of every model an operation answers."""
    seen: set[type[BaseModel]] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            models = [route.response_model]
            models += [answer.get("model") for answer in route.responses.values()]
            for model in models:
                yield from _decimals_of(model, seen)


def _decimals_of(annotation: Any, seen: set[type[BaseModel]]) -> Iterator[tuple[str, set[str]]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return
        seen.add(annotation)
        found = {
            field.alias or name
            for name, field in annotation.model_fields.items()
            if _mentions_decimal(field.annotation)
        }
        if found:
            yield annotation.__name__, found
        for field in annotation.model_fields.values():
            yield from _decimals_of(field.annotation, seen)
    for argument in typing.get_args(annotation):
        yield from _decimals_of(argument, seen)


def _mentions_decimal(annotation: Any) -> bool:
    return annotation is Decimal or any(map(_mentions_decimal, typing.get_args(annotation)))


def document(schema: dict[str, Any], decimals: dict[str, set[str]] | None = None) -> None:
    """Add the problem answers to every operation of a generated document, in place, and
    make it readable for client generators (see the module)."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    _closed_mappings(schema)
    if "MetadataValue" in schemas:
        schemas["MetadataValue"] = METADATA_VALUE
    for name, fields in (decimals or {}).items():
        properties = schemas.get(name, {}).get("properties", {})
        for field in fields & properties.keys():
            _decimal(properties[field])
    for field in ("left", "required"):
        _decimal(PROBLEM_SCHEMA["properties"][field])
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                _document_operation(path, item[method])
                _name_answers(item[method], schemas)
    _name_enums(schema, schemas)


def _decimal(field: dict[str, Any]) -> None:
    for option in field.get("anyOf", [field]):
        if option.get("type") == "string":
            option["pattern"] = DECIMAL_PATTERN
        elif option.get("type") == "array":
            _decimal(option["items"])


def _name_answers(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """An answer's inline object schema becomes a component named after the operation."""
    for response in operation.get("responses", {}).values():
        for media in response.get("content", {}).values():
            inline = media.get("schema", {})
            if inline.get("type") == "object":
                name = "".join(word.title() for word in operation["operationId"].split("_"))
                schemas[f"{name}Response"] = {**inline, "title": f"{name}Response"}
                media["schema"] = {"$ref": f"#/components/schemas/{name}Response"}


def _name_enums(document: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Replace every inline enum of more than one value (a response header's aside) by a
    reference: to the component with the same values, or to a new one of ``ENUM_NAMES``."""
    named = {
        frozenset(component["enum"]): name
        for name, component in schemas.items()
        if "enum" in component
    }
    for node in _inline_enums(document):
        values = frozenset(node["enum"])
        name = named.get(values)
        if name is None and values in ENUM_NAMES:
            name, description = ENUM_NAMES[values]
            kept = {key: value for key, value in node.items() if key not in USE_KEYS}
            schemas[name] = {**kept, "title": name, "description": description}
            schemas[name]["x-enum-varnames"] = [_identifier(v) for v in node["enum"]]
            named[values] = name
        if name is not None:
            use = {key: node[key] for key in USE_KEYS if key in node}
            node.clear()
            node.update({"$ref": f"#/components/schemas/{name}", **use})


def _identifier(value: str) -> str:
    """An enum member's name for generators (``x-enum-varnames``), one per value: a sign
    before a digit is spelled out (``Etc/GMT+5``, ``Etc/GMT-5``), so no two names collide."""
    spelled = re.sub(r"\+(?=[0-9])", "_PLUS_", re.sub(r"-(?=[0-9])", "_MINUS_", value))
    return re.sub(r"[^A-Za-z0-9]+", "_", spelled).strip("_").upper()


def _inline_enums(node: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """The inline enums below ``node`` (a component's own enum is not inline)."""
    if isinstance(node, dict):
        if "enum" in node and len(node["enum"]) > 1 and depth > 3:
            yield node
        for key, value in list(node.items()):
            if key != "headers":
                yield from _inline_enums(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from _inline_enums(value, depth + 1)


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
