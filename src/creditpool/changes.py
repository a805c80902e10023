"""The one change pipeline: every ledger mutation, single or batched, runs through
``Runner.run``.

A ``Change`` is one command (grant, void, consume, refund, hold, settle, release): its operation, its arguments'
fingerprint, its idempotency key and the service call that applies it to an organization's
writer. ``run`` takes a batch of changes of one organization (a single call is a batch of
one) and, in ONE transaction:

1. locks the organization (``OrgWriter.lock``), reading the first key's record and the live
   grants in the same round trip, and writes the availability/expiry entries that fell due;
2. for each change: a key seen earlier in the batch replays that first answer (or is
   refused when the arguments differ); a known key replays its stored result; a scoped key
   used in another organization is refused; otherwise the change is applied;
3. writes back the grants, the ledger entries and the counters, records every new key's
   result (and a scoped key's claim) in the same write pipeline, and commits.

Each answer is an ``Outcome``: the result, or the refusal, and ``replayed`` when the key was
known. A single library call raises its refusal inside the transaction (nothing is
written); in a batch a refused change writes nothing and leaves the others untouched, which
every service guarantees by refusing before it writes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Generic, Protocol, TypeVar, cast

from pydantic import BaseModel

from creditpool import commands as cmd
from creditpool import validation as check
from creditpool.consumptions import service as consumptions
from creditpool.consumptions.models import Consumption, Refund
from creditpool.consumptions.service import ConsumeRequest
from creditpool.core.errors import CreditPoolError, IdempotencyConflict
from creditpool.core.money import parse_credits
from creditpool.corrections import service as corrections
from creditpool.corrections.models import Adjustment
from creditpool.credit_requests import service as credit_requests
from creditpool.credit_requests.models import CreditRequest
from creditpool.grants import service as grants
from creditpool.grants.models import Grant
from creditpool.holds import service as holds
from creditpool.holds.models import Hold
from creditpool.idempotency import service as idempotency
from creditpool.idempotency.service import ScopedKey
from creditpool.ledger.writer import OrgWriter, ReadAhead
from creditpool.repositories import idempotency as idempotency_repo
from creditpool.settings import HOLD_TTL_S_DEFAULT, HOLD_TTL_S_MAX
from creditpool.storage.conflicts import lost_a_race
from creditpool.storage.engine import pipelined
from creditpool.storage.uow import Database
from creditpool.validation import positive_id

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
IdempotencyKey = str | ScopedKey
# Runs of one transaction that lost a race (see ``storage.conflicts.lost_a_race``): the
# second run sees what the winner committed, so more than two is already unusual.
RACE_ATTEMPTS = 4
Announcing = Callable[[], AbstractContextManager[list[OrgWriter]]]


@dataclass(frozen=True)  # no slots: ``Outcome[X](...)`` sets ``__orig_class__``
class Outcome(Generic[M]):
    """One change's answer: its result (``replayed`` when its key was known) or its
    refusal."""

    result: M | None = None
    error: CreditPoolError | None = None
    replayed: bool = False

    def unwrap(self) -> M:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@dataclass(frozen=True, slots=True, eq=False)
class Change(Generic[M]):
    """One command, parsed and checked: what ``run`` applies under the organization's lock."""

    operation: str
    arguments: dict[str, Any]
    model: type[M]
    apply: Callable[[OrgWriter], M]
    idempotency_key: IdempotencyKey | None = None
    # A read ``apply`` will make, made with the lock when this change comes first.
    read_ahead: Callable[[str], ReadAhead] | None = None
    key: str | None = field(init=False)
    scoped: ScopedKey | None = field(init=False)
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        key, scoped = idempotency.parse_key(self.idempotency_key)
        digest = idempotency.fingerprint(self.operation, self.arguments) if key else ""
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "scoped", scoped)
        object.__setattr__(self, "digest", digest)

    @property
    def shown_key(self) -> str:
        """The key as its caller sent it (for messages)."""
        return self.scoped.key if self.scoped is not None else self.key or ""

    @property
    def scoped_pair(self) -> tuple[str, str] | None:
        return (self.scoped.scope, self.scoped.key) if self.scoped is not None else None


AnyChange = Change[Any]
AnyOutcome = Outcome[Any]


