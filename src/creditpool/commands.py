"""Every change of an organization's ledger, written once as a command.

A command is a frozen dataclass: its fields are the parameters of the change, in the order
and with the defaults that ``CreditPool``'s method and the clients' method of the same
name take (both are made from the command: ``pool.py``'s ``mutation`` and the client's
``_operations.py``), and its class says the rest of what the interfaces need: the
operation's name, the HTTP method and path (under ``/v1/orgs/{org_id}/``, with the
command's ids in braces) and the model it answers. ``changes.py`` turns a command into the
change the one pipeline runs; the HTTP routes build one from a request.

Some changes name who made them (``granted_by``, ``by``, ``requested_by``). Over HTTP the
server fills that in from the caller's API key, so the client's command (``Grant``) lacks
the field and the library's (``GrantBy``) adds it; nothing else differs.

Only the standard library and the public models are imported here: the client uses it.
"""

from __future__ import annotations

import dataclasses
import inspect
import string
import typing
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeAlias, TypeVar

from pydantic import BaseModel

from creditpool import validation as check
from creditpool.consumptions.models import Consumption
from creditpool.consumptions.models import Refund as RefundResult
from creditpool.corrections.models import Adjustment
from creditpool.credit_requests.models import CreditRequest
from creditpool.grants.models import Grant as GrantResult
from creditpool.holds.models import Hold as HoldResult
from creditpool.models import Model

if TYPE_CHECKING:
    from creditpool.core.keys import ScopedKey

R = TypeVar("R", bound=BaseModel)
T = TypeVar("T")
Amount: TypeAlias = str | int | Decimal
# A key as a caller sends it; the HTTP layer scopes it to the calling API key (ScopedKey).
IdempotencyKey: TypeAlias = "str | ScopedKey"
# Rules of amounts: the client sends such a field as an exact decimal string.
AMOUNTS = frozenset({check.CREDITS, check.SIGNED_CREDITS, check.QUANTITY})
# Fields that are not the request's body: the request's key (a header) and the path's ids.
KEY = "idempotency_key"


@dataclass(frozen=True, slots=True, kw_only=True)
class Command(Generic[R]):
    """What every command's class says besides its fields, and the field every command
    has: the idempotency key (None: the change is not repeatable)."""

    idempotency_key: IdempotencyKey | None = None

    operation: ClassVar[str]  # its name in the idempotency fingerprint and the metrics
    method: ClassVar[str] = "POST"
    path: ClassVar[str]  # under /v1/orgs/{org_id}/; {field} is one of its ids
    result: ClassVar[type[Model]]  # the answer's model: the class's type argument, R
    success: ClassVar[int] = 201  # the HTTP status of a change made (a replay answers the same)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Command by name: the class @dataclass(slots=True) made, not the one this closes over.
        super(Command, cls).__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            answer = next(iter(typing.get_args(base)), None)
            if isinstance(answer, type) and issubclass(answer, Model):
                cls.result = answer

    @classmethod
    def path_ids(cls) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(cls.path) if name)

    @classmethod
    def body_fields(cls) -> tuple[str, ...]:
        """The fields sent in the request's body, in the method's order: all but the key
        and the path's ids."""
        left_out = {KEY, *cls.path_ids()}
        return tuple(p.name for p in cls.parameters() if p.name not in left_out)

    @classmethod
    def parameters(cls) -> list[inspect.Parameter]:
        """The command's fields as its method's parameters: the positional ones, then the
        change's own keyword fields, those it shares with other commands (``UseDetails``,
        ``Counted``), who made it (a library command's), and the idempotency key last."""
        concrete = next(k for k in cls.__mro__ if "operation" in vars(k))
        own = vars(concrete).get("__annotations__", {})
        by = vars(cls).get("__annotations__", {}) if cls is not concrete else {}

        def order(p: inspect.Parameter) -> int:  # a stable sort keeps the rest
            if p.kind is not p.KEYWORD_ONLY:
                return 0
            if p.name == KEY:
                return 4
            if p.name in by:
                return 3
            return 1 if p.name in own else 2

        return sorted(inspect.signature(cls).parameters.values(), key=order)

    @classmethod
    def doc(cls) -> str:
        """The documentation of the method made from this command: the change's and, for a
        library command that names who made the change, that field's after it."""
        own = [
            inspect.cleandoc(k.__doc__)
            for k in reversed(cls.__mro__)
            if ("operation" in vars(k) or k is cls)
            and "__doc__" in vars(k)
            and k.__doc__
            and not k.__doc__.startswith(k.__name__ + "(")
        ]
        return "\n\n".join(own)

    @classmethod
    def method_signature(cls) -> inspect.Signature:
        """The signature of the method made from this command: the organization's id, then
        the command's fields (``parameters``)."""
        org_id = inspect.Parameter(
            "org_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="str"
        )
        return inspect.Signature([org_id, *cls.parameters()], return_annotation=cls.result.__name__)

    def values(self, *left_out: str) -> dict[str, Any]:
        """The fields and their values, but the key and ``left_out``."""
        return {
            name: getattr(self, name)
            for name in _field_names(type(self))
            if name != KEY and name not in left_out
        }


