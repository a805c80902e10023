"""What each page shows, read through the library: one function per page, no HTML here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from creditpool.consumptions.models import Consumption
from creditpool.core.errors import InvalidInput
from creditpool.core.grants import GrantState
from creditpool.grants.models import Grant
from creditpool.holds.models import Hold, HoldStatus
from creditpool.http.security import Action, Principal
from creditpool.ledger.models import Balance, LedgerEntry
from creditpool.orgs.models import Member, Org, Team, TeamUsage
from creditpool.pool import CreditPool
from creditpool.storage.uow import reading
from creditpool.web import repository
from creditpool.web.chart import Chart, stacked_bars

HISTORY_PAGE_SIZE = 25
LEDGER_PAGE_SIZE = 50
OPEN_HOLDS_SHOWN = 100  # the staff console lists at most this many open holds
ORGS_PAGE_SIZE = 25
EXPIRING_WITHIN = timedelta(days=30)
CHART_DAYS = (30, 90)


@dataclass(frozen=True)
class HistoryFilters:
    """The usage history's filters, as the form sends them (days in the org's zone)."""

    feature: str | None = None
    user: str | None = None
    team: str | None = None
    status: str | None = None
    start: date | None = None
    end: date | None = None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.feature, self.user, self.team, self.status)) or (
            self.start is not None or self.end is not None
        )

    def query(self) -> dict[str, str]:
        values = {
            "feature": self.feature,
            "user": self.user,
            "team": self.team,
            "status": self.status,
            "from": None if self.start is None else self.start.isoformat(),
            "to": None if self.end is None else self.end.isoformat(),
        }
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class Header:
    """Every org page: the organization, its balance, the ledger point it was read at."""

    org: Org
    balance: Balance
    seq: int
    now: datetime


@dataclass(frozen=True)
class UsagePage:
    header: Header
    features: dict[str, str]
    upcoming: list[Grant]
    expiring: list[Grant]
    teams: list[TeamUsage] | None
    team_list: list[Team]
    members: list[Member]
    history: list[Consumption]
    next_before: int | None
    chart: Chart
    days: int
    own_user: str | None


@dataclass(frozen=True)
class CreditsPage:
    header: Header
    grants: list[Grant]


@dataclass(frozen=True)
class OrgRow:
    org: Org
    balance: Balance


@dataclass(frozen=True)
class StaffOrgPage:
    header: Header
    grants: list[Grant]
    ledger: list[LedgerEntry]
    older_than: int | None
    newer_than: int | None = None
    holds: list[Hold] = field(default_factory=list)
    features: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)


def header(pool: CreditPool, org_id: str) -> Header:
    """Read the ledger point first: a change after it arrives as an event, and applying an
    event twice is harmless (it carries the balance after, not a difference)."""
    with reading(pool.engine, pool.clock) as tx:
        seq = repository.last_seq(tx.conn, org_id)
        now = tx.now
    return Header(pool.org(org_id), pool.balance(org_id), seq, now)


def usage_page(
    pool: CreditPool,
    caller: Principal,
    org_id: str,
    filters: HistoryFilters,
    before: int | None,
    days: int,
) -> UsagePage:
    head = header(pool, org_id)
    zone = head.org.timezone
    own_user = None if caller.may(Action.CONSUMPTIONS_READ) else caller.key.user_id
    grants = pool.grants(org_id) if caller.may(Action.GRANTS_READ) else []
    upcoming = sorted(
        (g for g in grants if g.state is GrantState.PENDING), key=lambda g: g.available_from
    )
    soon = head.now + EXPIRING_WITHIN
    expiring = sorted(
        (
            g
            for g in grants
            if g.state is GrantState.ACTIVE
            and g.expires_at is not None
            and g.expires_at <= soon
            and g.remaining > 0
        ),
        key=lambda g: g.expires_at or soon,
    )
    history, next_before = history_page(pool, org_id, filters, before, own_user, zone)
    admin_view = caller.may(Action.USAGE_READ)
    return UsagePage(
        header=head,
        features={f.key: f.name for f in pool.features()},
        upcoming=upcoming,
        expiring=expiring,
        teams=pool.team_usage(org_id) if admin_view else None,
        team_list=pool.teams(org_id) if admin_view else [],
        members=pool.members(org_id) if admin_view else [],
        history=history,
        next_before=next_before,
        chart=usage_chart(pool, org_id, zone, head.now, days, own_user),
        days=days,
        own_user=own_user,
    )


def history_page(
    pool: CreditPool,
    org_id: str,
    filters: HistoryFilters,
    before: int | None,
    own_user: str | None,
    zone: str,
) -> tuple[list[Consumption], int | None]:
    """A page of the history, newest first, and the cursor of the next one (None: last)."""
    if own_user is not None and filters.user not in (None, own_user):
        return [], None
    if filters.start and filters.end and filters.end < filters.start:
        raise InvalidInput("the end date is before the start date")
    rows = pool.consumptions(
        org_id,
        since=None if filters.start is None else day_start(filters.start, zone),
        until=None if filters.end is None else day_start(filters.end + timedelta(days=1), zone),
        feature=filters.feature,
        user_id=own_user or filters.user,
        team_id=filters.team,
        status=filters.status,
        before_id=before,
        limit=HISTORY_PAGE_SIZE + 1,
    )
    more = len(rows) > HISTORY_PAGE_SIZE
    rows = rows[:HISTORY_PAGE_SIZE]
    return rows, (rows[-1].id if more and rows else None)


def usage_chart(
    pool: CreditPool, org_id: str, zone: str, now: datetime, days: int, user_id: str | None
) -> Chart:
    today = now.astimezone(ZoneInfo(zone)).date()
    first = today - timedelta(days=days - 1)
    start, end = day_start(first, zone), day_start(today + timedelta(days=1), zone)
    with reading(pool.engine, pool.clock) as tx:
        sums = repository.daily_usage(tx.conn, org_id, zone, start, end, user_id)
    names = {f.key: f.name for f in pool.features()}
    return stacked_bars([first + timedelta(days=i) for i in range(days)], sums, names)


def consumption_row(
    pool: CreditPool, caller: Principal, org_id: str, consumption_id: int
) -> tuple[Org, Consumption, dict[str, str]] | None:
    """One history row (for a live update); None when the caller may not see it."""
    found = pool.consumption(org_id, consumption_id)
    if not caller.may(Action.CONSUMPTIONS_READ) and found.user_id != caller.key.user_id:
        return None
    return pool.org(org_id), found, {f.key: f.name for f in pool.features()}


def credits_page(pool: CreditPool, org_id: str) -> CreditsPage:
    head = header(pool, org_id)
    order = {GrantState.ACTIVE: 0, GrantState.PENDING: 1, GrantState.EXPIRED: 2}
    grants = sorted(pool.grants(org_id), key=lambda g: (order.get(g.state, 3), -g.id))
    return CreditsPage(head, grants)


def org_rows(
    pool: CreditPool, search: str | None, after: str | None
) -> tuple[list[OrgRow], str | None]:
    orgs = pool.orgs(after=after, limit=ORGS_PAGE_SIZE + 1, search=search)
    more = len(orgs) > ORGS_PAGE_SIZE
    orgs = orgs[:ORGS_PAGE_SIZE]
    rows = [OrgRow(o, pool.balance(o.id)) for o in orgs]
    return rows, (orgs[-1].id if more else None)


def staff_org_page(pool: CreditPool, org_id: str, before_seq: int | None) -> StaffOrgPage:
    head = header(pool, org_id)
    newest = head.seq if before_seq is None else min(head.seq, before_seq - 1)
    after = max(0, newest - LEDGER_PAGE_SIZE)
    entries = pool.ledger(org_id, after_seq=after, limit=LEDGER_PAGE_SIZE) if newest else []
    entries = [e for e in entries if e.seq <= newest]
    entries.reverse()
    grants = sorted(pool.grants(org_id), key=lambda g: -g.id)
    older = entries[-1].seq if entries and entries[-1].seq > 1 else None
    newer = newest + LEDGER_PAGE_SIZE + 1 if before_seq is not None else None
    holds = open_holds(pool, org_id)
    return StaffOrgPage(head, grants, entries, older, newer, holds, feature_names(pool))


def feature_names(pool: CreditPool) -> dict[str, str]:
    return {f.key: f.name for f in pool.features()}


def open_holds(pool: CreditPool, org_id: str) -> list[Hold]:
    """The organization's open holds, newest first (one past its TTL reads as expired)."""
    return pool.holds(org_id, status=HoldStatus.OPEN.value, limit=OPEN_HOLDS_SHOWN)


def ledger_entry(pool: CreditPool, org_id: str, seq: int) -> LedgerEntry | None:
    """One ledger entry by its number (for a live update), None when there is none."""
    found = pool.ledger(org_id, after_seq=seq - 1, limit=1)
    return found[0] if found and found[0].seq == seq else None


def day_start(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone))


def local_instant(value: str | None, zone: str, field: str) -> datetime | None:
    """A ``datetime-local`` form value (``2026-11-02T09:00``) in the org's zone."""
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field} is not a date and time: {value!r}") from None
    if naive.tzinfo is not None:
        raise InvalidInput(f"{field} must not carry an offset")
    return naive.replace(tzinfo=ZoneInfo(zone))
