"""What the console's correction pages show (organizations' settings and keys, portal
links, refunds, feature prices), each read in ONE read transaction, and the parsing of
their forms into the library's arguments. No HTML here."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from creditpool import queries as q
from creditpool import validation as check
from creditpool.auth import service as keys_service
from creditpool.auth.models import ApiKey
from creditpool.consumptions import service as consumptions
from creditpool.consumptions.models import Consumption
from creditpool.core.errors import AlreadyExists, InvalidInput
from creditpool.core.money import parse_credits, parse_rate
from creditpool.features import service as features
from creditpool.features.models import Feature, FeaturePrice
from creditpool.orgs import service as orgs
from creditpool.orgs.models import Org
from creditpool.repositories import auth as auth_repo
from creditpool.repositories import consumptions as consumptions_repo
from creditpool.repositories import orgs as orgs_repo
from creditpool.sessions.models import PortalRole
from creditpool.storage.uow import Database

KEYS_PAGE_SIZE = 50
CONSUMPTIONS_PAGE_SIZE = 25
PRICES_PAGE_SIZE = 50
Row = TypeVar("Row")


def _one_page(found: list[Row], size: int) -> tuple[list[Row], Row | None]:
    """A page of ``found`` (read with one row more than ``size``, to tell whether another
    page follows): the rows it shows, and the last of them when another page follows (the
    next page's cursor)."""
    shown = found[:size]
    return shown, shown[-1] if len(found) > size else None


# -- organizations' settings ---------------------------------------------------------------


@dataclass(frozen=True)
class OrgSettings:
    """An organization's settings as its form sends them, parsed (named as the library's
    arguments): ``form`` is the text to show again (after a refusal, or on the confirmation
    page's hidden fields)."""

    form: dict[str, str]
    name: str
    timezone: str
    low_balance_thresholds: list[str]
    expiry_notice_days: int

    def arguments(self) -> dict[str, Any]:
        """The library's keyword arguments: the fields but ``form``."""
        return {k: v for k, v in vars(self).items() if k != "form"}


def org_form(org: Org) -> dict[str, str]:
    """The settings form of an existing organization, filled in."""
    return {
        "id": org.id,
        "name": org.name,
        "timezone": org.timezone,
        "thresholds": ", ".join(str(t) for t in org.low_balance_thresholds),
        "expiry_notice_days": str(org.expiry_notice_days),
    }


def parse_settings(form: dict[str, str], *, default_name: str | None = None) -> OrgSettings:
    """The form's settings, checked as the library checks them (nothing is written):
    InvalidInput (or InvalidAmount) names the first field that is wrong."""
    name = form.get("name", "").strip() or default_name or ""
    thresholds = [t.strip() for t in form.get("thresholds", "").split(",") if t.strip()]
    days_text = form.get("expiry_notice_days", "").strip() or "7"
    if not days_text.isdigit():
        raise InvalidInput(f"the expiry notice period is a whole number of days: {days_text!r}")
    settings = OrgSettings(
        form=form,
        name=check.required_text(name, "name"),
        timezone=check.timezone(form.get("timezone", "").strip()),
        low_balance_thresholds=thresholds,
        expiry_notice_days=orgs.parse_notice_days(int(days_text[:6])),
    )
    orgs.parse_thresholds(thresholds)
    return settings


def check_new_org(
    db: Database, form: dict[str, str], *, existing: bool = True
) -> tuple[str, OrgSettings]:
    """A new organization's id and settings, refused as its creation would be
    (``existing``: also when the id is taken; the creation itself says so otherwise)."""
    org_id = check.identifier(form.get("id", "").strip(), "organization id")
    settings = parse_settings(form, default_name=org_id)
    if existing:
        with db.read() as tx:
            if orgs_repo.get_org(tx.conn, org_id) is not None:
                raise AlreadyExists(f"organization {org_id!r} already exists")
    return org_id, settings


def setting_changes(org: Org, settings: OrgSettings) -> dict[str, tuple[str, str]]:
    """What the form changes: each field's shown value before and after."""
    before = org_form(org)
    after = {
        "name": settings.name,
        "timezone": settings.timezone,
        "thresholds": ", ".join(str(Decimal(t)) for t in _sorted_thresholds(settings)),
        "expiry_notice_days": str(settings.expiry_notice_days),
    }
    return {k: (before[k], v) for k, v in after.items() if before[k] != v}


def _sorted_thresholds(settings: OrgSettings) -> list[Decimal]:
    """As the organization keeps them: distinct, highest first."""
    return sorted({Decimal(t) for t in settings.low_balance_thresholds}, reverse=True)


# -- keys and portal links ---------------------------------------------------------------


@dataclass(frozen=True)
class KeysPage:
    org: Org
    keys: list[ApiKey]
    next_after: str | None


def keys_page(db: Database, org_id: str, after: str | None) -> KeysPage:
    with db.read(snapshot=True) as tx:
        org = orgs.get_org(tx, org_id)
        found = keys_service.list_keys(
            tx, q.Keys(org_id=org_id, after=after, limit=KEYS_PAGE_SIZE + 1)
        )
    shown, last = _one_page(found, KEYS_PAGE_SIZE)
    return KeysPage(org, shown, last.id if last else None)


def org_key(db: Database, org_id: str, key_id: str) -> tuple[Org, ApiKey | None]:
    """The organization and one of its keys (None: no such key of this organization)."""
    with db.read(snapshot=True) as tx:
        org = orgs.get_org(tx, org_id)
        row = auth_repo.get(tx.conn, key_id)
    found = None if row is None or row.org_id != org_id else keys_service.to_model(row)
    return org, found


@dataclass(frozen=True)
class NewKey:
    role: str
    user_id: str | None
    name: str | None


def parse_new_key(form: dict[str, str]) -> NewKey:
    """An organization key's form (admin, or member of one user), checked."""
    role = form.get("role", "")
    if role not in (r.value for r in PortalRole):
        raise InvalidInput("a key of an organization is an admin or a member key")
    user = form.get("user_id", "").strip() or None
    if role == PortalRole.MEMBER and user is None:
        raise InvalidInput("a member key belongs to one user: give the user id")
    if role == PortalRole.ADMIN and user is not None:
        raise InvalidInput("only member keys belong to a user: leave the user id empty")
    name = form.get("name", "").strip() or None
    return NewKey(
        role=role,
        user_id=None if user is None else check.identifier(user, "user id"),
        name=None if name is None else check.required_text(name, "name"),
    )


def parse_portal(form: dict[str, str]) -> tuple[str, str]:
    """A portal link's user and role, checked."""
    role = form.get("role", "")
    if role not in (r.value for r in PortalRole):
        raise InvalidInput("a portal link signs in an admin or a member")
    return check.identifier(form.get("user_id", "").strip(), "user id"), role


# -- consumptions and refunds ------------------------------------------------------------


@dataclass(frozen=True)
class ConsumptionsPage:
    org: Org
    consumptions: list[Consumption]
    next_before: int | None
    features: dict[str, str] = field(default_factory=dict)


def consumptions_page(
    db: Database, org_id: str, before: int | None, status: str | None, size: int
) -> ConsumptionsPage:
    """A page of the organization's consumptions, newest first."""
    with db.read(snapshot=True) as tx:
        org = orgs.get_org(tx, org_id)
        asked = q.Consumptions(org_id, status=status, before_id=before, limit=size + 1)
        rows = consumptions_repo.search(tx.conn, asked)
        found = consumptions.from_rows(rows[:size], tx)
        names = {f.key: f.name for f in features.list_all(tx)}
    more = len(rows) > size and bool(found)
    return ConsumptionsPage(org, found, found[-1].id if more else None, names)


def consumption_view(db: Database, org_id: str, consumption_id: int) -> tuple[Org, Consumption]:
    with db.read(snapshot=True) as tx:
        return orgs.get_org(tx, org_id), consumptions.get(tx, org_id, consumption_id)


# -- feature prices ----------------------------------------------------------------------


@dataclass(frozen=True)
class FeaturePage:
    feature: Feature
    prices: list[FeaturePrice]
    next_before: int | None


def feature_page(db: Database, key: str, before: int | None) -> FeaturePage:
    with db.read(snapshot=True) as tx:
        feature = features.get(tx, key)
        found = features.prices(
            tx, q.FeaturePrices(key, before_id=before, limit=PRICES_PAGE_SIZE + 1)
        )
    shown, last = _one_page(found, PRICES_PAGE_SIZE)
    return FeaturePage(feature, shown, last.id if last else None)


@dataclass(frozen=True)
class NewPrice:
    """A feature's price as its form sends it (named as the library's arguments): a fixed
    cost, or a rate per unit."""

    name: str
    cost: str | None
    unit_rate: str | None
    unit: str | None

    def arguments(self) -> dict[str, Any]:
        return dict(vars(self))


def parse_price(feature: Feature, form: dict[str, str]) -> NewPrice:
    """The new price, checked as the library checks it (nothing is written)."""
    name = check.required_text(form.get("name", "").strip() or feature.name, "name")
    if form.get("kind") == "per_unit":
        rate = form.get("unit_rate", "").strip()
        parse_rate(rate)
        unit = check.required_text(form.get("unit", "").strip() or "unit", "unit", 64)
        return NewPrice(name, None, rate, unit)
    cost = form.get("cost", "").strip()
    parse_credits(cost, field="cost")
    return NewPrice(name, cost, None, None)
