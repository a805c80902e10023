"""A list route made from its query: what every list route does, written once.

Every list route takes its path's ids, the caller and the pool, reads one page of the
query's parameters (``http.paging.Params``) through the library's method of that query,
and answers the page. ``paged`` makes that route from a function that says only what is
the route's own: its name and documentation, its path's ids (the query's, in their order),
the caller's right, and the library's method it reads, which it returns::

    @router.get("/grants", response_model=Page[Grant])
    @paged(q.Grants)
    def list_grants(org: OrgId, caller: Reader, pool: Pool) -> Listing:
        return pool.grants  # (after the docstring, which is the route's description)

The route's parameters are the function's, then the query's parameters (``params``), so
that the OpenAPI document and the order of its parameters are those of a route written out.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Query

from creditpool import queries
from creditpool.http.paging import Params
from creditpool.http.schemas import Page

# What a list route's function returns: the library's method of its query.
Listing = Callable[..., list[Any]]


def paged(
    query: type[queries.Query], **own: Any
) -> Callable[[Callable[..., Listing]], Callable[..., Page[Any]]]:
    """The list route of ``query``, made from ``declare`` (see the module). Its query
    parameters are a ``Params`` model made from the query, with ``own`` as the annotations
    of what the list declares of its own (a filter's wire type, a cursor's pattern)."""
    namespace = {"__query__": query, "__annotations__": own, "__module__": __name__}
    params = type(f"{query.__name__}Params", (Params,), namespace)
    ids = query.path_ids()

    def route(declare: Callable[..., Listing]) -> Callable[..., Page[Any]]:
        signature = inspect.signature(declare, eval_str=True)
        own = list(signature.parameters.values())
        if len(own) < len(ids):
            raise TypeError(f"{declare.__name__} takes the path's ids first: {ids}")
        named = {field: p.name for field, p in zip(ids, own, strict=False)}  # query's: route's

        def endpoint(*, params: Params, **given: Any) -> Page[Any]:
            read = declare(**given)
            return params.read(read, **{field: given[name] for field, name in named.items()})

        wire = inspect.Parameter(
            "params", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[params, Query()]
        )
        endpoint.__signature__ = inspect.Signature([*own, wire])  # type: ignore[attr-defined]
        endpoint.__name__ = endpoint.__qualname__ = declare.__name__
        endpoint.__doc__ = declare.__doc__
        endpoint.__module__ = declare.__module__
        return endpoint

    return route
