"""What each page shows: one function per page, each reading in ONE read transaction (one
snapshot, so the numbers on a page agree), no HTML here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from creditpool import queries as q
from creditpool.audit import service as audit
from creditpool.audit.models import AuditRecord
from creditpool.consumptions import service as consumptions
from creditpool.consumptions.models import Consumption, Refund
from creditpool.core.errors import InvalidInput
from creditpool.core.grants import GrantState
from creditpool.corrections import service as corrections_service
from creditpool.corrections.models import Correction
from creditpool.credit_requests import service as credit_requests
from creditpool.credit_requests.models import CreditRequest, CreditRequestStatus
from creditpool.features import service as features
from creditpool.forecast import service as forecasts
from creditpool.forecast.models import Forecast, TeamForecast
from creditpool.grants import service as grants_service
from creditpool.grants.models import Grant
from creditpool.holds import service as holds_service
from creditpool.holds.models import Hold, HoldStatus
from creditpool.http.security import Action, Principal
from creditpool.ledger import service as ledger
from creditpool.ledger.models import Balance, LedgerEntry
from creditpool.orgs import service as orgs
from creditpool.orgs.models import Member, Org, Team, TeamUsage
from creditpool.repositories import consumptions as consumptions_repo
from creditpool.repositories import holds as holds_repo
from creditpool.storage.uow import Database, Tx
from creditpool.web import repository
from creditpool.web.chart import Chart, stacked_bars
from creditpool.webhooks import service as webhooks
from creditpool.webhooks.models import Event, WebhookEndpoint

HISTORY_PAGE_SIZE = 25
LEDGER_PAGE_SIZE = 50
OPEN_HOLDS_SHOWN = 100  # the staff console lists at most this many open holds
ORGS_PAGE_SIZE = 25
EXPIRING_WITHIN = timedelta(days=30)
CHART_DAYS = (30, 90)
FORECAST_WINDOW_DAYS = 30  # the usage page's forecast: the pace of the last 30 days
AUDIT_SHOWN = 10  # corrections and audit records on the console page
RECENT_EVENTS_SHOWN = 20
RECENT_CONSUMPTIONS_SHOWN = 10  # on the console's page of an organization
REQUESTS_SHOWN = 10  # an admin's latest credit requests on the credits page
# What an event's one-line summary shows of its data, in this order, when present.
SUMMARY_FIELDS = (
    ("left", "left"),
    ("threshold", "threshold"),
    ("team_id", "team"),
    ("used", "used"),
    ("monthly_limit", "limit"),
    ("grant_id", "grant"),
    ("amount", "amount"),
    ("cost", "cost"),
    ("remaining", "remaining"),
    ("feature", "feature"),
    ("user_id", "user"),
    ("requested_by", "by"),
)


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
class Banner:
    """Why Left deserves attention: depleted, or below the highest low-balance threshold it
    has crossed (live.js decides the same from each event's balance)."""

    depleted: bool
    left: Decimal
    threshold: Decimal | None


def balance_banner(org: Org, balance: Balance) -> Banner | None:
    if balance.left <= 0:
        return Banner(True, balance.left, None)
    crossed = [t for t in org.low_balance_thresholds if balance.left < t]
    return Banner(False, balance.left, max(crossed)) if crossed else None


@dataclass(frozen=True)
class Header:
    """Every org page: the organization, its balance, the ledger point it was read at."""

    org: Org
    balance: Balance
    seq: int
    now: datetime

    @property
    def banner(self) -> Banner | None:
        return balance_banner(self.org, self.balance)


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
    # Display names of the users the page shows (the history's, the caller's own)
    people: dict[str, str] = field(default_factory=dict)
    forecast: Forecast | None = None  # at the pace of the last FORECAST_WINDOW_DAYS days

    @property
    def projected(self) -> dict[str | None, TeamForecast]:
        return projections(self.forecast)


@dataclass(frozen=True)
class UsageLive:
    """The parts of the usage page that a ledger event changes besides the balance and the
    history: the team table and the chart (reloaded whole, they are small)."""

    org: Org
    teams: list[TeamUsage] | None
    chart: Chart
    days: int
    forecast: Forecast | None = None

    @property
    def projected(self) -> dict[str | None, TeamForecast]:
        return projections(self.forecast)


def projections(forecast: Forecast | None) -> dict[str | None, TeamForecast]:
    """Each team's projected month-end usage, by team id (None: "no team")."""
    teams = forecast.teams if forecast is not None else None
    return {t.team_id: t for t in teams or ()}


@dataclass(frozen=True)
class CreditsPage:
    header: Header
    grants: list[Grant]
    requests: list[CreditRequest] = field(default_factory=list)
    people: dict[str, str] = field(default_factory=dict)  # display names of who asked


@dataclass(frozen=True)
class EndpointHealth:
    endpoint: WebhookEndpoint
    pending: int
    failed: int


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
    requests: list[CreditRequest] = field(default_factory=list)  # the open ones
    events: list[Event] = field(default_factory=list)  # the newest first
    # display names of the users the page shows (the open holds', who asked for credits)
    people: dict[str, str] = field(default_factory=dict)
    consumptions: list[Consumption] = field(default_factory=list)  # the newest few, to refund
    # who changed what by hand, newest first: the staff corrections and the audit trail
    corrections: list[Correction] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)


