"""Consume and refund: load what the rules need, ask the core for a plan, write the plan."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from creditpool.audit import service as audit
from creditpool.consumptions import team_limits
from creditpool.consumptions.models import Allocation, Consumption, ConsumptionStatus, Refund
from creditpool.core.errors import InvalidAmount, InvalidInput, NotFound
from creditpool.core.events import EventType
from creditpool.core.grants import GrantRow, apply_draws, plan_consumption, plan_refund
from creditpool.core.ledger import LedgerAction, LedgerMethod
from creditpool.core.money import (
    RATE_SCALE,
    UNIT,
    cost_units,
    format_credits,
    to_decimal,
)
from creditpool.ledger.service import append_move, left_now
from creditpool.ledger.writer import OrgWriter, ReadAhead
from creditpool.repositories import consumptions as repository
from creditpool.storage.types import DbRow
from creditpool.storage.uow import Tx


@dataclass(frozen=True, slots=True)
class ConsumeRequest:
    """A use of a feature, checked (``changes.use_of``: each field by the rule its command
    declares): what is charged (the feature, for whom, how many units), and ``details``,
    what describes the use (``commands.UseDetails``, ``Counted``), written as they are into
    the consumption's row and a hold's (a column of the same name each)."""

    feature: str
    user_id: str
    quantity: int | None
    details: Mapping[str, Any]

    def arguments(self) -> dict[str, Any]:
        """The request as the idempotency fingerprint sees it (a shallow copy is enough:
        the fingerprint only serializes it)."""
        use = {"feature": self.feature, "user_id": self.user_id, "quantity": self.quantity}
        return use | dict(self.details)


@dataclass(frozen=True, slots=True)
class Priced:
    rate: int
    cost: int
    team_id: str | None
    # the team's monthly limit and its usage counter (see team_limits.py)
    team_limit: int | None = None
    usage_month: str | None = None
    usage_units: int | None = None


def price(
    tx: Tx,
    org_id: str,
    req: ConsumeRequest,
    cost: int | None = None,
    *,
    read: list[repository.Pricing] | None = None,
) -> Priced:
    """The cost of ``req`` from the catalog (or ``cost`` when the caller states it), the
    feature's rate, and the user's team now (``read``: the pricing rows, already read with
    the lock; see ``read_ahead``)."""
    if read is not None:
        row = read[0] if read else None
    else:
        row = repository.pricing(tx.conn, org_id, req.feature, req.user_id)
    if row is None:
        raise NotFound(f"feature {req.feature!r} is not in the catalog")
    team = (row.team_id, row.team_limit, row.usage_month, row.usage_units)
    if cost is not None:
        return Priced(row.rate, cost, *team)
    if bool(row.per_unit) and req.quantity is None:
        raise InvalidInput(f"feature {req.feature!r} is priced per unit: give a quantity")
    cost = cost_units(row.rate, UNIT if req.quantity is None else req.quantity)
    if cost <= 0:
        raise InvalidAmount(f"the cost of this use rounds to {format_credits(0)} credits")
    return Priced(row.rate, cost, *team)


def read_ahead(org_id: str, req: ConsumeRequest) -> ReadAhead:
    """``consume``'s read of the price and the team, to be made with the lock."""
    return ReadAhead(req, *repository.pricing_query(org_id, req.feature, req.user_id))


def consume(w: OrgWriter, req: ConsumeRequest) -> Consumption:
    priced = price(w.tx, w.org_id, req, read=w.take_read_ahead(req))
    draws = plan_consumption(list(w.grants().values()), priced.cost, w.now)
    return record(w, req, priced, draws)


def record(
    w: OrgWriter,
    req: ConsumeRequest,
    priced: Priced,
    draws: list[tuple[int, int]],
    hold_id: int | None = None,
) -> Consumption:
    """Write a planned consumption: draw ``draws`` from the grants, insert it with its
    allocations, and append its ledger entry (Left falls by the cost)."""
    before = left_now(w)
    apply_draws(w.grants(), draws, -1)
    cid = w.new_id()
    values = _row_values(w.org_id, cid, w.now, req, priced)
    values["hold_id"] = hold_id
    w.defer(lambda: repository.insert(w.conn, values, draws))
    append_move(
        w,
        before,
        LedgerAction.CONSUMPTION,
        LedgerMethod.USED,
        priced.cost,
        consumption_id=cid,
        hold_id=hold_id,
    )
    consumption = _model(values, draws)
    w.emit_model(EventType.CONSUMPTION_CREATED, consumption)
    counted = (priced.usage_month, priced.usage_units or 0)
    team_limits.count_use(w, priced.team_id, priced.cost, priced.team_limit, counted)
    return consumption


