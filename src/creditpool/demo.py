"""Demo data: a realistic company with 90 days of history, so every page has something true.

Three organizations in three time zones, teams with and without monthly limits, 40 members,
grants in every state (permanent, expiring, pending, expired, voided), and about two thousand
uses of all four features with ~5% refunds. History is written through the library itself,
in time order, with a simulated clock moved from 90 days ago up to ``now``: the ledger is
exactly what the real system would have written. Seeded, so the same ``now`` gives the same
data.

``prepare_demo`` also hands out an API key per role. Their secrets are stored once in a file
beside a SQLite database (``<db>.demo-keys.json``, mode 0600; for PostgreSQL in the working
directory, ``<database name>.demo-keys.json``), so ``./dev run`` started again shows the
same keys instead of minting four more each time.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url

from creditpool.core.errors import InsufficientCredits, NoActiveGrant, NotFound
from creditpool.core.invariant import invariant
from creditpool.pool import CreditPool

DEMO_DAYS = 90
SEED = 20_261_102
REFUND_SHARE = 0.05
WEEKEND_FACTOR = 0.15
INTEGRATION_SHARE = 0.25


@dataclass(frozen=True)
class TeamPlan:
    id: str
    name: str
    monthly_limit: str | None
    size: int


@dataclass(frozen=True)
class GrantPlan:
    """A grant made ``day`` days into the history; offsets in days."""

    day: float
    amount: str
    note: str
    reference: str | None = None
    available_after: float = 0.0  # pending until then (after the grant)
    lasts: float | None = None  # expires this long after it becomes available
    voided_after: float | None = None  # a staff member voids it this long after


@dataclass(frozen=True)
class OrgPlan:
    id: str
    name: str
    timezone: str
    teams: tuple[TeamPlan, ...]
    without_team: int
    uses_per_workday: float
    grants: tuple[GrantPlan, ...]
    low_balance_thresholds: tuple[str, ...] = ("100", "20")
    nightly_tracker: str | None = None  # a continuous topic detection run every night


DEMO_ORGS: tuple[OrgPlan, ...] = (
    OrgPlan(
        id="northwind",
        name="Northwind Traders GmbH",
        timezone="Europe/Berlin",
        teams=(
            TeamPlan("sales", "Sales", "40", 5),
            TeamPlan("marketing", "Marketing", "60", 5),
            TeamPlan("support", "Customer Support", None, 5),
        ),
        without_team=3,
        uses_per_workday=14,
        nightly_tracker="Support tickets (live)",
        grants=(
            GrantPlan(0, "1000", "Annual plan 2026", "INV-NW-1001"),
            GrantPlan(1, "250", "Launch promotion", "PROMO-NW-Q3", lasts=45),
            GrantPlan(30, "500", "Top-up (entered twice)", "INV-NW-1002", voided_after=0.1),
            GrantPlan(30.05, "500", "Top-up", "INV-NW-1002"),
            GrantPlan(60, "300", "Quarterly bonus credits", "PROMO-NW-Q4", lasts=60),
            GrantPlan(86, "600", "Renewal, starts next week", "INV-NW-1003", available_after=9),
        ),
    ),
    OrgPlan(
        id="globex",
        name="Globex Corporation",
        timezone="America/New_York",
        teams=(
            TeamPlan("engineering", "Engineering", "80", 6),
            TeamPlan("product", "Product", None, 4),
            TeamPlan("ops", "Operations", "25", 2),
        ),
        without_team=2,
        uses_per_workday=10,
        grants=(
            GrantPlan(0, "600", "Starter pack", "INV-GX-2001"),
            GrantPlan(5, "200", "Pilot credits", "PILOT-GX", lasts=30),
            GrantPlan(55, "400", "Expansion", "INV-GX-2002"),
            GrantPlan(
                70, "100", "Granted to the wrong organization", "INV-IT-3002", voided_after=1
            ),
            GrantPlan(75, "150", "Conference promotion", "PROMO-GX-CONF", lasts=30),
            GrantPlan(88, "500", "Next quarter", "INV-GX-2003", available_after=12),
        ),
    ),
    OrgPlan(
        id="initech",
        name="Initech",
        timezone="UTC",
        teams=(
            TeamPlan("analytics", "Analytics", "20", 4),
            TeamPlan("it", "IT", None, 2),
        ),
        without_team=2,
        uses_per_workday=5,
        low_balance_thresholds=("25", "5"),
        grants=(
            GrantPlan(0, "200", "Starter pack", "INV-IT-3001"),
            GrantPlan(50, "60", "Trial extension", "TRIAL-IT", lasts=10),
            GrantPlan(84, "20", "Courtesy top-up", None),
        ),
    ),
)
DEMO_ORG_IDS: tuple[str, ...] = tuple(plan.id for plan in DEMO_ORGS)

FIRST_NAMES = (
    "anna", "ben", "carla", "david", "elena", "felix", "grace", "hugo", "ines", "jonas",
    "kira", "liam", "maya", "nils", "olivia", "paul", "quinn", "rosa", "sam", "tara",
)  # fmt: skip
LAST_NAMES = (
    "schmidt", "okafor", "garcia", "nguyen", "keller", "rossi", "kowalski", "tanaka",
    "silva", "dubois", "meyer", "larsen", "haddad", "brown", "novak", "costa",
)  # fmt: skip
FEATURE_WEIGHTS = {
    "report": 0.35,
    "agent_recommendation": 0.30,
    "action_plan": 0.20,
    "topic_detection": 0.15,
}
FEATURE_NAMES = {
    "report": (
        "Q3 pipeline review", "Weekly NPS digest", "Churn drivers", "Onboarding funnel",
        "Support backlog", "Board pack: customer health",
    ),
    "action_plan": (
        "Reduce onboarding friction", "Win back detractors", "Pricing page fixes",
        "Improve first response time",
    ),
    "agent_recommendation": (
        "Reply to detractor", "Escalate at-risk account", "Tag recurring bug",
        "Suggest help-center article",
    ),
    "topic_detection": ("Support tickets", "App store reviews", "Sales call notes", "NPS comments"),
}  # fmt: skip
INTEGRATIONS = ("MCP: Claude Desktop", "MCP: Cursor", "MCP: VS Code", "Slack", "Zendesk")
REFUND_REASONS = ("downvoted", "wrong data source", "duplicate run", "timed out", "off-topic")


@dataclass(frozen=True)
class Use:
    """One use of a feature, as the vendor's backend would report it."""

    feature: str
    feature_name: str
    action: str
    quantity: str | None = None
    integration: str | None = None


