"""The feature catalog: prices read at the time of use, changeable at any time."""

from __future__ import annotations

from typing import Any

from creditpool import validation as check
from creditpool.core.errors import InvalidAmount, InvalidInput, NotFound
from creditpool.core.money import RATE_SCALE, UNIT, parse_credits, parse_rate, to_decimal
from creditpool.features.models import Feature, FeaturePrice
from creditpool.queries import FeaturePrices, Features
from creditpool.repositories import features as repository
from creditpool.storage.types import DbRow
from creditpool.storage.uow import Tx

RATE_PER_UNIT = 10**RATE_SCALE // UNIT  # rate units per credit unit
# A billion credits per use or per unit at most: the stored rate (10**8 rate units per
# credit) then fits a signed 64-bit column with room to spare.
PRICE_MAX_CREDITS = 10**9


def set_feature(
    tx: Tx,
    key: str,
    *,
    name: str | None,
    cost: object,
    unit_rate: object,
    unit: str | None,
    changed_by: str | None = None,
) -> Feature:
    """Set the price in force from now on, and append it to the feature's history (with
    who set it); past consumptions keep the rate they were charged at."""
    key = check.identifier(key, "feature key")
    by = None if changed_by is None else check.required_text(changed_by, "changed_by")
    if (cost is None) == (unit_rate is None):
        raise InvalidInput("give a feature either a fixed cost per use or a unit_rate per unit")
    existing = repository.get(tx.conn, key)
    if name is None:  # keep the name; a new feature is named after its key (as orgs, teams)
        name = key if existing is None else existing.name
    values: dict[str, Any] = {"updated_at": tx.now}
    values["name"] = check.required_text(name, "name")
    if cost is not None:
        values.update(
            rate=parse_credits(cost, field="cost") * RATE_PER_UNIT, per_unit=False, unit=None
        )
    else:
        values.update(
            rate=parse_rate(unit_rate),
            per_unit=True,
            unit=check.required_text(unit or "unit", "unit", check.UNIT_LENGTH_MAX),
        )
    if values["rate"] > PRICE_MAX_CREDITS * 10**RATE_SCALE:
        raise InvalidAmount(f"a feature costs at most {PRICE_MAX_CREDITS} credits per use or unit")
    repository.put(tx.conn, key, **values)
    history = {k: values[k] for k in ("name", "rate", "per_unit", "unit")}
    repository.append_price(tx.conn, feature=key, since=tx.now, changed_by=by, **history)
    return get(tx, key)


def get(tx: Tx, key: str) -> Feature:
    row = repository.get(tx.conn, key)
    if row is None:
        raise NotFound(f"feature {key!r} is not in the catalog")
    return to_model(row)


ALL = Features()  # every feature


def list_all(tx: Tx, asked: Features = ALL) -> list[Feature]:
    return [to_model(r) for r in repository.list_all(tx.conn, asked)]


def prices(tx: Tx, asked: FeaturePrices) -> list[FeaturePrice]:
    """Every price the feature has had, newest first (the first is the one in force)."""
    get(tx, asked.key)
    return [price_model(r) for r in repository.prices(tx.conn, asked)]


def _price(row: DbRow) -> dict[str, Any]:
    """The price a feature's row or price history's row holds: its name, and a fixed cost
    per use or a rate per unit."""
    rate = to_decimal(row.rate, RATE_SCALE)
    if row.per_unit:
        return {"name": row.name, "cost": None, "unit_rate": rate, "unit": row.unit}
    return {"name": row.name, "cost": rate, "unit_rate": None, "unit": row.unit}


def price_model(row: DbRow) -> FeaturePrice:
    return FeaturePrice(
        id=row.id, feature=row.feature, since=row.since, changed_by=row.changed_by, **_price(row)
    )


def to_model(row: DbRow) -> Feature:
    return Feature(key=row.key, updated_at=row.updated_at, **_price(row))
