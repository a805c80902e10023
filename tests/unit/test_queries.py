"""Each list read is one query (``creditpool.queries``), and the library, both clients and
the HTTP API are made from it: they cannot drift apart.

- the route a query names (its path) exists, and its query parameters are the query's
  filters by their wire names, ``limit`` and ``cursor``, in the query's order;
- a route's parameters model (``http.paging.Params``) declares what only its list has (a
  filter, a cursor of its own pattern) and nothing its query lacks;
- a library method made from a query (``reads.reading``) takes the query's fields.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import pytest

from creditpool import CreditPool
from creditpool import queries as q
from creditpool.http.paging import Params
from creditpool.reads import reading
from creditpool.server.app import create_app

QUERIES = {
    name: kind
    for name, kind in vars(q).items()
    if isinstance(kind, type) and issubclass(kind, q.Query) and hasattr(kind, "path")
}
IDS = re.compile(r"\{[^}]+\}")


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    path = tmp_path_factory.mktemp("queries") / "pool.db"
    with CreditPool.open(f"sqlite:///{path}") as pool:
        yield create_app(pool).openapi()


def route(document: dict[str, Any], kind: type[q.Query]) -> dict[str, Any]:
    """The GET operation of the query's path (its ids named as the routes name them)."""
    wanted = IDS.sub("{}", f"/v1/{kind.path}")
    [found] = [
        ops["get"] for path, ops in document["paths"].items() if IDS.sub("{}", path) == wanted
    ]
    return found  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_the_route_a_query_names_takes_its_filters_limit_and_cursor(
    name: str, document: dict[str, Any]
) -> None:
    kind = QUERIES[name]
    operation = route(document, kind)
    taken = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
    filters = [q.WIRE_NAMES.get(f, f) for f in kind.filters()]
    paging = ["limit", "cursor"]
    assert taken == (paging + filters if kind.paging_first else filters + paging)
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]


def test_every_list_route_s_parameters_are_made_from_a_query(document: dict[str, Any]) -> None:
    made = {kind.__query__ for kind in Params.__subclasses__()}
    assert made == set(QUERIES.values())


def test_a_parameters_model_must_declare_a_filter_no_other_list_shares() -> None:
    with pytest.raises(TypeError, match="declare the filter status of Holds"):

        class LeavesOut(Params):
            __query__ = q.Holds


def test_a_parameters_model_declares_nothing_its_query_does_not_have() -> None:
    with pytest.raises(TypeError, match="declare only the filters of Teams"):

        class Extra(Params):
            __query__ = q.Teams
            search: str | None = None


def test_a_cursor_of_its_own_pattern_must_be_declared() -> None:
    with pytest.raises(TypeError, match="declare the cursor of Events"):

        class Unknown(Params):
            __query__ = q.Events
            type: str | None = None


def test_a_library_method_made_from_a_query_takes_its_fields() -> None:
    made = {
        name: member
        for klass in CreditPool.__mro__
        for name, member in vars(klass).items()
        if isinstance(member, reading)
    }
    assert len(made) >= 11
    for name, method in made.items():
        kind: Any = method.query
        expected = [p.name for p in kind.parameters()]
        taken = list(inspect.signature(getattr(CreditPool, name).build).parameters)
        assert taken == expected, name