@dataclass
class SimulatedClock:
    """The clock the library reads while the history is written; only moves forward."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def move_to(self, when: datetime) -> None:
        invariant(when >= self.now, "the demo clock never goes back")
        self.now = when


@dataclass
class Stats:
    consumptions: int = 0
    refused: int = 0
    refunds: int = 0


@dataclass
class Simulation:
    """A queue of things that happen at instants, run in time order against the pool."""

    pool: CreditPool
    clock: SimulatedClock
    rng: random.Random
    start: datetime
    end: datetime
    stats: Stats = field(default_factory=Stats)
    _queue: list[tuple[datetime, int, Callable[[], object]]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def at(self, when: datetime, action: Callable[[], object]) -> None:
        if self.start <= when < self.end:
            heapq.heappush(self._queue, (when, next(self._seq), action))

    def day(self, offset: float) -> datetime:
        return self.start + timedelta(days=offset)

    def run(self) -> None:
        while self._queue:
            when, _, action = heapq.heappop(self._queue)
            self.clock.move_to(when)
            action()


def fill_demo(pool_url: str, now: datetime, *, seed: int = SEED) -> list[str]:
    """Write the demo company into ``pool_url``, history ending at ``now`` (aware).

    Returns the ids of the organizations created; an empty list, and no change at all,
    when any demo organization already exists.
    """
    invariant(now.tzinfo is not None, "the demo's now must be timezone-aware")
    end = now.astimezone(UTC)
    start = end - timedelta(days=DEMO_DAYS)
    clock = SimulatedClock(start)
    with CreditPool.open(pool_url, clock=clock) as pool:
        if existing_demo_orgs(pool):
            return []
        sim = Simulation(pool, clock, random.Random(seed), start, end)
        for plan in DEMO_ORGS:
            members = _set_up(sim, plan)
            _schedule_grants(sim, plan)
            _schedule_usage(sim, plan, members)
        sim.run()
    return list(DEMO_ORG_IDS)


def existing_demo_orgs(pool: CreditPool) -> list[str]:
    found = []
    for org_id in DEMO_ORG_IDS:
        try:
            pool.org(org_id)
        except NotFound:
            continue
        found.append(org_id)
    return found


def _set_up(sim: Simulation, plan: OrgPlan) -> list[str]:
    """The organization, its teams and members, at the start of the history."""
    pool = sim.pool
    pool.create_org(plan.id, name=plan.name, timezone=plan.timezone)
    pool.update_org(plan.id, low_balance_thresholds=list(plan.low_balance_thresholds))
    names = [f"{f}.{last}" for f, last in itertools.product(FIRST_NAMES, LAST_NAMES)]
    users = sim.rng.sample(names, sum(t.size for t in plan.teams) + plan.without_team)
    cursor = 0
    for team in plan.teams:
        pool.create_team(plan.id, team.id, name=team.name, monthly_limit=team.monthly_limit)
        for user in users[cursor : cursor + team.size]:
            pool.set_member(plan.id, user, team_id=team.id)
        cursor += team.size
    for user in users[cursor:]:
        pool.set_member(plan.id, user, team_id=None)
    # Halfway through, someone changes teams: older usage stays with the old team.
    mover, new_team = users[-1], plan.teams[0].id
    sim.at(sim.day(45), partial(pool.set_member, plan.id, mover, team_id=new_team))
    return users


def _schedule_grants(sim: Simulation, plan: OrgPlan) -> None:
    for g in plan.grants:
        granted = sim.day(g.day)
        sim.at(granted, partial(_grant, sim, plan.id, g, granted))


def _grant(sim: Simulation, org_id: str, g: GrantPlan, granted: datetime) -> None:
    available = granted + timedelta(days=g.available_after)
    made = sim.pool.grant(
        org_id,
        g.amount,
        available_from=available,
        expires_at=None if g.lasts is None else available + timedelta(days=g.lasts),
        granted_by=sim.rng.choice(("maria@vendor.example", "tom@vendor.example")),
        note=g.note,
        reference=g.reference,
    )
    if g.voided_after is not None:
        void = partial(
            sim.pool.void_grant, org_id, made.id, by="maria@vendor.example", reason=g.note
        )
        sim.at(granted + timedelta(days=g.voided_after), void)


def _schedule_usage(sim: Simulation, plan: OrgPlan, users: list[str]) -> None:
    """Uses in local working hours, fewer on weekends; a nightly tracker run if any."""
    zone = ZoneInfo(plan.timezone)
    first_day = sim.start.astimezone(zone).date()
    # A few heavy users, a long tail: realistic, and it makes the per-user views differ.
    weights = [1.0 / (rank + 1) ** 0.7 for rank in range(len(users))]
    for offset in range(DEMO_DAYS + 1):
        today = first_day + timedelta(days=offset)
        factor = WEEKEND_FACTOR if today.weekday() >= 5 else 1.0
        count = round(plan.uses_per_workday * factor * sim.rng.uniform(0.6, 1.4))
        for _ in range(count):
            hour = sim.rng.uniform(8, 19)
            when = _local(today, hour, zone)
            user = sim.rng.choices(users, weights)[0]
            sim.at(when, _use_later(sim, plan.id, user, _random_use(sim.rng)))
        if plan.nightly_tracker is not None:
            use = Use(
                "topic_detection",
                plan.nightly_tracker,
                "continuous",
                quantity=str(sim.rng.randint(20, 90)),
                integration="Zendesk",
            )
            sim.at(_local(today, 2.0, zone), _use_later(sim, plan.id, users[0], use))


def _random_use(rng: random.Random) -> Use:
    feature = rng.choices(list(FEATURE_WEIGHTS), list(FEATURE_WEIGHTS.values()))[0]
    action = {
        "report": "publish" if rng.random() < 0.8 else "duplicate",
        "action_plan": "generate",
        "agent_recommendation": "accept",
        "topic_detection": "run",
    }[feature]
    return Use(
        feature,
        rng.choice(FEATURE_NAMES[feature]),
        action,
        quantity=str(rng.randint(40, 600)) if feature == "topic_detection" else None,
        integration=rng.choice(INTEGRATIONS) if rng.random() < INTEGRATION_SHARE else None,
    )


def _use_later(sim: Simulation, org_id: str, user: str, use: Use) -> Callable[[], None]:
    def run() -> None:
        rng = sim.rng
        try:
            c = sim.pool.consume(
                org_id,
                use.feature,
                user_id=user,
                quantity=use.quantity,
                feature_name=use.feature_name,
                action=use.action,
                integration=use.integration,
                breakdown={
                    "calls": rng.randint(0, 60),
                    "emails": rng.randint(0, 200),
                    "web_searches": rng.randint(0, 15),
                },
                requests=rng.randint(1, 8),
            )
        except InsufficientCredits:
            sim.stats.refused += 1  # the low-balance organization, near the end
            return
        sim.stats.consumptions += 1
        if c.id is not None and rng.random() < REFUND_SHARE:
            cid, later = c.id, timedelta(minutes=rng.uniform(10, 36 * 60))
            sim.at(sim.clock.now + later, lambda: _refund(sim, org_id, cid))

    return run


def _refund(sim: Simulation, org_id: str, consumption_id: int) -> None:
    reason = sim.rng.choice(REFUND_REASONS)
    try:
        sim.pool.refund(org_id, consumption_id, reason=reason)
    except NoActiveGrant:
        return  # nothing can take it back: the user simply isn't refunded
    sim.stats.refunds += 1


def _local(day: date, hour: float, zone: ZoneInfo) -> datetime:
    local = datetime.combine(day, time(0), tzinfo=zone) + timedelta(hours=hour)
    return local.astimezone(UTC)


# -- keys for every role -------------------------------------------------------------------

DEMO_KEYS_SUFFIX = ".demo-keys.json"
DEMO_KEY_NAMES = {
    "service": "demo backend",
    "staff": "cs@demo.example",
    "admin": "demo admin",
    "member": "demo member",
}


@dataclass(frozen=True)
class DemoKeys:
    """The demo's key secrets, and where they are kept (None: not kept, a database in
    memory)."""

    service: str
    staff: str
    admin: str
    member: str
    org_id: str
    member_user: str
    path: Path | None = None
    reused: bool = False


def prepare_demo(database_url: str, now: datetime) -> DemoKeys:
    """Fill the demo company unless it is there, and give a key for every role: the stored
    ones while they all still work, else four new ones (stored for next time)."""
    with CreditPool.open(database_url) as pool:
        orgs = existing_demo_orgs(pool)
    if not orgs:
        orgs = fill_demo(database_url, now)
    path = demo_keys_path(database_url)
    with CreditPool.open(database_url) as pool:
        org_id = orgs[0]
        member_user = pool.members(org_id)[0].user_id
        stored = _stored_keys(pool, path, org_id, member_user)
        if stored is not None:
            return stored
        secrets = {
            role: pool.create_key(
                role,
                org_id=org_id if role in ("admin", "member") else None,
                user_id=member_user if role == "member" else None,
                name=name,
            )[1]
            for role, name in DEMO_KEY_NAMES.items()
        }
    keys = _demo_keys(secrets, org_id, member_user, path, reused=False)
    if path is not None:
        _store(path, keys)
    return keys


def _demo_keys(
    secrets: dict[str, str], org_id: str, member_user: str, path: Path | None, *, reused: bool
) -> DemoKeys:
    service, staff, admin, member = (secrets[role] for role in DEMO_KEY_NAMES)
    return DemoKeys(service, staff, admin, member, org_id, member_user, path, reused)


def demo_keys_path(database_url: str) -> Path | None:
    """Beside a SQLite file: ``demo.db`` keeps its keys in ``demo.db.demo-keys.json``. A
    server database (PostgreSQL ``.../credits``) keeps them in the working directory, in
    ``credits.demo-keys.json``. None for a database in memory. A file whose keys do not
    open this database (another one of the same name) is replaced, never trusted."""
    url = make_url(database_url)
    name = url.database
    if not name or name == ":memory:":
        return None
    if url.get_backend_name() != "sqlite":
        return Path(Path(name).name + DEMO_KEYS_SUFFIX)
    db_file = Path(name)
    return db_file.with_name(db_file.name + DEMO_KEYS_SUFFIX)


def _stored_keys(
    pool: CreditPool, path: Path | None, org_id: str, member_user: str
) -> DemoKeys | None:
    """The stored keys when every one still opens this database with its role."""
    if path is None or not path.exists():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
        secrets = {role: str(data[role]) for role in DEMO_KEY_NAMES}
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable or from another version: mint new ones
    if data.get("org_id") != org_id or data.get("member_user") != member_user:
        return None
    for role, secret in secrets.items():
        key = pool.authenticate(secret)
        if key is None or key.role.value != role:
            return None  # revoked, or the database was replaced
    return _demo_keys(secrets, org_id, member_user, path, reused=True)


def _store(path: Path, keys: DemoKeys) -> None:
    """Write the secrets readable by their owner only (0600), replacing an older file."""
    data = {role: getattr(keys, role) for role in DEMO_KEY_NAMES}
    data |= {"org_id": keys.org_id, "member_user": keys.member_user}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode on open: make sure
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
