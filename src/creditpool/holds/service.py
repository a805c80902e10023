"""Hold, settle and release: load what the rules need, ask the core for a plan, write it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from creditpool import validation as check
from creditpool.consumptions import service as consumptions
from creditpool.consumptions.models import Consumption
from creditpool.consumptions.service import ConsumeRequest, model_values
from creditpool.core.errors import HoldNotOpen, InvalidInput, NotFound
from creditpool.core.events import EventType
from creditpool.core.holds import (
    HoldRow,
    HoldState,
    Release,
    apply_hold,
    apply_release,
    close,
    plan_hold,
    plan_release,
    plan_settle,
)
from creditpool.core.ledger import LedgerAction, LedgerMethod
from creditpool.core.money import to_decimal
from creditpool.holds.models import Hold, HoldStatus
from creditpool.ledger.service import append_move, left_now
from creditpool.ledger.writer import OrgWriter
from creditpool.repositories import holds as repository
from creditpool.repositories import orgs as orgs_repo
from creditpool.storage.types import DbRow
from creditpool.storage.uow import Tx


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """``hold``'s arguments, checked: what to reserve (``amount``, else the catalog's price
    of ``quantity`` or of one use), for how long, and the consumption it is for."""

    use: ConsumeRequest
    amount: int | None
    ttl_s: int

    @classmethod
    def of(
        cls,
        use: ConsumeRequest,
        amount: int | None,
        ttl_s: object,
        *,
        ttl_s_default: int,
        ttl_s_max: int,
    ) -> HoldRequest:
        if amount is not None and use.quantity is not None:
            raise InvalidInput("give an amount or a quantity to hold, not both")
        ttl = check.seconds(ttl_s_default if ttl_s is None else ttl_s, "ttl_s", ttl_s_max)
        return cls(use=use, amount=amount, ttl_s=ttl)

    def arguments(self) -> dict[str, Any]:
        return {**self.use.arguments(), "amount": self.amount, "ttl_s": self.ttl_s}


@dataclass(frozen=True, slots=True)
class SettleRequest:
    """``settle``'s arguments, checked: the real cost (``cost``, else the catalog's price of
    ``quantity`` now; neither: the price now of the quantity the hold was for, else the
    amount held) and the consumption's descriptive fields (None: the hold's)."""

    cost: int | None
    quantity: int | None
    user_id: str | None
    fields: dict[str, Any]

    def __post_init__(self) -> None:
        if self.cost is not None and self.quantity is not None:
            raise InvalidInput("give the cost or the quantity to settle, not both")

    def arguments(self) -> dict[str, Any]:
        return {
            "cost": self.cost,
            "quantity": self.quantity,
            "user_id": self.user_id,
            **self.fields,
        }


def hold(w: OrgWriter, req: HoldRequest) -> Hold:
    priced = consumptions.price(w.tx, w.org_id, req.use, req.amount)
    grants = w.grants()
    draws = plan_hold(list(grants.values()), priced.cost, w.now)
    before = left_now(w)
    apply_hold(grants, draws)
    hid = w.new_id()
    expires_at = w.now + timedelta(seconds=req.ttl_s)
    values: dict[str, Any] = {
        "org_id": w.org_id,
        "id": hid,
        "status": HoldState.OPEN.value,
        "amount": priced.cost,
        "created_at": w.now,
        "expires_at": expires_at,
        "feature": req.use.feature,
        "user_id": req.use.user_id,
        "team_id": priced.team_id,
        "quantity": req.use.quantity,
        **{name: v for name, v in req.use.details.items() if name in Hold.model_fields},
        "released": 0,
        "lost": 0,
    }
    w.defer(lambda: repository.insert(w.conn, values, draws))
    if w.longest_hold_s is None or req.ttl_s > w.longest_hold_s:
        # A hold open at a past instant t ends by t + the longest: ``held_at``'s bound.
        w.longest_hold_s = longest = req.ttl_s
        w.defer(lambda: orgs_repo.save_longest_hold(w.conn, w.org_id, longest))
    w.add_hold(HoldRow(hid, priced.cost, expires_at, draws))
    append_move(w, before, LedgerAction.HOLD, LedgerMethod.HELD, priced.cost, hold_id=hid)
    held = _model({**values, "closed_at": None, "consumption_id": None}, draws, w.now)
    w.emit_model(EventType.HOLD_CREATED, held)
    return held


def settle(w: OrgWriter, hold_id: int, req: SettleRequest) -> Consumption:
    row, h = _open_hold(w, hold_id)
    use = ConsumeRequest(
        feature=row.feature,
        user_id=req.user_id or row.user_id,
        quantity=req.quantity,
        details={
            name: value if value is not None else _kept(row, name)
            for name, value in req.fields.items()
        },
    )
    cost = req.cost
    if cost is None and req.quantity is None:  # neither: what the hold was for
        if row.quantity is not None:
            use = replace(use, quantity=row.quantity)  # priced now, as a consumption
        else:
            cost = row.amount
    priced = consumptions.price(w.tx, w.org_id, use, cost)
    grants = w.grants()
    plan = plan_settle(h, grants, priced.cost, w.now)  # refuses before anything changes
    _give_back(w, h, plan.release, HoldState.SETTLED, plan.given_back)
    consumption = consumptions.record(w, use, priced, plan.draws, hold_id=hold_id)
    h.consumption_id = consumption.id
    w.emit(
        EventType.HOLD_SETTLED,
        {
            "hold_id": hold_id,
            "consumption_id": consumption.id,
            "held": str(to_decimal(h.amount)),
            "cost": str(consumption.cost),
        },
    )
    return consumption


def release(w: OrgWriter, hold_id: int) -> Hold:
    row, h = _open_hold(w, hold_id)
    plan = plan_release(h, w.grants(), w.now)
    _give_back(w, h, plan, HoldState.RELEASED, plan.released)
    released = _model(
        {**row._mapping, "status": h.status.value, "closed_at": h.closed_at}
        | {"released": h.released, "lost": h.lost},
        h.allocations,
        w.now,
    )
    w.emit_model(EventType.HOLD_RELEASED, released)
    return released


def _open_hold(w: OrgWriter, hold_id: int) -> tuple[DbRow, HoldRow]:
    """The hold's row and its open working copy; refused when it is not open."""
    row = repository.get(w.conn, w.org_id, hold_id)
    if row is None:
        raise NotFound(f"hold {hold_id} not found in organization {w.org_id!r}")
    h = w.open_hold(hold_id)
    if h is None:  # closed: by a settle, a release, or its time to live (maybe at the lock)
        status = str(w.closed_status(hold_id) or row.status)
        raise HoldNotOpen(f"hold {hold_id} is {status}, not open", status=status)
    return row, h