def dry_run(tx: Tx, org_id: str, grants: list[GrantRow], req: ConsumeRequest) -> Consumption:
    priced = price(tx, org_id, req)
    draws = plan_consumption(grants, priced.cost, tx.now)
    values = _row_values(org_id, None, tx.now, req, priced)
    values["status"] = ConsumptionStatus.DRY_RUN.value
    return _model(values, draws)


def refund(w: OrgWriter, consumption_id: int, reason: str | None, by: str | None = None) -> Refund:
    row = repository.get(w.conn, w.org_id, consumption_id)
    if row is None:
        raise NotFound(f"consumption {consumption_id} not found in organization {w.org_id!r}")
    if row.status == ConsumptionStatus.REFUNDED:
        return stored_refund(w.tx, row)  # a second refund returns the first result
    drawn = repository.allocations_of(w.conn, w.org_id, [consumption_id])[consumption_id]
    grants = w.grants()
    plan = plan_refund(drawn, grants, w.now)
    before = left_now(w)
    apply_draws(grants, plan.restorations, +1)
    repository.mark_refunded(
        w.conn,
        w.org_id,
        consumption_id,
        at=w.now,
        reason=reason,
        restored=plan.restored,
        lost=plan.lost,
        draws=plan.restorations,
    )
    team_limits.count_refund(w, row.team_id, row.created_at, row.cost)
    if plan.restored:
        action, method = LedgerAction.REFUND, LedgerMethod.REFUNDED
        append_move(w, before, action, method, plan.restored, consumption_id=consumption_id)
    refunded = Refund(
        org_id=w.org_id,
        consumption_id=consumption_id,
        refunded_at=w.now,
        reason=reason,
        restored=to_decimal(plan.restored),
        lost=to_decimal(plan.lost),
        restorations=_allocations(plan.restorations),
    )
    w.emit_model(EventType.CONSUMPTION_REFUNDED, refunded)
    audit.record(
        w.conn, "consumption.refunded", by=by, at=w.now, org_id=w.org_id,
        consumption_id=consumption_id, reason=reason, restored=refunded.restored,
        lost=refunded.lost,
    )  # fmt: skip
    return refunded


def stored_refund(tx: Tx, row: DbRow) -> Refund:
    draws = repository.restorations_of(tx.conn, row.org_id, [row.id])[row.id]
    return Refund(
        org_id=row.org_id,
        consumption_id=row.id,
        refunded_at=row.refunded_at,
        reason=row.refund_reason,
        restored=to_decimal(row.refund_restored),
        lost=to_decimal(row.refund_lost),
        restorations=_allocations(draws),
    )


def get(tx: Tx, org_id: str, consumption_id: int) -> Consumption:
    row = repository.get(tx.conn, org_id, consumption_id)
    if row is None:
        raise NotFound(f"consumption {consumption_id} not found in organization {org_id!r}")
    return from_rows([row], tx)[0]


def from_rows(rows: list[DbRow] | Any, tx: Tx) -> list[Consumption]:
    rows = list(rows)
    if not rows:
        return []
    org_id = rows[0].org_id
    draws = repository.allocations_of(tx.conn, org_id, [r.id for r in rows])
    return [_model(dict(r._mapping), draws[r.id]) for r in rows]


def _row_values(
    org_id: str, cid: int | None, now: datetime, req: ConsumeRequest, priced: Priced
) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "id": cid,
        "created_at": now,
        "feature": req.feature,
        "user_id": req.user_id,
        "team_id": priced.team_id,
        "quantity": req.quantity,
        "rate": priced.rate,
        "cost": priced.cost,
        "status": ConsumptionStatus.PAID.value,
        **req.details,
    }


def _allocations(draws: list[tuple[int, int]]) -> tuple[Allocation, ...]:
    # Trusted values of the right types: construct without validating again.
    return tuple(Allocation.model_construct(grant_id=g, amount=to_decimal(a)) for g, a in draws)


def model_values(v: dict[str, Any], draws: list[tuple[int, int]], **fields: Any) -> dict[str, Any]:
    """A consumption's or a hold's columns (``v``) as its model's fields: the quantity in
    credits, the grants drawn as allocations, and ``fields`` (the other conversions).
    Columns the model does not have are ignored by ``model_construct``."""
    quantity = None if v["quantity"] is None else to_decimal(v["quantity"])
    return v | {"quantity": quantity, "allocations": _allocations(draws)} | fields


def _model(v: dict[str, Any], draws: list[tuple[int, int]]) -> Consumption:
    # Every value comes from a parsed request, the catalog or our own rows, already of the
    # declared type: construct without validating again (a third of the call's CPU).
    return Consumption.model_construct(
        **model_values(
            v,
            draws,
            unit_rate=to_decimal(v["rate"], RATE_SCALE),
            cost=to_decimal(v["cost"]),
            status=ConsumptionStatus(v["status"]),
        )
    )
