"""``CreditPool``, ``Client`` and ``AsyncClient`` are called the same way.

A method of the same name takes the same parameters: names, kinds and defaults (types may
differ where the transport does: ``Page`` over HTTP, ``list`` in the library). A method on
one side only, or a known difference, is listed here with its reason; a listed difference
that has gone away fails too, so the lists only ever shrink.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from creditpool import CreditPool
from creditpool.client import AsyncClient, Client

Shape = list[tuple[str, str, Any]]

LIBRARY_ONLY = {
    "open": "opens a database; a client is built from a URL and an API key",
    "on_commit": "in-process listeners; over HTTP the event stream tells",
    "observe": "in-process observers (the server's metrics); over HTTP /metrics tells",
    "attach": "the HTTP layer's hook that records its idempotency keys inside a change",
    "team": "no route reads a single team; teams() lists them",
    "feature": "no route reads a single feature; features() lists them",
    "funded_by": "over HTTP it is grant_info(...).funded",
    "sweep": "maintenance where the database is (the CLI, a cron job); the server sweeps itself",
    "verify": "replays the whole ledger: an operator's check, not offered over HTTP",
    "report": "a streamed download (CSV/XLSX); fetch it with httpx, not a model",
    "portal_link": "over HTTP it is POST /v1/portal-sessions, which answers the link's URL",
    "authenticate": "the server's check of a Bearer key",
    "consume_batch": "the server's group commit, not a call of its own",
    "apply": "runs a prepared change and says whether its key replayed (the HTTP layer's)",
    "apply_batch": "several prepared changes in one transaction (the server's group commit)",
    "webhook_worker": "delivers from the database: run it where the database is (the CLI)",
}
CLIENT_ONLY = {
    "healthz": "the server's liveness probe",
    "readyz": "the server's readiness probe",
    "iter_orgs": "over HTTP listings come in pages; the iterator walks them",
    "iter_consumptions": "over HTTP listings come in pages; the iterator walks them",
    "iter_ledger": "over HTTP listings come in pages; the iterator walks them",
    "iter_holds": "over HTTP listings come in pages; the iterator walks them",
}
# Library parameters the server fills in from the caller's API key.
FILLED_BY_THE_SERVER = {
    "grant": {"granted_by"},
    "void_grant": {"by"},
    "change_grant_expiry": {"by"},
    "adjust": {"by"},
    "request_credits": {"requested_by"},
    "grant_credit_request": {"by"},
    "dismiss_credit_request": {"by"},
    "create_org": {"by"},
    "update_org": {"by"},
    "set_feature": {"changed_by"},
    "refund": {"by"},
    "create_key": {"by"},
    "revoke_key": {"by"},
}
# Known differences of the library and the clients, each to be removed when resolved.
DIFFERENT = {
    "orgs": "paging: the library takes after/limit=100, the clients an opaque cursor",
    "consumptions": "paging: the library takes before_id/limit=100, the clients a cursor",
    "holds": "paging: the library takes before_id/limit=100, the clients a cursor",
    "corrections": "paging: the library takes before_id/limit=100, the clients a cursor",
    "audit_log": "paging: the library takes before_id/limit=100 and any org, the clients a cursor",
    "ledger": "paging: the library takes after_seq, the clients a cursor",
    "update_org": "the library takes **changes, the clients name each field",
    "update_team": "the library takes **changes, the clients name each field",
    "create_org": "the library takes no idempotency_key for directory changes",
    "create_team": "the library takes no idempotency_key for directory changes",
    "set_member": "the library takes no idempotency_key for directory changes",
    "set_feature": "the library takes no idempotency_key for directory changes",
    "set_team_limit": "the library takes no idempotency_key for directory changes",
    "create_key": "the library takes no idempotency_key for directory changes",
    "revoke_key": "the library takes no idempotency_key for directory changes",
}
# httpx's names: an async client is closed with ``aclose`` and entered with ``async with``.
ASYNC_NAMES = {"close": "aclose"}


def methods(cls: type) -> dict[str, Callable[..., Any]]:
    """Public methods, inherited ones too (``CreditPool`` mixes in its webhook methods)."""
    found: dict[str, Callable[..., Any]] = {}
    for klass in reversed(cls.__mro__[:-1]):  # object's own are no one's API
        for name, member in vars(klass).items():
            # The clients' operations are descriptors around the function they bind.
            bound = getattr(member, "build", None)
            if not name.startswith("_") and (bound or callable(getattr(cls, name))):
                found[name] = bound or member
    return found


def shape(method: Callable[..., Any], leave_out: set[str] | frozenset[str] = frozenset()) -> Shape:
    """Each parameter's name, kind and default, in order."""
    return [
        (p.name, p.kind.name, p.default)
        for p in inspect.signature(method).parameters.values()
        if p.name not in leave_out and p.name != "self"  # the clients' operations have none
    ]


def test_client_and_async_client_have_the_same_methods_and_parameters() -> None:
    sync, async_ = methods(Client), methods(AsyncClient)
    renamed = {ASYNC_NAMES.get(name, name): method for name, method in sync.items()}
    assert sorted(renamed) == sorted(async_)
    for name, method in renamed.items():
        assert shape(method) == shape(async_[name]), name


def test_every_method_on_one_side_only_is_listed_with_its_reason() -> None:
    library, client = set(methods(CreditPool)), set(methods(Client))
    assert library - client == set(LIBRARY_ONLY)
    assert client - library == set(CLIENT_ONLY)


def test_the_library_and_the_clients_take_the_same_parameters() -> None:
    library, client = methods(CreditPool), methods(Client)
    differ = set()
    for name in sorted(set(library) & set(client)):
        leave_out = FILLED_BY_THE_SERVER.get(name, set())
        if shape(library[name], leave_out) != shape(client[name]):
            differ.add(name)
    assert differ - set(DIFFERENT) == set(), "the library and the client drifted apart"
    assert set(DIFFERENT) - differ == set(), "these now match: remove them from DIFFERENT"


def test_parameters_filled_by_the_server_are_the_library_s_own() -> None:
    library = methods(CreditPool)
    for name, params in FILLED_BY_THE_SERVER.items():
        assert params <= {p for p, _, _ in shape(library[name])}, name
        assert not params & {p for p, _, _ in shape(methods(Client)[name])}, name
