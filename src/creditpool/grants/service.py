"""Granting and voiding credits."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from creditpool import validation as check
from creditpool.core.errors import (
    GrantCreditsShort,
    GrantExpired,
    GrantVoided,
    InvalidInput,
    NotFound,
    PoolLimitExceeded,
)
from creditpool.core.events import EventType
from creditpool.core.grants import GrantRow, GrantState, check_bounds
from creditpool.core.ledger import LedgerAction, LedgerMethod
from creditpool.core.money import (
    MAX_POOL_CREDITS,
    MAX_POOL_UNITS,
    format_credits,
    parse_credits,
    to_decimal,
)
from creditpool.core.timeline import LedgerDraft
from creditpool.corrections import service as corrections
from creditpool.corrections.models import CorrectionKind
from creditpool.grants.models import Grant
from creditpool.ledger.service import append_move, left_now
from creditpool.ledger.writer import OrgWriter, as_of
from creditpool.queries import Grants
from creditpool.repositories import grants as repository
from creditpool.repositories.rows import as_model
from creditpool.storage.types import DbRow
from creditpool.storage.uow import Tx


@dataclass(frozen=True, slots=True)
class GrantRequest:
    amount: int
    expires_at: datetime | None
    available_from: datetime | None
    granted_by: str | None
    note: str | None
    reference: str | None

    @classmethod
    def parse(cls, amount: object, **fields: Any) -> GrantRequest:
        expires_at = check.aware(fields.get("expires_at"), "expires_at")
        available_from = check.aware(fields.get("available_from"), "available_from")
        if expires_at is not None and available_from is not None and expires_at <= available_from:
            raise InvalidInput("expires_at must be after available_from")
        return cls(
            amount=parse_credits(amount),
            expires_at=None if expires_at is None else expires_at.astimezone(UTC),
            available_from=None if available_from is None else available_from.astimezone(UTC),
            granted_by=check.text(fields.get("granted_by"), "granted_by"),
            note=check.text(fields.get("note"), "note", check.TEXT_LENGTH_MAX),
            reference=check.text(fields.get("reference"), "reference"),
        )

    def arguments(self) -> dict[str, Any]:
        return {
            "amount": self.amount,
            "expires_at": self.expires_at,
            "available_from": self.available_from,
            "granted_by": self.granted_by,
            "note": self.note,
            "reference": self.reference,
        }


def grant(w: OrgWriter, req: GrantRequest) -> Grant:
    available_from = req.available_from or w.now
    if req.expires_at is not None and req.expires_at <= max(available_from, w.now):
        raise InvalidInput("expires_at must be in the future and after available_from")
    _check_pool_limit(w, req.amount)
    gid = w.new_id()
    values = {
        "org_id": w.org_id,
        "id": gid,
        "amount": req.amount,
        "remaining": req.amount,
        "granted_at": w.now,
        "available_from": available_from,
        "expires_at": req.expires_at,
        "note": req.note,
        "reference": req.reference,
        "granted_by": req.granted_by,
        "voided_credits": 0,
        "added_logged": False,
        "expiry_logged": False,
    }
    repository.insert(w.conn, **values)
    w.add_grant(GrantRow(gid, req.amount, req.amount, w.now, available_from, req.expires_at))
    w.catch_up()  # available now: the grant_added entry is written at once
    row = repository.get(w.conn, w.org_id, gid)
    assert row is not None
    granted = to_model(row, w.now, remaining=req.amount)
    w.emit_model(EventType.GRANT_CREATED, granted)
    return granted


def _check_pool_limit(w: OrgWriter, amount: int) -> None:
    """Every sum of an organization's credits stays far inside a 64-bit integer of units:
    what it was ever granted (net of voided credits) is capped at ``MAX_POOL_CREDITS``."""
    granted = repository.granted_units(w.conn, w.org_id)
    if granted + amount > MAX_POOL_UNITS:
        room = max(0, MAX_POOL_UNITS - granted)
        raise PoolLimitExceeded(
            f"organization {w.org_id!r} may be granted at most {MAX_POOL_CREDITS} credits in all"
            f" (net of voided credits); it was granted {format_credits(granted)}, so this grant"
            f" may be at most {format_credits(room)}",
            granted=to_decimal(granted),
            limit=to_decimal(MAX_POOL_UNITS),
        )


def _correctable(w: OrgWriter, grant_id: int) -> tuple[DbRow, GrantRow]:
    """The grant's row and live working copy; refused when it is gone from the pool."""
    row = repository.get(w.conn, w.org_id, grant_id)
    if row is None:
        raise NotFound(f"grant {grant_id} not found in organization {w.org_id!r}")
    if row.voided_at is not None:
        raise GrantVoided(f"grant {grant_id} was already voided at {row.voided_at.isoformat()}")
    current = w.grants().get(grant_id)
    if current is None or current.state_at(w.now) is GrantState.EXPIRED:
        expired = row.expires_at.isoformat() if row.expires_at is not None else "?"
        raise GrantExpired(f"grant {grant_id} expired at {expired}: its credits left the pool")
    return row, current


