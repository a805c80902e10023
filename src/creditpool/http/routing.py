"""The route class of every API route: who may call comes first, then the input.

FastAPI reads and decodes a request's JSON body before it resolves a route's dependencies,
so a caller without the right to call a route would learn from a 422 what is wrong with its
body (and a body that is not JSON would be refused before the key is even looked at).
``AuthorizedRoute`` runs the route's declared authorization (``security.Allowed``) first:
401 for a missing or bad key, 404 for another organization, 403 for a role that may not;
only then the ``Idempotency-Key`` header and the body, as documented.

The body is read as strict JSON: UTF-8, no duplicate keys (``{"a": 1, "a": 2}`` would
otherwise mean whatever the last one says), no ``NaN`` or ``Infinity``, which are not JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

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

        async def authorized_handler(request: Request) -> Response:
            if guards:
                caller = await principal(request, await bearer(request))
                for guard in guards:
                    guard.check(caller, request)
            if has_body:
                check_idempotency_key(request.headers.get(IDEMPOTENCY_HEADER))
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return authorized_handler


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
