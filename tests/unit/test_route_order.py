"""A consumption, the hot request, is matched before every other route; the document still
lists the API in the domains' order (``server.app.API_ROUTERS``)."""

from __future__ import annotations

from pathlib import Path

from fastapi.routing import APIRoute
from starlette.routing import Match

from creditpool import CreditPool
from creditpool.http.openapi import _reorder
from creditpool.server.app import API_ROUTERS, MATCHED_FIRST, create_app


def _scope(method: str, path: str) -> dict[str, object]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def test_the_consumption_route_is_the_first_the_app_tries(tmp_path: Path) -> None:
    with CreditPool.open(f"sqlite:///{tmp_path / 'p.db'}") as pool:
        app = create_app(pool)
        consume = _scope("POST", "/v1/orgs/acme/consumptions")
        tried = [route for route in app.router.routes if route.matches(consume)[0] is Match.FULL]
        # Only FastAPI's own /openapi.json comes before the consumptions' router.
        assert app.router.routes.index(tried[0]) == 1
        assert tried[0].matches(_scope("GET", "/v1/orgs/acme/balance"))[0] is Match.NONE


def test_the_document_lists_the_paths_in_the_domains_order(tmp_path: Path) -> None:
    with CreditPool.open(f"sqlite:///{tmp_path / 'p.db'}") as pool:
        paths = list(create_app(pool).openapi()["paths"])
    expected: list[str] = []
    for router in API_ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.path not in expected:
                expected.append(route.path)
    assert paths[: len(expected)] == expected
    assert paths[0] == "/v1/orgs"  # not the consumptions matched first
    assert MATCHED_FIRST[0] is not API_ROUTERS[0]
    assert "/healthz" in paths[len(expected) :]  # the others after, as routed


def test_reorder_puts_the_named_paths_first_and_keeps_the_others_as_they_were() -> None:
    paths = {"/c": 1, "/x": 2, "/a": 3, "/b": 4, "/y": 5}
    _reorder(paths, ["/a", "/b", "/a", "/c"])
    assert list(paths) == ["/a", "/b", "/c", "/x", "/y"]
    assert paths == {"/a": 3, "/b": 4, "/c": 1, "/x": 2, "/y": 5}