def header(tx: Tx, org_id: str) -> Header:
    """Read in the page's transaction: the ledger point, the organization and its balance
    agree. A change after that point arrives as an event, and applying an event twice is
    harmless (it carries the balance after, not a difference)."""
    seq = repository.last_seq(tx.conn, org_id)
    return Header(orgs.get_org(tx, org_id), ledger.balance(tx, org_id, None), seq, tx.now)


def usage_page(
    db: Database,
    caller: Principal,
    org_id: str,
    filters: HistoryFilters,
    before: int | None,
    days: int,
) -> UsagePage:
    own_user = None if caller.may(Action.CONSUMPTIONS_READ) else caller.key.user_id
    admin_view = caller.may(Action.USAGE_READ)
    with db.read(snapshot=True) as tx:
        head = header(tx, org_id)
        zone = head.org.timezone
        # Only the live grants: the page shows the pending and the active ones expiring soon.
        grants = grants_service.list_live(tx, org_id) if caller.may(Action.GRANTS_READ) else []
        history, next_before = history_page(tx, org_id, filters, before, own_user, zone)
        names = feature_names(tx)
        chart = usage_chart(tx, org_id, zone, days, own_user, names)
        teams = orgs.team_usage(tx, q.TeamUsage(org_id)) if admin_view else None
        team_list = orgs.list_teams(tx, q.Teams(org_id)) if admin_view else []
        members = orgs.list_members(tx, q.Members(org_id)) if admin_view else []
        shown = [c.user_id for c in history] + ([own_user] if own_user else [])
        people = repository.display_names(tx.conn, org_id, shown)
        forecast = forecasts.forecast(tx, org_id, FORECAST_WINDOW_DAYS)
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
    return UsagePage(
        header=head,
        features=names,
        upcoming=upcoming,
        expiring=expiring,
        teams=teams,
        team_list=team_list,
        members=members,
        history=history,
        next_before=next_before,
        chart=chart,
        days=days,
        own_user=own_user,
        people=people,
        forecast=forecast,
    )


