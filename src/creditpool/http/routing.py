"""The route class of every API route: who may call comes first, then the input.

FastAPI reads and decodes a request's JSON body before it resolves a route's dependencies,
so a caller without the right to call a route would learn from a 422 what is wrong with its
body (and a body that is not JSON would be refused before the key is even looked at).
``AuthorizedRoute`` runs the route's declared authorization (``security.Allowed``) first:
401 for a missing or bad key, 404 for another organization, 403 for a role that may not;
only then the ``Idempotency-Key`` header and the body, as documented.

The body is read as strict JSON: UTF-8, no duplicate keys (``{"a": 1, "a": 2}`` would
otherwise mean whatever the last one says), no ``NaN`` or ``Infinity``, which are not JSON.

A route whose inputs are only its path, a JSON body, the request and its authorized caller,
and whose endpoint is async and answers a ``Response`` (the consumptions' POST, the hot
request), is called *directly*: its path and body are validated with the very fields
FastAPI would use and its endpoint awaited, without FastAPI's per-request dependency
solving (about a third of the HTTP stack's CPU per consumption, docs/ARCHITECTURE.md,
"The hot route is called directly"). Whatever the direct call does not take as it is (a
field that does not validate, a body that is not ``application/json`` or not JSON) goes
to FastAPI's own handler, unchanged, so every refusal is FastAPI's own answer.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi._compat import ModelField
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, _effective_route_context_var

from creditpool.core.errors import InvalidInput
from creditpool.http.security import Allowed, bearer, principal
from creditpool.idempotency.service import KEY_LENGTH_MAX
from creditpool.validation import strict_json

IDEMPOTENCY_HEADER = "Idempotency-Key"
# What a header value carries faithfully: printable ASCII, no spaces at either end (HTTP
# strips them), 1 to KEY_LENGTH_MAX characters.
IDEMPOTENCY_KEY_PATTERN = rf"^[\x21-\x7e]([\x20-\x7e]{{0,{KEY_LENGTH_MAX - 2}}}[\x21-\x7e])?$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def guards_of(route: APIRoute) -> list[Allowed]:
    """The authorizations a route declares (in its own parameters or deeper)."""
    found: list[Allowed] = []

    def walk(dependant: Dependant) -> None:
        if isinstance(dependant.call, Allowed):
            found.append(dependant.call)
        for sub in dependant.dependencies:
            walk(sub)

    walk(route.dependant)
    return found


class AuthorizedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        guards = guards_of(self)
        has_body = self.body_field is not None
        direct = Direct.of(_as_included(self))

        async def authorized_handler(request: Request) -> Response:
            caller = None
            if guards:
                caller = await principal(request, await bearer(request))
                for guard in guards:
                    guard.check(caller, request)
            if has_body:
                check_idempotency_key(request.headers.get(IDEMPOTENCY_HEADER))
            strict = StrictJSONRequest(request.scope, request.receive)
            if direct is not None and caller is not None and not request.app.dependency_overrides:
                values = await direct.inputs(strict)
                if values is not None:
                    return await direct.call(strict, caller, values)
            return await handler(strict)

        return authorized_handler


JSON = "application/json"


def _as_included(route: APIRoute) -> Any:
    """The route as FastAPI serves it: once included, with the dependencies of the app and
    the routers it is included in (the rate limit), as FastAPI's own ``get_route_handler``
    resolves it when building the handler of an inclusion."""
    included = _effective_route_context_var.get()
    if included is not None and included.original_route is route:
        return included
    return route


@dataclass(frozen=True, slots=True)
class Direct:
    """How to call a route's endpoint without FastAPI's dependency solving: which of its
    parameters take the path's fields, the body, the request and the caller, and the
    dependencies of the request alone (the rate limit) to await first, in their order."""

    endpoint: Callable[..., Awaitable[Response]]
    path: tuple[ModelField, ...]
    body: ModelField
    request_name: str | None
    caller_names: tuple[str, ...]
    before: tuple[Callable[[Request], Awaitable[Any]], ...]

    @classmethod
    def of(cls, route: Any) -> Direct | None:
        """The route's direct call, or None when FastAPI must solve it (anything but the
        path, one JSON body that is not embedded, the request and ``Allowed`` callers)."""
        dependant = route.dependant
        body = route.body_field
        if (
            not inspect.iscoroutinefunction(dependant.call)
            or typing.get_type_hints(dependant.call).get("return") is not Response
            or body is None
            or dependant.body_params != [body]  # one body, the model itself (not embedded)
            or dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
            or _special_params(dependant)
        ):
            return None
        caller_names: list[str] = []
        before: list[Callable[[Request], Awaitable[Any]]] = []
        for sub in dependant.dependencies:
            if isinstance(sub.call, Allowed) and sub.name is not None:
                caller_names.append(sub.name)
            elif _of_request_alone(sub) and sub.name is None and sub.call is not None:
                before.append(sub.call)
            else:
                return None
        return cls(
            dependant.call,
            tuple(dependant.path_params),
            body,
            dependant.request_param_name,
            tuple(caller_names),
            tuple(before),
        )

    async def inputs(self, request: Request) -> dict[str, Any] | None:
        """The endpoint's validated path and body, or None for anything FastAPI's own
        handler should see (and answer) instead. Reads the body; changes nothing."""
        if request.headers.get("content-type") != JSON:
            return None
        values: dict[str, Any] = {}
        for field in self.path:
            value, errors = field.validate(request.path_params.get(field.alias), values)
            if errors:
                return None
            values[field.name] = value
        try:
            document = await request.json()
        except Exception:  # FastAPI's handler reads it again and answers the error
            return None
        value, errors = self.body.validate(document, values, loc=("body",))
        if errors:
            return None
        values[self.body.name] = value
        return values

    async def call(self, request: Request, caller: Any, values: dict[str, Any]) -> Response:
        for dependency in self.before:
            await dependency(request)
        if self.request_name is not None:
            values[self.request_name] = request
        for name in self.caller_names:
            values[name] = caller
        return await self.endpoint(**values)


def _special_params(dependant: Dependant) -> bool:
    return any(
        name is not None
        for name in (
            dependant.websocket_param_name,
            dependant.http_connection_param_name,
            dependant.response_param_name,
            dependant.background_tasks_param_name,
            dependant.security_scopes_param_name,
        )
    )


def _of_request_alone(dependant: Dependant) -> bool:
    """An async dependency whose only parameter is the request (the rate limit)."""
    return (
        inspect.iscoroutinefunction(dependant.call)
        and dependant.request_param_name is not None
        and not (
            dependant.path_params
            or dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
            or dependant.body_params
            or dependant.dependencies
            or _special_params(dependant)
        )
    )


def check_idempotency_key(value: str | None) -> None:
    if value is not None and not _IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidInput(
            f"{IDEMPOTENCY_HEADER} must be 1 to {KEY_LENGTH_MAX} printable ASCII characters,"
            " without spaces at either end"
        )


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body())
        return self._json
