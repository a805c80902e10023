"""Every list read, written once as a query.

A query is a frozen dataclass: its fields are the parameters of the list's read, in the
order and with the defaults that ``CreditPool``'s method and the clients' method of the
same name take (both are made from the query: ``pool.py``'s ``reading`` and the client's
``_routes.pages``), and its class says the rest of what the interfaces need: the HTTP path
(under ``/v1/``, with the query's ids in braces), which field pages the list (``cursor``:
the list goes on past the item it names; the lists paged alike inherit it with its field
from ``AfterName``, ``OfOrgAfterName`` or ``NewestFirst``) and which of an item's
attributes names it (``item_key``). The HTTP route's query parameters are made from it too (``http/paging.py``'s
``Params``); the services and the repositories take the query as it is.

Only the standard library and the core are imported here: the repositories and the
client use it.
"""

from __future__ import annotations

import inspect
import string
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import ClassVar

from creditpool.core.statuses import CreditRequestStatus, DeliveryStatus

# A field's name in a request's query string, where it is not the field's own.
WIRE_NAMES = {"since": "from", "until": "to", "team_id": "team", "user_id": "user"}
LIMIT = "limit"


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """What every query's class says besides its fields, and the field every list has:
    ``limit``, the most items it answers (None: all of them)."""

    limit: int | None = None

    path: ClassVar[str]  # under /v1/; {field} is one of its ids
    cursor: ClassVar[str]  # the field that pages: where the list goes on from
    item_key: ClassVar[str] = "id"  # the attribute of an item that is its cursor
    # A list whose clients take it a page at a time (the cursor is the previous page's
    # ``next_cursor``): its page's parameters put the paging first (``orgs``), or last.
    paging_first: ClassVar[bool] = False

    @classmethod
    def path_ids(cls) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(cls.path) if name)

    @classmethod
    def filters(cls) -> tuple[str, ...]:
        """The fields that choose which items are listed: all but the path's ids, the
        cursor and the limit, in the method's order."""
        left_out = {*cls.path_ids(), cls.cursor, LIMIT}
        return tuple(p.name for p in cls.parameters() if p.name not in left_out)

    @classmethod
    def parameters(cls) -> list[inspect.Parameter]:
        """The query's fields as its method's parameters: the positional ones, then the
        keyword ones in the order the class declares them, the cursor and ``limit`` last."""

        def order(p: inspect.Parameter) -> int:  # a stable sort keeps the rest
            if p.kind is not p.KEYWORD_ONLY:
                return 0
            return {cls.cursor: 2, LIMIT: 3}.get(p.name, 1)

        return sorted(inspect.signature(cls).parameters.values(), key=order)

    @classmethod
    def method_signature(cls, result: str) -> inspect.Signature:
        """The signature of a method made from this query, which answers ``result``."""
        return inspect.Signature(cls.parameters(), return_annotation=result)

    @classmethod
    def doc(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")


@dataclass(frozen=True, slots=True, kw_only=True)
class AfterName(Query):
    """A list paged by its items' names (an id or a key, text): after the item ``after``."""

    cursor: ClassVar[str] = "after"

    after: str | None = None


@dataclass(frozen=True, slots=True)
class OfOrg(Query):
    """A list of one organization's: its id comes first."""

    org_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfOrgAfterName(OfOrg):
    """A list of one organization's paged by its items' names (an id, text): after the
    item ``after``."""

    cursor: ClassVar[str] = "after"

    after: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewestFirst(OfOrg):
    """A list of one organization's, newest first, paged by its items' numbers: older than
    the item ``before_id``."""

    cursor: ClassVar[str] = "before_id"

    before_id: int | None = None


# -- organizations, teams, members ----------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Orgs(AfterName):
    """Organizations in id order, only those whose id or name holds ``search`` (in any
    case) when given: after the organization ``after``, ``limit`` of them."""

    path: ClassVar[str] = "orgs"
    paging_first: ClassVar[bool] = True

    search: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Teams(OfOrgAfterName):
    """Teams in id order: after the team ``after``, ``limit`` of them (None: all)."""

    path: ClassVar[str] = "orgs/{org_id}/teams"


@dataclass(frozen=True, slots=True, kw_only=True)
class Members(OfOrgAfterName):
    """Members in user id order (only ``team_id``'s when given): after the user ``after``,
    ``limit`` of them (None: all)."""

    path: ClassVar[str] = "orgs/{org_id}/members"
    item_key: ClassVar[str] = "user_id"

    team_id: str | None = None


@dataclass(frozen=True, slots=True)
class TeamUsage(OfOrgAfterName):
    """Paid usage per team in a calendar month (``YYYY-MM``, the organization's zone;
    default: this month): the teams in id order after the team ``after``, then "no team",
    ``limit`` of them (None: all)."""

    path: ClassVar[str] = "orgs/{org_id}/usage/teams"
    item_key: ClassVar[str] = "team_id"

    month: str | None = None


# -- features -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Features(AfterName):
    """Features in key order: after the key ``after``, ``limit`` of them (None: all)."""

    path: ClassVar[str] = "features"
    item_key: ClassVar[str] = "key"


@dataclass(frozen=True, slots=True)
class FeaturePrices(Query):
    """Every price the feature has had, newest first (the first is the one in force):
    older than the row ``before_id``, ``limit`` of them (None: all)."""

    path: ClassVar[str] = "features/{key}/prices"
    cursor: ClassVar[str] = "before_id"

    key: str
    _: KW_ONLY
    before_id: int | None = None


# -- grants ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Grants(OfOrg):
    """Grants in id order, as of now: after the grant ``after_id``, ``limit`` of them
    (None: all)."""

    path: ClassVar[str] = "orgs/{org_id}/grants"
    cursor: ClassVar[str] = "after_id"

    after_id: int | None = None


# -- credit requests ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditRequests(NewestFirst):
    """Credit requests newest first (only those in ``status`` when given): older than
    ``before_id``, ``limit`` of them (None: all)."""

    path: ClassVar[str] = "orgs/{org_id}/credit-requests"

    status: CreditRequestStatus | None = None


# -- API keys and webhook endpoints ---------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Keys(AfterName):
    """API keys (revoked ones too, never a secret) in the order they were made: only
    ``org_id``'s when given (over HTTP it must be), after the key ``after``, ``limit`` of
    them (None: all)."""

    path: ClassVar[str] = "orgs/{org_id}/keys"

    org_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookEndpoints(AfterName):
    """Webhook endpoints in id order: after the endpoint ``after``, ``limit`` of them
    (None: all)."""

    path: ClassVar[str] = "webhook-endpoints"


# -- what happened in an organization's pool ------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Consumptions(NewestFirst):
    """Consumptions newest first (``status``: paid or refunded), those made at or after
    ``since`` and before ``until``, of ``feature``, ``user_id`` or ``team_id`` when given:
    older than ``before_id``, ``limit`` of them."""

    path: ClassVar[str] = "orgs/{org_id}/consumptions"

    since: datetime | None = None
    until: datetime | None = None
    feature: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Holds(NewestFirst):
    """Holds newest first (``status``: open, settled, released or expired): older than
    ``before_id``, ``limit`` of them."""

    path: ClassVar[str] = "orgs/{org_id}/holds"

    status: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Ledger(OfOrg):
    """Ledger entries in order, those at or after ``since`` and before ``until`` when
    given: after the entry ``after_seq``, ``limit`` of them."""

    path: ClassVar[str] = "orgs/{org_id}/ledger"
    cursor: ClassVar[str] = "after_seq"
    item_key: ClassVar[str] = "seq"

    since: datetime | None = None
    until: datetime | None = None
    after_seq: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Corrections(NewestFirst):
    """Staff corrections (who, when, why) newest first, of ``kind`` and of the grant
    ``grant_id`` when given: older than ``before_id``, ``limit`` of them."""

    path: ClassVar[str] = "orgs/{org_id}/corrections"

    kind: str | None = None
    grant_id: int | None = None


@dataclass(frozen=True, slots=True)
class AuditLog(Query):
    """The audit trail (settings, keys, portal links, refunds: who, when, what), newest
    first, an organization's or (``org_id`` None, in the library) every one: older than
    ``before_id``, ``limit`` of them."""

    path: ClassVar[str] = "orgs/{org_id}/audit"
    cursor: ClassVar[str] = "before_id"

    org_id: str | None = None
    _: KW_ONLY
    before_id: int | None = None


# -- events and webhook deliveries ----------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Events(OfOrg):
    """The organization's events newest first (only those of ``type`` when given): older
    than the event ``before`` (an event's id, to page), ``limit`` of them."""

    path: ClassVar[str] = "orgs/{org_id}/event-log"
    cursor: ClassVar[str] = "before"

    type: str | None = None
    before: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class WebhookDeliveries(Query):
    """The endpoint's deliveries newest first (only those in ``status`` when given), each
    with its attempts: older than the delivery ``before``, ``limit`` of them."""

    path: ClassVar[str] = "webhook-endpoints/{endpoint_id}/deliveries"
    cursor: ClassVar[str] = "before"

    endpoint_id: str
    _: KW_ONLY
    status: DeliveryStatus | None = None
    before: int | None = None
    limit: int = 50