def rule(kind: check.Rule) -> Mapping[str, check.Rule]:
    """A field's rule (``validation.Rule``) as its metadata: ``field(metadata=rule(...))``.
    The library checks the field by it, the HTTP body types it by it, the client sends an
    amount's as an exact decimal string."""
    return {"rule": kind}


Ruled: TypeAlias = tuple[tuple[str, check.Rule, bool], ...]


def rules(kind: type[Command[Any]]) -> Ruled:
    """Each field of ``kind`` that has a rule, in its method's order: its name, its rule,
    and whether its default is None (None is then "not given" and is not checked)."""
    return _once(_RULES, kind, _rules)


def _rules(kind: type[Command[Any]]) -> Ruled:
    declared = {f.name: f for f in dataclasses.fields(kind)}
    return tuple(
        (p.name, declared[p.name].metadata["rule"], p.default is None)
        for p in kind.parameters()
        if "rule" in declared[p.name].metadata
    )


def checked(command: Command[Any], *left_out: str) -> dict[str, Any]:
    """The command's fields that have a rule (but ``left_out``), each checked by it: as
    the change keeps them (amounts in units), or InvalidInput before anything is read."""
    found: dict[str, Any] = {}
    for name, kind, optional in rules(type(command)):
        if name not in left_out:
            value = getattr(command, name)
            found[name] = None if value is None and optional else kind.check(value, name)
    return found


_RULES: dict[type[Any], Ruled] = {}
_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _field_names(kind: type[Any]) -> tuple[str, ...]:
    return _once(_FIELD_NAMES, kind, lambda k: tuple(f.name for f in dataclasses.fields(k)))


def _once(found: dict[type[Any], T], kind: type[Any], make: Callable[[Any], T]) -> T:
    """What ``make`` says of a command's class, found once per class (``values`` and
    ``checked`` run on every change)."""
    made = found.get(kind)
    if made is None:
        made = found[kind] = make(kind)
    return made


# -- a use of a feature ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UseDetails(Command[R]):
    """What describes a use of a feature, beside its price: a consumption's, a hold's and
    a settle's (which takes the hold's for those it leaves out)."""

    feature_name: str | None = field(default=None, metadata=rule(check.FEATURE_NAME))
    action: str | None = field(default=None, metadata=rule(check.ACTION))
    integration: str | None = field(default=None, metadata=rule(check.SHORT_TEXT))
    metadata: Mapping[str, Any] | None = field(default=None, metadata=rule(check.METADATA))


@dataclass(frozen=True, slots=True, kw_only=True)
class Counted(UseDetails[R]):
    """A use that was carried out: what it processed, beside its details."""

    breakdown: Mapping[str, int] | None = field(default=None, metadata=rule(check.BREAKDOWN))
    requests: int | None = field(default=None, metadata=rule(check.COUNT))