@dataclass(frozen=True, slots=True)
class Runner:
    """Runs batches of changes on one database (``CreditPool`` holds one)."""

    db: Database
    announcing: Announcing

    def run(self, org_id: str, changes: list[AnyChange], *, raising: bool) -> list[AnyOutcome]:
        """Apply ``changes`` to ``org_id`` in one transaction, in order (see the module).
        With ``raising`` a refusal raises inside the transaction (nothing at all is
        written); otherwise it is its change's outcome and the others go on."""
        keyed = any(c.key is not None for c in changes)
        for attempt in range(1, RACE_ATTEMPTS + 1):
            try:
                return self._run_once(org_id, changes, raising)
            except Exception as error:
                # Without a key nothing can collide: one writer per organization.
                if not keyed or attempt == RACE_ATTEMPTS or not lost_a_race(error):
                    raise
                log.info("a change lost a race on an idempotency key and runs again: %s", error)
        raise AssertionError("unreachable")

    def _run_once(self, org_id: str, changes: list[AnyChange], raising: bool) -> list[AnyOutcome]:
        # The first key is read with the lock (a batch of one, the usual case, then costs
        # no extra round trip); the others each with one query.
        first = next((c for c in changes if c.key is not None), None)
        ahead = changes[0].read_ahead if changes else None
        with self.announcing() as done, self.db.write() as tx:
            w = OrgWriter.lock(
                tx,
                org_id,
                first.key if first is not None else None,
                first.scoped_pair if first is not None else None,
                ahead(org_id) if ahead is not None else None,
            )
            done.append(w)
            batch = _Batch(w)
            outcomes = [batch.answer(c, c is first, raising=raising) for c in changes]
            # The writes below read nothing back; the COMMIT travels with them.
            with pipelined(tx.conn, commit=True):
                w.finish()
                batch.record(tx.now)
        return outcomes


@dataclass(frozen=True, slots=True)
class _AnsweredInBatch:
    """A key this batch has already answered. A later change of the batch with the same
    key gets that answer again (same operation and arguments) or is refused, as if the
    first had been recorded, though nothing is stored until the batch commits."""

    change: AnyChange
    outcome: AnyOutcome

    def replay(self, change: AnyChange) -> AnyOutcome:
        first = self.change
        if (first.operation, first.digest) != (change.operation, change.digest):
            raise IdempotencyConflict(
                f"idempotency key {change.shown_key!r} was already used with other arguments",
                key=change.shown_key,
            )
        return Outcome(result=self.outcome.result, replayed=True)


class _Batch:
    """The keys a batch has answered so far, and the records it will write."""

    def __init__(self, w: OrgWriter) -> None:
        self.w = w
        self.seen: dict[str, _AnsweredInBatch] = {}

    def answer(self, change: AnyChange, with_lock: bool, *, raising: bool) -> AnyOutcome:
        try:
            outcome = self._answer(change, with_lock)
        except CreditPoolError as error:
            if raising:
                raise
            outcome = Outcome(error=error)
        if change.key is not None and outcome.result is not None:
            self.seen.setdefault(change.key, _AnsweredInBatch(change, outcome))
        return outcome

    def _answer(self, change: AnyChange, with_lock: bool) -> AnyOutcome:
        key = change.key
        if key is None:
            return Outcome(result=change.apply(self.w))
        if key in self.seen:  # the same key twice in one batch: the second replays
            return self.seen[key].replay(change)
        if with_lock:
            stored_key, claim = self.w.key_record
        else:
            scope, scoped_key = change.scoped_pair or (None, None)
            stored_key, claim = idempotency_repo.get(
                self.w.conn, self.w.org_id, key, scope, scoped_key
            )
        idempotency.check_scope(claim, self.w.org_id, change.scoped)
        stored = idempotency.replay(stored_key, change.shown_key, change.operation, change.digest)
        if stored is not None:
            return Outcome(result=change.model.model_validate(stored), replayed=True)
        return Outcome(result=change.apply(self.w))

    def record(self, now: Any) -> None:
        """Store each new key's result (and a scoped key's claim, in key order so that two
        batches never wait on each other's claims)."""
        claims: list[tuple[str, str, str, str]] = []
        for key, answered in self.seen.items():
            change, outcome = answered.change, answered.outcome
            if outcome.replayed or outcome.result is None:
                continue
            idempotency_repo.insert(
                self.w.conn,
                org_id=self.w.org_id,
                key=key,
                operation=change.operation,
                request_hash=change.digest,
                result=outcome.result.model_dump(mode="json"),
                created_at=now,
            )
            if change.scoped is not None:
                claims.append(
                    (change.scoped.scope, change.scoped.key, self.w.org_id, change.digest)
                )
        if claims:
            idempotency_repo.claim(self.w.conn, claims, now)