def history_page(
    tx: Tx,
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
    asked = q.Consumptions(
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
    found = consumptions_repo.search(tx.conn, asked)
    rows = consumptions.from_rows(found[:HISTORY_PAGE_SIZE], tx)
    more = len(found) > HISTORY_PAGE_SIZE
    return rows, (rows[-1].id if more and rows else None)


def usage_chart(
    tx: Tx, org_id: str, zone: str, days: int, user_id: str | None, names: dict[str, str]
) -> Chart:
    today = tx.now.astimezone(ZoneInfo(zone)).date()
    first = today - timedelta(days=days - 1)
    start, end = day_start(first, zone), day_start(today + timedelta(days=1), zone)
    sums = repository.daily_usage(tx.conn, org_id, zone, start, end, user_id)
    return stacked_bars([first + timedelta(days=i) for i in range(days)], sums, names)


@dataclass(frozen=True)
class HistoryRow:
    """One use as the usage history shows it; with its details, its refund (if refunded)."""

    org: Org
    consumption: Consumption
    features: dict[str, str]
    people: dict[str, str]
    refund: Refund | None = None


def consumption_row(
    db: Database, caller: Principal, org_id: str, consumption_id: int, *, details: bool = False
) -> HistoryRow | None:
    """One history row (for a live update), or with ``details`` what the row opens to;
    None when the caller may not see it (a member sees only their own usage)."""
    with db.read(snapshot=True) as tx:
        org = orgs.get_org(tx, org_id)
        found = consumptions.get(tx, org_id, consumption_id)
        if not caller.may(Action.CONSUMPTIONS_READ) and found.user_id != caller.key.user_id:
            return None
        refund = None
        if details and found.refunded_at is not None:
            row = consumptions_repo.get(tx.conn, org_id, consumption_id)
            refund = None if row is None else consumptions.stored_refund(tx, row)
        people = repository.display_names(tx.conn, org_id, [found.user_id])
        return HistoryRow(org, found, feature_names(tx), people, refund)


def usage_live(db: Database, caller: Principal, org_id: str, days: int) -> UsageLive:
    """The usage page's team table and chart as of now (for a live update), from one
    snapshot, with what the caller may see (a member: no teams, their own usage)."""
    own_user = None if caller.may(Action.CONSUMPTIONS_READ) else caller.key.user_id
    with db.read(snapshot=True) as tx:
        org = orgs.get_org(tx, org_id)
        chart = usage_chart(tx, org_id, org.timezone, days, own_user, feature_names(tx))
        teams = orgs.team_usage(tx, q.TeamUsage(org_id)) if caller.may(Action.USAGE_READ) else None
        forecast = forecasts.forecast(tx, org_id, FORECAST_WINDOW_DAYS)
    return UsageLive(org, teams, chart, days, forecast)


def credits_page(db: Database, org_id: str, *, with_requests: bool = False) -> CreditsPage:
    """``with_requests``: also the organization's latest credit requests (an admin's view,
    with the form to ask for more)."""
    order = {GrantState.ACTIVE: 0, GrantState.PENDING: 1, GrantState.EXPIRED: 2}
    with db.read(snapshot=True) as tx:
        head = header(tx, org_id)
        grants = grants_service.list_for_org(tx, q.Grants(org_id))
        asked = (
            credit_requests.list_for_org(tx, q.CreditRequests(org_id))[:REQUESTS_SHOWN]
            if with_requests
            else []
        )
        people = repository.display_names(tx.conn, org_id, [r.requested_by for r in asked])
    grants.sort(key=lambda g: (order.get(g.state, 3), -g.id))
    return CreditsPage(head, grants, asked, people)


def org_rows(
    db: Database, search: str | None, after: str | None
) -> tuple[list[OrgRow], str | None]:
    """A page of organizations with their balances, all from one snapshot."""
    with db.read(snapshot=True) as tx:
        found = orgs.list_orgs(tx, q.Orgs(after=after, limit=ORGS_PAGE_SIZE + 1, search=search))
        shown = found[:ORGS_PAGE_SIZE]
        rows = [OrgRow(o, ledger.balance(tx, o.id, None)) for o in shown]
    return rows, (shown[-1].id if len(found) > ORGS_PAGE_SIZE else None)


def staff_org_page(db: Database, org_id: str, before_seq: int | None) -> StaffOrgPage:
    """The console's page of an organization (sweep it first: the ledger and the holds'
    statuses then include what fell due)."""
    with db.read(snapshot=True) as tx:
        head = header(tx, org_id)
        newest = head.seq if before_seq is None else min(head.seq, before_seq - 1)
        after = max(0, newest - LEDGER_PAGE_SIZE)
        entries = (
            ledger.entries(tx, q.Ledger(org_id, after_seq=after, limit=LEDGER_PAGE_SIZE))
            if newest
            else []
        )
        grants = grants_service.list_for_org(tx, q.Grants(org_id))
        holds = open_holds(tx, org_id)
        names = feature_names(tx)
        asked = credit_requests.list_for_org(
            tx, q.CreditRequests(org_id, status=CreditRequestStatus.OPEN)
        )
        events = webhooks.org_events(tx, q.Events(org_id, limit=RECENT_EVENTS_SHOWN))
        recent = recent_consumptions(tx, org_id)
        fixed = corrections_service.list_for_org(tx, q.Corrections(org_id, limit=AUDIT_SHOWN))
        trail = audit.records(tx.conn, q.AuditLog(org_id, limit=AUDIT_SHOWN))
        users = [h.user_id for h in holds] + [r.requested_by for r in asked]
        people = repository.display_names(tx.conn, org_id, users)
    entries = [e for e in entries if e.seq <= newest]
    entries.reverse()
    grants.sort(key=lambda g: -g.id)
    older = entries[-1].seq if entries and entries[-1].seq > 1 else None
    newer = newest + LEDGER_PAGE_SIZE + 1 if before_seq is not None else None
    return StaffOrgPage(
        head, grants, entries, older, newer, holds, names, requests=asked, events=events,
        people=people, consumptions=recent, corrections=fixed, audit=trail,
    )  # fmt: skip


def recent_consumptions(tx: Tx, org_id: str) -> list[Consumption]:
    """The console's newest consumptions of an organization (each paid one refundable)."""
    asked = q.Consumptions(org_id, limit=RECENT_CONSUMPTIONS_SHOWN)
    rows = consumptions_repo.search(tx.conn, asked)
    return consumptions.from_rows(rows, tx)


def event_summary(event: Event) -> str:
    """One line of what an event says, for the console (its full data is the webhook's)."""
    data = event.data
    parts = [f"#{data['id']}"] if data.get("id") is not None else []
    parts += [f"{label} {data[key]}" for key, label in SUMMARY_FIELDS if data.get(key) is not None]
    return " · ".join(parts)


def credit_request_view(db: Database, org_id: str, request_id: int) -> tuple[Org, CreditRequest]:
    """The organization and the request the grant confirmation shows."""
    with db.read(snapshot=True) as tx:
        return orgs.get_org(tx, org_id), credit_requests.get(tx, org_id, request_id)


def webhooks_page(db: Database) -> list[EndpointHealth]:
    """Every webhook endpoint with its health and its deliveries waiting or given up on."""
    with db.read(snapshot=True) as tx:
        found = webhooks.endpoints_health(tx)
    return [EndpointHealth(e, n.get("pending", 0), n.get("failed", 0)) for e, n in found]


def feature_names(tx: Tx) -> dict[str, str]:
    return {f.key: f.name for f in features.list_all(tx)}


def open_holds(tx: Tx, org_id: str) -> list[Hold]:
    """The organization's open holds, newest first (one past its TTL reads as expired)."""
    asked = q.Holds(org_id, status=HoldStatus.OPEN.value, limit=OPEN_HOLDS_SHOWN)
    rows = holds_repo.search(tx.conn, asked)
    return holds_service.from_rows(tx, rows)


def open_holds_view(
    db: Database, org_id: str
) -> tuple[list[Hold], Org, dict[str, str], dict[str, str]]:
    """The console's open holds (for a live update; sweep first, as for the page), the
    feature names and the display names of the holds' users."""
    with db.read(snapshot=True) as tx:
        org = orgs.get_org(tx, org_id)
        holds = open_holds(tx, org_id)
        people = repository.display_names(tx.conn, org_id, [h.user_id for h in holds])
        return holds, org, feature_names(tx), people


def ledger_row(db: Database, org_id: str, seq: int) -> tuple[Org, LedgerEntry | None]:
    """One ledger entry by its number (for a live update), None when there is none."""
    with db.read(snapshot=True) as tx:
        org = orgs.get_org(tx, org_id)
        found = ledger.entries(tx, q.Ledger(org_id, after_seq=seq - 1, limit=1))
    return org, (found[0] if found and found[0].seq == seq else None)


def void_view(db: Database, org_id: str, grant_id: int) -> tuple[Org, Grant]:
    """The organization and the grant the void confirmation shows."""
    with db.read(snapshot=True) as tx:
        org = orgs.get_org(tx, org_id)
        return org, grants_service.get(tx, org_id, grant_id)


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