@dataclass(frozen=True, slots=True)
class Consume(Counted[Consumption]):
    """Charge one use of ``feature`` by ``user_id``: all or nothing.

    Raises InsufficientCredits (nothing charged; over HTTP ``extra["left"]`` and
    ``extra["required"]``) when Left < cost. With ``dry_run`` the answer shows the cost and
    the grants it would draw from, and nothing is written.
    """

    operation: ClassVar[str] = "consume"
    path: ClassVar[str] = "consumptions"

    feature: str = field(metadata=rule(check.ID))
    _: KW_ONLY
    user_id: str = field(metadata=rule(check.ID))
    quantity: Amount | None = field(default=None, metadata=rule(check.QUANTITY))
    dry_run: bool = field(default=False, metadata=rule(check.FLAG))


@dataclass(frozen=True, slots=True)
class Hold(UseDetails[HoldResult]):
    """Reserve credits for a use of ``feature`` whose cost is known only at its end:
    ``amount`` credits, or the catalog's price of ``quantity`` (of one use when neither is
    given), drawn like a consumption, for ``ttl_s`` seconds (default: the pool's). Held
    credits are in the balance's ``held``, out of Left. Raises InsufficientCredits when
    Left < amount."""

    operation: ClassVar[str] = "hold"
    path: ClassVar[str] = "holds"

    feature: str = field(metadata=rule(check.ID))
    _: KW_ONLY
    user_id: str = field(metadata=rule(check.ID))
    quantity: Amount | None = field(default=None, metadata=rule(check.QUANTITY))
    amount: Amount | None = field(default=None, metadata=rule(check.CREDITS))
    ttl_s: int | None = field(default=None, metadata=rule(check.SECONDS))


@dataclass(frozen=True, slots=True)
class Settle(Counted[Consumption]):
    """Turn an open hold into one paid consumption of the real cost (``cost``, or the
    catalog's price of ``quantity`` now; neither: the price now of the hold's quantity, or
    else the amount held). Fields not given are the hold's. Above the hold, the difference
    is charged from the other credits (InsufficientCredits when they cannot pay it: the
    hold stays open); below, the rest goes back to Left. Raises HoldNotOpen when the hold
    was settled, released or ran out."""

    operation: ClassVar[str] = "settle"
    path: ClassVar[str] = "holds/{hold_id}/settle"

    hold_id: int
    _: KW_ONLY
    cost: Amount | None = field(default=None, metadata=rule(check.CREDITS))
    quantity: Amount | None = field(default=None, metadata=rule(check.QUANTITY))
    user_id: str | None = field(default=None, metadata=rule(check.ID))


@dataclass(frozen=True, slots=True)
class Release(Command[HoldResult]):
    """Give all of an open hold's credits back (what was held on grants that expired or
    were voided meanwhile is ``lost``). Raises HoldNotOpen when it is not open."""

    operation: ClassVar[str] = "release"
    path: ClassVar[str] = "holds/{hold_id}/release"
    success: ClassVar[int] = 200

    hold_id: int


@dataclass(frozen=True, slots=True)
class Refund(Command[RefundResult]):
    """Refund a paid consumption; a second refund returns the first result."""

    operation: ClassVar[str] = "refund"
    path: ClassVar[str] = "consumptions/{consumption_id}/refund"
    success: ClassVar[int] = 200

    consumption_id: int
    _: KW_ONLY
    reason: str | None = field(default=None, metadata=rule(check.TEXT))


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundBy(Refund):
    """``by``: who refunded it (the audit trail; not part of the request's fingerprint, so
    a retry names the same refund whoever sends it)."""

    by: str | None = None


# -- grants and corrections -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grant(Command[GrantResult]):
    """Deposit ``amount`` credits. Permanent unless ``expires_at``; usable from
    ``available_from`` (default: now). Over HTTP a staff key; ``granted_by`` is its name."""

    operation: ClassVar[str] = "grant"
    path: ClassVar[str] = "grants"

    amount: Amount = field(metadata=rule(check.CREDITS))
    _: KW_ONLY
    expires_at: datetime | None = field(default=None, metadata=rule(check.INSTANT))
    available_from: datetime | None = field(default=None, metadata=rule(check.INSTANT))
    note: str | None = field(default=None, metadata=rule(check.TEXT))
    reference: str | None = field(default=None, metadata=rule(check.SHORT_TEXT))


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantBy(Grant):
    """``granted_by``: who granted the credits."""

    granted_by: str | None = None