def change_expiry(
    w: OrgWriter, grant_id: int, expires_at: datetime | None, by: str, reason: str | None
) -> Grant:
    """Move a grant's expiry, earlier or later (None: permanent), never to an instant that
    has passed: a balance at any past instant stays what it was. A ledger entry of no
    credits records it, with the correction's before and after."""
    row, current = _correctable(w, grant_id)
    if expires_at is not None:
        if expires_at <= w.now:
            raise InvalidInput(f"expires_at must be in the future (now is {w.now.isoformat()})")
        if expires_at <= current.available_from:
            raise InvalidInput("expires_at must be after available_from")
    before = current.expires_at
    if before == expires_at:  # nothing to change: no entry, no record
        return to_model(row, w.now, remaining=current.remaining, held=current.held)
    cid = corrections.record(
        w,
        CorrectionKind.EXPIRY_CHANGE,
        by,
        reason,
        grant_id=grant_id,
        expires_before=before,
        expires_after=expires_at,
    )
    repository.set_expiry(w.conn, w.org_id, grant_id, expires_at)
    current.expires_at = expires_at
    current.expiry_noticed = False  # a new date: the notice period counts from it
    left = left_now(w)
    w.append(
        LedgerDraft(
            w.now,
            LedgerAction.EXPIRY_CHANGE,
            LedgerMethod.CHANGED,
            0,
            left,
            left,
            grant_id=grant_id,
            correction_id=cid,
        )
    )
    return _corrected(
        w,
        current,
        EventType.GRANT_EXPIRY_CHANGED,
        expires_before=None if before is None else before.isoformat(),
        correction_id=cid,
        by=by,
        reason=reason,
    )


def _corrected(w: OrgWriter, current: GrantRow, event: EventType, **extra: Any) -> Grant:
    """The grant as a correction left it (read back), announced by ``event``."""
    changed = repository.get(w.conn, w.org_id, current.id)
    assert changed is not None
    model = to_model(changed, w.now, remaining=current.remaining, held=current.held)
    w.emit_model(event, model, **extra)
    return model


def void_part(w: OrgWriter, grant_id: int, credits: int, by: str, reason: str | None) -> Grant:
    """Void ``credits`` of what a grant has left; the grant stays, holding that much less
    (so Used does not move). Credits held by open holds cannot be voided."""
    _row, current = _correctable(w, grant_id)
    if credits > current.remaining:
        raise GrantCreditsShort(
            f"grant {grant_id} has {to_decimal(current.remaining)} credits left to void"
            f" (held credits excluded), not {to_decimal(credits)}",
            remaining=to_decimal(current.remaining),
        )
    before = left_now(w)
    was_active = current.is_active(w.now)
    cid = corrections.record(
        w, CorrectionKind.PARTIAL_VOID, by, reason, grant_id=grant_id, credits=credits
    )
    repository.void_part(w.conn, w.org_id, grant_id, credits)
    current.remaining -= credits
    current.amount -= credits
    check_bounds(current)
    if was_active:  # a pending grant's credits are not in Left yet: no entry moves them
        append_move(
            w,
            before,
            LedgerAction.VOID,
            LedgerMethod.VOIDED,
            credits,
            grant_id=grant_id,
            correction_id=cid,
        )
    return _corrected(
        w,
        current,
        EventType.GRANT_VOIDED,
        credits_voided=str(to_decimal(credits)),
        partial=True,
        correction_id=cid,
    )