# -- the commands ----------------------------------------------------------------------


class HoldLimits(Protocol):
    """How long a hold lasts unless asked otherwise, and at most (the pool's settings)."""

    @property
    def hold_ttl_s_default(self) -> int: ...

    @property
    def hold_ttl_s_max(self) -> int: ...


@dataclass(frozen=True, slots=True)
class DefaultLimits:
    hold_ttl_s_default: int = HOLD_TTL_S_DEFAULT
    hold_ttl_s_max: int = HOLD_TTL_S_MAX


def of(command: cmd.Command[M], limits: HoldLimits = DefaultLimits()) -> Change[M]:
    """The change that runs ``command`` (parsed and checked now: a bad argument raises
    InvalidInput before any transaction)."""
    for kind in type(command).__mro__:
        make = _MAKERS.get(kind)
        if make is not None:
            return cast(Change[M], make(command, limits))
    raise TypeError(f"{type(command).__name__} is not a command of the ledger")


def _change(
    c: cmd.Command[M], args: dict[str, Any], apply: Callable[[OrgWriter], Any]
) -> Change[M]:
    return Change(c.operation, args, cast(type[M], c.result), apply, c.idempotency_key)


def _by(c: object, name: str = "by") -> Any:
    """Who made the change: the library's commands name it (``GrantBy``...), the client's
    do not (the server fills it in)."""
    return getattr(c, name, None)


def _grant(c: cmd.Grant, _: HoldLimits) -> Change[Grant]:
    req = grants.GrantRequest.parse(**c.values())  # granted_by: the library's GrantBy
    return _change(c, req.arguments(), lambda w: grants.grant(w, req))


def _void(c: cmd.VoidGrant, _: HoldLimits) -> Change[Grant]:
    """Void a grant whole, or ``amount`` of what it has left (staff: ``by`` is then
    required)."""
    gid = positive_id(c.grant_id, "grant id")
    if c.amount is not None:
        credits = parse_credits(c.amount)
        named = corrections.parse_by(_by(c))
        why = corrections.parse_reason(c.reason)
        args = {"grant_id": gid, "amount": credits, "by": named, "reason": why}
        return _change(c, args, lambda w: grants.void_part(w, gid, credits, named, why))
    by = check.text(_by(c), "by")
    reason = check.text(c.reason, "reason", check.TEXT_LENGTH_MAX)
    args = {"grant_id": c.grant_id, "by": by, "reason": reason}
    return _change(c, args, lambda w: grants.void(w, gid, by, reason))


def _change_expiry(c: cmd.ChangeGrantExpiry, _: HoldLimits) -> Change[Grant]:
    gid = positive_id(c.grant_id, "grant id")
    when = check.aware(c.expires_at, "expires_at")
    at = None if when is None else when.astimezone(UTC)
    named = corrections.parse_by(_by(c))
    why = corrections.parse_reason(c.reason)
    args = {"grant_id": gid, "expires_at": at, "by": named, "reason": why}
    return _change(c, args, lambda w: grants.change_expiry(w, gid, at, named, why))


def _adjust(c: cmd.Adjust, _: HoldLimits) -> Change[Adjustment]:
    units, why, named = corrections.parse_adjustment(c.credits, c.reason, _by(c))
    args = {"credits": units, "reason": why, "by": named}
    return _change(c, args, lambda w: corrections.adjust(w, units, why, named))


def _consume(c: cmd.Consume, _: HoldLimits) -> Change[Consumption]:
    req = consume_request(c)
    return Change(
        "consume",
        req.arguments(),
        Consumption,
        lambda w: consumptions.consume(w, req),
        c.idempotency_key,
        lambda org_id: consumptions.read_ahead(org_id, req),
    )


# What describes a use (``commands.UseDetails``, ``Counted``): in every use's request and
# fingerprint, None where the command lacks the field (a hold has no breakdown).
_DETAILS = tuple(f.name for f in dataclasses.fields(cmd.Counted) if "rule" in f.metadata)