@dataclass(frozen=True, slots=True)
class VoidGrant(Command[GrantResult]):
    """Void a mistaken grant: its remaining credits leave the pool (a ledger entry). With
    ``amount``, only that much of what it has left (a staff correction: ``by`` is
    required); the grant stays, holding that much less."""

    operation: ClassVar[str] = "void"
    path: ClassVar[str] = "grants/{grant_id}/void"
    success: ClassVar[int] = 200

    grant_id: int
    _: KW_ONLY
    amount: Amount | None = field(default=None, metadata=rule(check.CREDITS))
    reason: str | None = field(default=None, metadata=rule(check.TEXT))


@dataclass(frozen=True, slots=True, kw_only=True)
class VoidGrantBy(VoidGrant):
    """``by``: who voided it (required for a part)."""

    by: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeGrantExpiry(Command[GrantResult]):
    """Move a grant's expiry earlier or later (None: permanent), never to an instant that
    has passed; a ledger ``expiry_change`` entry records it. Staff."""

    operation: ClassVar[str] = "change_expiry"
    method: ClassVar[str] = "PATCH"
    path: ClassVar[str] = "grants/{grant_id}"
    success: ClassVar[int] = 200

    grant_id: int
    expires_at: datetime | None = field(metadata=rule(check.INSTANT))
    _: KW_ONLY
    reason: str | None = field(default=None, metadata=rule(check.TEXT))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeGrantExpiryBy(ChangeGrantExpiry):
    """``by``: who moved it (required)."""

    by: str


@dataclass(frozen=True, slots=True)
class Adjust(Command[Adjustment]):
    """A manual adjustment (goodwill, a correction that is not a use of a feature):
    negative ``credits`` are debited like a consumption (refused with
    ``InsufficientCredits`` when Left is short), positive ones given back like a refund.
    Staff."""

    operation: ClassVar[str] = "adjust"
    path: ClassVar[str] = "adjustments"

    credits: Amount = field(metadata=rule(check.SIGNED_CREDITS))
    _: KW_ONLY
    reason: str = field(metadata=rule(check.TEXT))


@dataclass(frozen=True, slots=True, kw_only=True)
class AdjustBy(Adjust):
    """``by``: who made the adjustment (required)."""

    by: str


# -- credit requests --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestCredits(Command[CreditRequest]):
    """An organization admin asks for more credits: a ``credits.requested`` event (over
    HTTP ``requested_by`` is the caller)."""

    operation: ClassVar[str] = "request_credits"
    path: ClassVar[str] = "credit-requests"

    amount: Amount = field(metadata=rule(check.CREDITS))
    _: KW_ONLY
    message: str | None = field(default=None, metadata=rule(check.TEXT))


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCreditsBy(RequestCredits):
    """``requested_by``: who asks."""

    requested_by: str


@dataclass(frozen=True, slots=True)
class GrantCreditRequest(Command[GrantResult]):
    """Answer an open request with a grant (of the amount asked for unless ``amount``),
    which closes it (over HTTP ``by`` is the caller)."""

    operation: ClassVar[str] = "grant_credit_request"
    path: ClassVar[str] = "credit-requests/{request_id}/grant"

    request_id: int
    _: KW_ONLY
    amount: Amount | None = field(default=None, metadata=rule(check.CREDITS))
    expires_at: datetime | None = field(default=None, metadata=rule(check.INSTANT))
    note: str | None = field(default=None, metadata=rule(check.TEXT))


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantCreditRequestBy(GrantCreditRequest):
    """``by``: who granted it."""

    by: str | None = None


@dataclass(frozen=True, slots=True)
class DismissCreditRequest(Command[CreditRequest]):
    """Close an open request without a grant."""

    operation: ClassVar[str] = "dismiss_credit_request"
    path: ClassVar[str] = "credit-requests/{request_id}/dismiss"
    success: ClassVar[int] = 200

    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DismissCreditRequestBy(DismissCreditRequest):
    """``by``: who dismissed it."""

    by: str | None = None