def void(w: OrgWriter, grant_id: int, by: str | None, reason: str | None) -> Grant:
    row = repository.get(w.conn, w.org_id, grant_id)
    if row is None:
        raise NotFound(f"grant {grant_id} not found in organization {w.org_id!r}")
    if row.voided_at is not None:
        raise GrantVoided(f"grant {grant_id} was already voided at {row.voided_at.isoformat()}")
    live = w.grants()
    current = live.get(grant_id)
    remaining = current.remaining if current is not None else row.remaining
    before = left_now(w)
    was_active = current is not None and current.is_active(w.now)
    repository.void(
        w.conn,
        w.org_id,
        grant_id,
        voided_at=w.now,
        voided_by=by,
        void_reason=reason,
        voided_credits=remaining,
    )
    w.forget_grant(grant_id)
    cid = corrections.record(
        w, CorrectionKind.VOID, by, reason, grant_id=grant_id, credits=remaining
    )
    if was_active and remaining:
        append_move(
            w,
            before,
            LedgerAction.VOID,
            LedgerMethod.VOIDED,
            remaining,
            grant_id=grant_id,
            correction_id=cid,
        )
    voided = repository.get(w.conn, w.org_id, grant_id)
    assert voided is not None
    model = to_model(voided, w.now)
    w.emit_model(
        EventType.GRANT_VOIDED,
        model,
        credits_voided=str(to_decimal(remaining)),
        partial=False,
        correction_id=cid,
    )
    return model


def get(tx: Tx, org_id: str, grant_id: int) -> Grant:
    row = repository.get(tx.conn, org_id, grant_id)
    if row is None:
        raise NotFound(f"grant {grant_id} not found in organization {org_id!r}")
    return _models(tx, org_id, [row])[0]


def list_for_org(tx: Tx, asked: Grants) -> list[Grant]:
    """In id order. Every grant is read, since the holds that ran out give credits back
    across all of them (``_models``); the page is cut from the result."""
    found = _models(tx, asked.org_id, repository.list_for_org(tx.conn, asked.org_id))
    after_id, limit = asked.after_id, asked.limit
    start = 0 if after_id is None else bisect.bisect_right([g.id for g in found], after_id)
    return found[start : None if limit is None else start + limit]


def list_live(tx: Tx, org_id: str) -> list[Grant]:
    """The live grants (neither voided nor logged as expired) as of now, in id order: every
    grant that is pending or active now, without reading the ones history has closed."""
    return _models(tx, org_id, repository.list_for_org(tx.conn, org_id, live=True))


def _models(tx: Tx, org_id: str, rows: Sequence[DbRow]) -> list[Grant]:
    """Grants as of now: a hold that ran out has given its credits back even if nothing
    has written that yet."""
    working = as_of(tx, org_id, [repository.to_grant_row(r) for r in rows], tx.now)
    return [
        to_model(r, tx.now, remaining=g.remaining, held=g.held)
        for r, g in zip(rows, working, strict=True)
    ]


def to_model(
    row: DbRow, now: datetime, remaining: int | None = None, held: int | None = None
) -> Grant:
    state = repository.to_grant_row(row).state_at(now) or GrantState.PENDING
    held_now = row.held if held is None else held
    return as_model(
        Grant,
        row,
        amount=to_decimal(row.amount),
        remaining=to_decimal(row.remaining if remaining is None else remaining),
        state=state,
        # What is held on a grant that expired or was voided left the pool with it.
        held=to_decimal(held_now if state is GrantState.ACTIVE else 0),
        voided=to_decimal(row.voided_credits),
    )
