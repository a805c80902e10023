"""Each ledger change is one command (``creditpool.commands``), and the library, both clients
and the HTTP API are made from it: they cannot drift apart.

- ``CreditPool``'s method and the clients' method take the command's fields;
- the route the command names (method and path) exists, answers the command's status, and
  its body has exactly the command's body fields (``dry_run`` included), so that a field
  added to a command and to its body reaches the library unchanged (``**body``).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from creditpool import CreditPool, changes
from creditpool import commands as cmd
from creditpool.client import Client
from creditpool.core.errors import InvalidAmount, InvalidInput
from creditpool.core.keys import ScopedKey
from creditpool.server.app import create_app

LEDGER_COMMANDS: dict[str, type[cmd.Command]] = {  # type: ignore[type-arg]
    "grant": cmd.Grant,
    "void_grant": cmd.VoidGrant,
    "change_grant_expiry": cmd.ChangeGrantExpiry,
    "adjust": cmd.Adjust,
    "consume": cmd.Consume,
    "refund": cmd.Refund,
    "hold": cmd.Hold,
    "settle": cmd.Settle,
    "release": cmd.Release,
    "request_credits": cmd.RequestCredits,
    "grant_credit_request": cmd.GrantCreditRequest,
    "dismiss_credit_request": cmd.DismissCreditRequest,
}
# The library's commands add who made the change (the server fills it in from the key).
BY = {
    cmd.GrantBy: "granted_by",
    cmd.VoidGrantBy: "by",
    cmd.ChangeGrantExpiryBy: "by",
    cmd.AdjustBy: "by",
    cmd.RefundBy: "by",
    cmd.RequestCreditsBy: "requested_by",
    cmd.GrantCreditRequestBy: "by",
    cmd.DismissCreditRequestBy: "by",
}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    path = tmp_path_factory.mktemp("commands") / "pool.db"
    with CreditPool.open(f"sqlite:///{path}") as pool:
        yield create_app(pool).openapi()


def body_properties(document: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    refs = [s["$ref"] for s in schema.get("anyOf", [schema]) if "$ref" in s]
    [ref] = refs
    found = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return sorted(found.get("properties", {}))


def fields(kind: type[object]) -> list[str]:
    return [f.name for f in dataclasses.fields(kind)]  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(LEDGER_COMMANDS))
def test_the_route_a_command_names_takes_its_body_fields_and_answers_its_status(
    name: str, document: dict[str, Any]
) -> None:
    kind = LEDGER_COMMANDS[name]
    operation = document["paths"].get(f"/v1/orgs/{{org}}/{kind.path}", {}).get(kind.method.lower())
    assert operation is not None, f"{kind.__name__} names no route"
    assert str(kind.success) in operation["responses"]
    answer = operation["responses"][str(kind.success)]["content"]["application/json"]["schema"]
    assert answer["$ref"].rsplit("/", 1)[1] == kind.result.__name__  # Command[R]'s R
    assert body_properties(document, operation) == sorted(kind.body_fields())


@pytest.mark.parametrize("name", sorted(LEDGER_COMMANDS))
def test_the_library_and_the_clients_take_the_command_s_fields(name: str) -> None:
    kind = LEDGER_COMMANDS[name]
    library = inspect.signature(getattr(CreditPool, name).build)
    client = inspect.signature(getattr(Client, name).build)
    wire = ["org_id", *(p.name for p in kind.parameters())]
    assert list(client.parameters) == wire
    by = [k for k in BY if issubclass(k, kind)]
    named = [BY[k] for k in by]
    assert list(library.parameters) == wire[:-1] + named + ["idempotency_key"]
    assert getattr(CreditPool, name).__doc__ == (by[0] if by else kind).doc()


def test_a_method_lists_the_change_s_own_fields_first_and_the_key_last() -> None:
    consume = inspect.signature(CreditPool.consume.build)
    assert list(consume.parameters) == [
        "org_id", "feature", "user_id", "quantity", "dry_run",
        "feature_name", "action", "integration", "metadata", "breakdown", "requests",
        "idempotency_key",
    ]  # fmt: skip

    assert CreditPool.consume.__doc__ == inspect.cleandoc(
        cmd.Consume.__doc__ or ""
    )  # not its bases'


def test_a_library_command_adds_only_who_made_the_change() -> None:
    for by, name in BY.items():
        base = by.__mro__[1]
        assert fields(by) == [*fields(base), name], by.__name__


def test_a_command_that_is_not_of_the_ledger_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Other(cmd.Command[cmd.Consumption]):
        pass

    with pytest.raises(TypeError, match="not a command of the ledger"):
        changes.of(Other())


def test_a_bad_field_is_refused_before_any_transaction() -> None:
    with pytest.raises(InvalidInput, match="user_id"):
        changes.of(cmd.Consume("report", user_id=" nope "))
    with pytest.raises(InvalidInput, match="grant id"):
        changes.of(cmd.VoidGrantBy(0, by="cs"))
    with pytest.raises(InvalidInput, match="by must name"):
        changes.of(cmd.ChangeGrantExpiry(1, None))  # the client's command: no one named


def _request(call: object) -> httpx.Request:
    captured: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(418)

    client = Client("http://creditpool.test", "k", transport=httpx.MockTransport(answer))
    try:
        call(client)  # type: ignore[operator]
    except Exception:
        if not captured:  # refused before anything was sent
            raise
        # else 418, no answer of the API's: only the request counts here
    finally:
        client.close()
    assert captured
    return captured[0]


def test_the_client_sends_a_command_s_ids_in_the_path_and_its_fields_in_the_body() -> None:
    when = datetime(2030, 1, 1, tzinfo=UTC)
    sent = _request(
        lambda c: c.settle(
            "acme", 7, cost=Decimal("1.50"), breakdown={"calls": 2}, idempotency_key="k-1"
        )
    )
    assert (sent.method, sent.url.path) == ("POST", "/v1/orgs/acme/holds/7/settle")
    assert sent.headers["idempotency-key"] == "k-1"
    body = httpx.Response(200, content=sent.content).json()
    assert body == dict.fromkeys(cmd.Settle.body_fields()) | {
        "cost": "1.50",
        "breakdown": {"calls": 2},
    }
    sent = _request(lambda c: c.change_grant_expiry("a b", 3, when, reason="r"))
    assert (sent.method, sent.url.raw_path) == ("PATCH", b"/v1/orgs/a%20b/grants/3")
    assert httpx.Response(200, content=sent.content).json() == {
        "expires_at": "2030-01-01T00:00:00+00:00",
        "reason": "r",
    }
    assert sent.headers["idempotency-key"]  # a fresh one when none is given


def test_the_client_refuses_a_float_amount_and_a_key_that_is_not_a_string() -> None:
    with pytest.raises(InvalidAmount, match="not a float"):
        _request(lambda c: c.grant("acme", 1.5))
    with pytest.raises(InvalidInput, match="idempotency key"):
        _request(lambda c: c.release("acme", 1, idempotency_key=ScopedKey("s", "k")))


# -- a field's rule is declared with the field ------------------------------------------


def test_every_body_field_declares_its_rule_and_the_body_types_it_by_that_rule() -> None:
    from creditpool.http import bodies

    for kind in {*LEDGER_COMMANDS.values()}:
        declared = {f.name: f for f in dataclasses.fields(kind)}
        for name in kind.body_fields():
            assert "rule" in declared[name].metadata, f"{kind.__name__}.{name} has no rule"
            assert declared[name].metadata["rule"] in bodies.WIRE, f"{kind.__name__}.{name}"


def test_the_library_checks_a_field_by_its_rule() -> None:
    bad = cmd.Consume("chat", user_id="u-1", integration="x" * 201)
    with pytest.raises(InvalidInput, match="integration is longer than 200 characters"):
        cmd.checked(bad)
    with pytest.raises(InvalidInput, match="user_id must be 1 to 64"):
        cmd.checked(cmd.Consume("chat", user_id="no spaces"))
    with pytest.raises(InvalidInput, match="feature must be a non-empty string"):
        cmd.checked(cmd.Consume(None, user_id="u-1"))  # type: ignore[arg-type]
    good = cmd.checked(cmd.Consume("chat", user_id="u-1", quantity="2.5", requests=3))
    assert good["quantity"] == 25_000  # amounts in units, as the change keeps them
    assert good["requests"] == 3
    assert good["metadata"] is None  # None: not given, not checked


def test_what_describes_a_use_has_a_column_and_an_answer_field_where_it_is_kept() -> None:
    """A field added to ``UseDetails`` (consumptions and holds) or ``Counted`` (consumptions)
    is written as it is into the row's column of the same name and shown in the answer:
    without both it could not be kept, and this says so before any row is written."""
    from creditpool.consumptions.models import Consumption
    from creditpool.holds.models import Hold
    from creditpool.storage.tables import consumptions, holds

    def described(kind: type[Any]) -> set[str]:
        return {f.name for f in dataclasses.fields(kind) if "rule" in f.metadata}

    for name in described(cmd.Counted):
        assert name in consumptions.c, name
        assert name in Consumption.model_fields, name
    for name in described(cmd.UseDetails):
        assert name in holds.c, name
        assert name in Hold.model_fields, name


# Fingerprints of these requests as the code before commands declared their rules made them:
# a key stored then must replay the same request after an upgrade, not answer a conflict.
FINGERPRINTS = {
    "e0bb4271058edaf9d6304269674e3c45027a1fba09c800d76782643a31457b2b": cmd.Consume(
        "chat",
        user_id="u1",
        quantity="2.5",
        feature_name="Chat",
        action="ask",
        integration="zendesk",
        breakdown={"calls": 2},
        requests=3,
        metadata={"a": [1, "x"]},
    ),
    "01b6639726a158a86b408427fca2d6ad76d183ce719ec21d0e457ce62d00f66f": cmd.Consume(
        "chat", user_id="u1"
    ),
    "528ffdefdf5e7123e7b3da3211af8744691fc6a45a2d0246a49778550db4745c": cmd.Hold(
        "chat", user_id="u1", amount="3", ttl_s=60, metadata={"m": 1}
    ),
    "1662c87e6a88dae968c281c9506b863d9672285bd126d08e7eea300a41b66b87": cmd.Settle(
        7, cost="2", breakdown={"calls": 1}, user_id="u2"
    ),
    "c54a598545f2e02deb32d4beb2e4f3aeb19be3abe975aed4676fae880e48b173": cmd.Settle(7),
}


@pytest.mark.parametrize("expected", FINGERPRINTS)
def test_a_use_s_fingerprint_is_what_it_was(expected: str) -> None:
    from creditpool.idempotency.service import fingerprint

    change = changes.of(FINGERPRINTS[expected], changes.DefaultLimits())
    assert fingerprint(change.operation, change.arguments) == expected


def test_a_hold_s_time_to_live_is_checked_against_the_pool_s_most_and_says_it() -> None:
    for ttl_s in (0, True, 1.5, 86_401):
        with pytest.raises(
            InvalidInput, match="ttl_s must be a whole number of seconds from 1 to 86400"
        ):
            changes.of(cmd.Hold("chat", user_id="u-1", ttl_s=ttl_s))  # type: ignore[arg-type]
    assert changes.of(cmd.Hold("chat", user_id="u-1", ttl_s=86_400)).arguments["ttl_s"] == 86_400
