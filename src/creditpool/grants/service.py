"""Granting and voiding credits."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from creditpool import validation as check
from creditpool.core.errors import GrantVoided, InvalidInput, NotFound, PoolLimitExceeded
from creditpool.core.events import EventType
from creditpool.core.grants import GrantRow, GrantState
from creditpool.core.ledger import LedgerAction, LedgerMethod
from creditpool.core.money import (
    MAX_POOL_CREDITS,
    MAX_POOL_UNITS,
    format_credits,
    parse_credits,
    to_decimal,
)
from creditpool.grants.models import Grant
from creditpool.ledger.service import append_move, left_now
from creditpool.ledger.writer import OrgWriter, as_of
from creditpool.repositories import grants as repository
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
    if was_active and remaining:
        append_move(w, before, LedgerAction.VOID, LedgerMethod.VOIDED, remaining, grant_id=grant_id)
    voided = repository.get(w.conn, w.org_id, grant_id)
    assert voided is not None
    model = to_model(voided, w.now)
    w.emit_model(EventType.GRANT_VOIDED, model, credits_voided=str(to_decimal(remaining)))
    return model


def get(tx: Tx, org_id: str, grant_id: int) -> Grant:
    row = repository.get(tx.conn, org_id, grant_id)
    if row is None:
        raise NotFound(f"grant {grant_id} not found in organization {org_id!r}")
    return _models(tx, org_id, [row])[0]


def list_for_org(
    tx: Tx, org_id: str, *, after_id: int | None = None, limit: int | None = None
) -> list[Grant]:
    """In id order. Every grant is read, since the holds that ran out give credits back
    across all of them (``_models``); the page is cut from the result."""
    found = _models(tx, org_id, repository.list_for_org(tx.conn, org_id))
    start = 0 if after_id is None else bisect.bisect_right([g.id for g in found], after_id)
    return found[start : None if limit is None else start + limit]


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
    return Grant(
        org_id=row.org_id,
        id=row.id,
        amount=to_decimal(row.amount),
        remaining=to_decimal(row.remaining if remaining is None else remaining),
        granted_at=row.granted_at,
        available_from=row.available_from,
        expires_at=row.expires_at,
        note=row.note,
        reference=row.reference,
        granted_by=row.granted_by,
        voided_at=row.voided_at,
        voided_by=row.voided_by,
        void_reason=row.void_reason,
        state=state,
        # What is held on a grant that expired or was voided left the pool with it.
        held=to_decimal(held_now if state is GrantState.ACTIVE else 0),
    )