def _give_back(
    w: OrgWriter, h: HoldRow, release: Release, status: HoldState, given_back: int
) -> None:
    """Return the hold's live credits to their grants (a ``release`` ledger entry) and
    close it."""
    before = left_now(w)
    apply_release(h, w.grants(), release)
    if release.released:
        action, method = LedgerAction.RELEASE, LedgerMethod.RELEASED
        append_move(w, before, action, method, release.released, hold_id=h.id)
    close(h, status, w.now, release, given_back)
    w.closed(h)


def _kept(row: DbRow, name: str) -> Any:
    return getattr(row, name, None)


def get(tx: Tx, org_id: str, hold_id: int) -> Hold:
    row = repository.get(tx.conn, org_id, hold_id)
    if row is None:
        raise NotFound(f"hold {hold_id} not found in organization {org_id!r}")
    return from_rows(tx, [row])[0]


def from_rows(tx: Tx, rows: list[DbRow] | Any) -> list[Hold]:
    rows = list(rows)
    if not rows:
        return []
    draws = repository.allocations_of(tx.conn, rows[0].org_id, [r.id for r in rows])
    return [_model(dict(r._mapping), draws[r.id], tx.now) for r in rows]


def parse_status(status: object) -> str | None:
    if status is None:
        return None
    if not isinstance(status, str) or status not in {s.value for s in HoldStatus}:
        raise InvalidInput("status must be one of: open, settled, released, expired")
    return status


def _model(v: dict[str, Any], draws: list[tuple[int, int]], now: datetime) -> Hold:
    status = HoldStatus(v["status"])
    if status is HoldStatus.OPEN and now >= v["expires_at"]:
        status = HoldStatus.EXPIRED  # ran out; written by the next change or sweep
    amounts = {name: to_decimal(v[name]) for name in ("amount", "released", "lost")}
    return Hold.model_construct(**model_values(v, draws, status=status, **amounts))