def details_of(checked: dict[str, Any]) -> dict[str, Any]:
    """What describes a use, of a command's checked fields: every such field, None where
    the command lacks it."""
    return {name: checked.get(name) for name in _DETAILS}


def use_of(checked: dict[str, Any]) -> ConsumeRequest:
    """A use of a feature from a command's checked fields (``commands.checked``)."""
    return ConsumeRequest(
        feature=checked["feature"],
        user_id=checked["user_id"],
        quantity=checked["quantity"],
        details=details_of(checked),
    )


def consume_request(c: cmd.Consume) -> ConsumeRequest:
    return use_of(cmd.checked(c, "dry_run"))


def _refund(c: cmd.Refund, _: HoldLimits) -> Change[Refund]:
    """``by`` is the audit trail's: not part of the request's fingerprint, so a retry
    names the same refund whoever sends it."""
    reason = check.text(c.reason, "reason", check.TEXT_LENGTH_MAX)
    who = check.text(_by(c), "by")
    cid = positive_id(c.consumption_id, "consumption id")
    args = {"consumption_id": cid, "reason": reason}
    return _change(c, args, lambda w: consumptions.refund(w, cid, reason, who))


def _hold(c: cmd.Hold, limits: HoldLimits) -> Change[Hold]:
    v = cmd.checked(c, "ttl_s")  # its most is the pool's setting: HoldRequest.of checks it
    req = holds.HoldRequest.of(
        use_of(v),
        v["amount"],
        c.ttl_s,
        ttl_s_default=limits.hold_ttl_s_default,
        ttl_s_max=limits.hold_ttl_s_max,
    )
    return _change(c, req.arguments(), lambda w: holds.hold(w, req))


def _settle(c: cmd.Settle, _: HoldLimits) -> Change[Consumption]:
    hid = positive_id(c.hold_id, "hold id")
    v = cmd.checked(c)
    req = holds.SettleRequest(v["cost"], v["quantity"], v["user_id"], details_of(v))
    args = {"hold_id": hid, **req.arguments()}
    return _change(c, args, lambda w: holds.settle(w, hid, req))


def _release(c: cmd.Release, _: HoldLimits) -> Change[Hold]:
    hid = positive_id(c.hold_id, "hold id")
    return _change(c, {"hold_id": hid}, lambda w: holds.release(w, hid))


def _request_credits(c: cmd.RequestCredits, _: HoldLimits) -> Change[CreditRequest]:
    requested_by = _by(c, "requested_by")
    args = {"amount": str(c.amount), "requested_by": requested_by, "message": c.message}
    return _change(c, args, lambda w: credit_requests.request(w, c.amount, c.message, requested_by))


def _grant_credit_request(c: cmd.GrantCreditRequest, _: HoldLimits) -> Change[Grant]:
    rid = positive_id(c.request_id, "credit request id")
    fields = {"expires_at": c.expires_at, "granted_by": _by(c), "note": c.note}
    amount = c.amount
    if amount is not None:  # checked before the transaction; else what was asked for
        grants.GrantRequest.parse(amount, **fields)
    args = {"request_id": rid, "amount": None if amount is None else str(amount), **fields}
    return _change(c, args, lambda w: credit_requests.grant(w, rid, amount, fields))


def _dismiss_credit_request(c: cmd.DismissCreditRequest, _: HoldLimits) -> Change[CreditRequest]:
    rid = positive_id(c.request_id, "credit request id")
    by = _by(c)
    return _change(c, {"request_id": rid, "by": by}, lambda w: credit_requests.dismiss(w, rid, by))


_MAKERS: dict[type[Any], Callable[[Any, HoldLimits], AnyChange]] = {
    cmd.Grant: _grant,
    cmd.VoidGrant: _void,
    cmd.ChangeGrantExpiry: _change_expiry,
    cmd.Adjust: _adjust,
    cmd.Consume: _consume,
    cmd.Refund: _refund,
    cmd.Hold: _hold,
    cmd.Settle: _settle,
    cmd.Release: _release,
    cmd.RequestCredits: _request_credits,
    cmd.GrantCreditRequest: _grant_credit_request,
    cmd.DismissCreditRequest: _dismiss_credit_request,
}
