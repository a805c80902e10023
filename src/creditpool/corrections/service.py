"""Manual adjustments, and the record of every staff correction (expiry changes and voids
are the grants service's; each writes its record here)."""

from __future__ import annotations

from typing import Any

from creditpool import validation as check
from creditpool.consumptions.models import Allocation
from creditpool.core.errors import InvalidInput, NotFound
from creditpool.core.events import EventType
from creditpool.core.grants import apply_draws, plan_consumption, plan_credit
from creditpool.core.ledger import LedgerAction, LedgerMethod
from creditpool.core.money import parse_signed_credits, to_decimal
from creditpool.corrections.models import Adjustment, Correction, CorrectionKind
from creditpool.ledger.service import append_move, left_now
from creditpool.ledger.writer import OrgWriter
from creditpool.orgs.service import require_org
from creditpool.queries import Corrections
from creditpool.repositories import corrections as repository
from creditpool.repositories.rows import as_model
from creditpool.storage.types import DbRow
from creditpool.storage.uow import Tx


def parse_by(by: object) -> str:
    """Who made a correction: always named."""
    named = check.text(by, "by")
    if named is None or not named.strip():
        raise InvalidInput("by must name who makes the correction")
    return named


def parse_reason(reason: object, *, required: bool = False) -> str | None:
    text = check.text(reason, "reason", check.TEXT_LENGTH_MAX)
    if required and (text is None or not text.strip()):
        raise InvalidInput("reason must say why")
    return text


def record(
    w: OrgWriter, kind: CorrectionKind, by: str | None, reason: str | None, **values: Any
) -> int:
    """Write a correction's record now; its id (from the organization's ``object_seq``)."""
    correction_id = w.new_id()
    repository.insert(
        w.conn,
        org_id=w.org_id,
        id=correction_id,
        kind=kind.value,
        at=w.now,
        by=by,
        reason=reason,
        **values,
    )
    return correction_id


def adjust(w: OrgWriter, credits: int, reason: str, by: str) -> Adjustment:
    """Debit (``credits`` < 0) like a consumption, refused when Left is short; or credit
    (> 0) like a refund, to the most recent active grants up to what they have used."""
    live = w.grants()
    before = left_now(w)
    if credits < 0:
        drawn = plan_consumption(list(live.values()), -credits, w.now)
        apply_draws(live, drawn, -1)
        moves = [(gid, -amount) for gid, amount in drawn]
    else:
        given = plan_credit(list(live.values()), credits, w.now)
        apply_draws(live, given, +1)
        moves = given
    cid = record(w, CorrectionKind.ADJUSTMENT, by, reason, credits=credits)
    repository.insert_allocations(w.conn, w.org_id, cid, moves)
    method = LedgerMethod.DEBITED if credits < 0 else LedgerMethod.CREDITED
    append_move(w, before, LedgerAction.ADJUSTMENT, method, abs(credits), correction_id=cid)
    made = Adjustment(
        org_id=w.org_id,
        id=cid,
        at=w.now,
        credits=to_decimal(credits),
        reason=reason,
        by=by,
        allocations=tuple(
            Allocation(grant_id=gid, amount=to_decimal(amount)) for gid, amount in sorted(moves)
        ),
    )
    w.emit_model(EventType.ADJUSTMENT_CREATED, made)
    return made


def parse_kind(kind: object) -> CorrectionKind | None:
    if kind is None:
        return None
    for known in CorrectionKind:
        if kind == known.value:
            return known
    names = ", ".join(k.value for k in CorrectionKind)
    raise InvalidInput(f"kind must be one of {names}: {kind!r}")


def parse_adjustment(credits: object, reason: object, by: object) -> tuple[int, str, str]:
    units = parse_signed_credits(credits)
    text = parse_reason(reason, required=True)
    assert text is not None
    return units, text, parse_by(by)


def get_adjustment(tx: Tx, org_id: str, correction_id: int) -> Adjustment:
    require_org(tx, org_id)
    row = repository.get(tx.conn, org_id, correction_id)
    if row is None or row.kind != CorrectionKind.ADJUSTMENT:
        raise NotFound(f"adjustment {correction_id} not found in organization {org_id!r}")
    moves = repository.allocations(tx.conn, org_id, [correction_id])[correction_id]
    return Adjustment(
        org_id=org_id,
        id=row.id,
        at=row.at,
        credits=to_decimal(row.credits),
        reason=row.reason or "",
        by=row.by or "",
        allocations=tuple(Allocation(grant_id=g, amount=to_decimal(a)) for g, a in moves),
    )


def list_for_org(tx: Tx, asked: Corrections) -> list[Correction]:
    require_org(tx, asked.org_id)
    return [to_model(r) for r in repository.list_for_org(tx.conn, asked)]


def to_model(row: DbRow) -> Correction:
    credits = None if row.credits is None else to_decimal(row.credits)
    return as_model(Correction, row, kind=CorrectionKind(row.kind), credits=credits)
