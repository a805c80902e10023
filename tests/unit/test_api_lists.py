"""api.lists.paged: a list route made from its query and a function of its own."""

from __future__ import annotations

import inspect

import pytest

from creditpool import queries as q
from creditpool.api.lists import Listing, paged
from creditpool.http.paging import Params


def test_the_route_takes_the_functions_parameters_then_the_querys() -> None:
    def list_teams(org: str, caller: object, pool: object) -> Listing:
        """In id order."""
        raise AssertionError("not called here")

    endpoint = paged(q.Teams)(list_teams)
    parameters = list(inspect.signature(endpoint).parameters)
    assert parameters == ["org", "caller", "pool", "params"]
    assert endpoint.__name__ == "list_teams"
    assert endpoint.__doc__ == "In id order."


def test_the_page_is_read_with_the_paths_ids_by_the_querys_names() -> None:
    calls: list[dict[str, object]] = []

    def keys(**asked: object) -> list[object]:
        calls.append(asked)
        return []

    def list_keys(org: str, caller: object, pool: object) -> Listing:
        return keys

    endpoint = paged(q.Keys)(list_keys)
    params_model = inspect.signature(endpoint).parameters["params"].annotation.__origin__
    assert issubclass(params_model, Params)
    page = endpoint(org="acme", caller=None, pool=None, params=params_model())
    assert page.data == []
    assert calls == [{"org_id": "acme", "after": None, "limit": 51}]


def test_a_function_without_the_paths_ids_is_refused() -> None:
    def list_teams() -> Listing:
        raise AssertionError("not called")

    with pytest.raises(TypeError, match="path's ids"):
        paged(q.Teams)(list_teams)
