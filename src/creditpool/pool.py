"""``CreditPool``: the library's front door. Each method is one transaction.

Mutations (grant, void, consume, refund) go through ``_mutate``: lock the organization,
write the availability/expiry entries that fell due, replay or refuse a known idempotency
key, run the service, write back, remember the result under the key, commit. A transaction
that lost a race to a concurrent one (a scoped key claimed meanwhile in another
organization) is run again, and then replays or refuses. Changes of the directory (organizations, teams, members, features)
go through ``_write``, which lets the HTTP layer record its response in the same
transaction (``attach``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, Self, TypeVar, cast, overload

from pydantic import BaseModel
from sqlalchemy import Engine

from creditpool import changes
from creditpool import commands as cmd
from creditpool import queries as q
from creditpool import validation as check
from creditpool.audit import service as audit
from creditpool.audit.models import AuditRecord
from creditpool.auth import service as keys
from creditpool.auth.models import ApiKey, ApiKeyWithSecret
from creditpool.changes import RACE_ATTEMPTS, AnyChange, AnyOutcome, Change, Outcome
from creditpool.consumptions import service as consumptions
from creditpool.consumptions.models import Consumption
from creditpool.core.errors import CreditPoolError, InvalidInput
from creditpool.core.forecast import WINDOW_DAYS_DEFAULT
from creditpool.core.money import to_decimal
from creditpool.corrections import service as corrections
from creditpool.corrections.models import Adjustment, Correction, CorrectionKind
from creditpool.credit_requests import service as credit_requests
from creditpool.features import service as features
from creditpool.features.models import Feature
from creditpool.forecast import service as forecasts
from creditpool.forecast.models import Forecast
from creditpool.grants import service as grants
from creditpool.grants.models import Funding, Grant
from creditpool.holds import service as holds
from creditpool.holds.models import Hold
from creditpool.ledger import service as ledger
from creditpool.ledger.models import Balance, LedgerEntry
from creditpool.ledger.writer import OrgWriter
from creditpool.orgs import service as orgs
from creditpool.orgs.models import Member, Org, Team
from creditpool.orgs.service import list_members, list_teams
from creditpool.orgs.service import team_usage as list_team_usage
from creditpool.reads import Made, reading
from creditpool.reports import service as reports
from creditpool.repositories import consumptions as consumptions_repo
from creditpool.repositories import grants as grants_repo
from creditpool.repositories import holds as holds_repo
from creditpool.repositories import idempotency as idempotency_repo
from creditpool.repositories import orgs as orgs_repo
from creditpool.sessions import service as portal
from creditpool.sessions.models import PortalLink
from creditpool.settings import HOLD_TTL_S_DEFAULT, HOLD_TTL_S_MAX, Settings
from creditpool.storage import engine as engines
from creditpool.storage import migrate
from creditpool.storage.conflicts import lost_a_race
from creditpool.storage.uow import Clock, Database, Tx, system_clock
from creditpool.webhooks.facade import WebhooksFacade

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")
CommitListener = Callable[[str, int], None]


class LedgerObserver(Protocol):
    """Told what the ledger did, after the fact (the server's metrics): called in the
    thread that ran the change; keep it quick. Nothing here can change the outcome."""

    def operations(self, done: list[tuple[str, str]]) -> None:
        """Each change run: its operation and its result (``ok``, ``replayed`` or the
        refusal's code; ``error`` when the transaction failed)."""

    def entries(self, written: list[tuple[str, int]]) -> None:
        """Each ledger entry committed: its action and its credits (in units)."""


Amount = str | int | Decimal
PAGE_SIZE_MAX = check.PAGE_SIZE_MAX
IDEMPOTENCY_KEY_RETENTION = timedelta(days=7)


class WriteHook(Protocol):
    """Takes part in the transaction of a directory change (see ``CreditPool.attach``)."""

    def begin(self, tx: Tx) -> None: ...

    def end(self, tx: Tx, result: BaseModel) -> None: ...


_write_hook: ContextVar[WriteHook | None] = ContextVar("creditpool_write_hook", default=None)


class _Method(Made, Generic[P, R]):
    """A ``CreditPool`` method made from a declaration: read from a pool, a function of the
    parameters ``P`` that answers ``R``."""

    @overload
    def __get__(self, pool: None, owner: Any = None) -> Self: ...
    @overload
    def __get__(self, pool: CreditPool, owner: Any = None) -> Callable[P, R]: ...
    def __get__(self, pool: CreditPool | None, owner: Any = None) -> Any:
        return self._get(pool)


class mutation(_Method[Concatenate[str, P], M]):
    """A ``CreditPool`` method made from a command (``creditpool.commands``): it takes the
    organization's id and then the command's fields, so that a parameter is declared once,
    in the command, for the library and both clients alike. Read from a pool, it is a
    function that builds the command and runs it (``CreditPool._execute``), kept on the
    pool after the first read."""

    def __init__(self, command: Callable[P, cmd.Command[M]]) -> None:
        kind = cast(type[cmd.Command[M]], command)
        super().__init__(kind.doc(), kind.method_signature())
        self.command = command

    def _call(self, pool: CreditPool | None) -> Callable[..., Any]:
        command = self.command

        def method(org_id: str, *args: Any, **kwargs: Any) -> Any:
            assert pool is not None
            return pool._execute(org_id, command(*args, **kwargs))

        return method


class swept(_Method[P, T]):
    """A ``CreditPool`` method that hands its arguments to ``run`` with the pool's database,
    once the availability and expiry entries that fell due in the organization (its
    ``org_id``) are written (``CreditPool.sweep``): its parameters and documentation are
    ``run``'s."""

    def __init__(self, run: Callable[Concatenate[Database, P], T]) -> None:
        called = inspect.signature(run)
        taken = list(called.parameters.values())[1:]  # all but the database
        super().__init__(inspect.getdoc(run) or "", called.replace(parameters=taken))
        self.run, self.called = run, called

    def _call(self, pool: CreditPool | None) -> Callable[..., Any]:
        run, called = self.run, self.called

        def method(*args: Any, **kwargs: Any) -> Any:
            assert pool is not None
            pool.sweep(called.bind(pool.db, *args, **kwargs).arguments["org_id"])
            return run(pool.db, *args, **kwargs)

        return method


BatchOutcome = Outcome[Consumption]
"""One consumption of a batch: its result (``replayed`` when its key was known) or its
refusal."""


class CreditPool(WebhooksFacade):
    """A prepaid credit pool per organization, over one SQLite file or PostgreSQL."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock | None = None,
        hold_ttl_s_default: int = HOLD_TTL_S_DEFAULT,
        hold_ttl_s_max: int = HOLD_TTL_S_MAX,
        settings: Settings | None = None,
    ) -> None:
        """``settings``: the webhook settings and the secret key (default: read from the
        environment)."""
        self.db = Database(engine, clock or system_clock)
        self.settings = settings or Settings()
        self.hold_ttl_s_default = hold_ttl_s_default
        self.hold_ttl_s_max = hold_ttl_s_max
        self._commit_listeners: list[CommitListener] = []
        self._observers: list[LedgerObserver] = []
        self._runner = changes.Runner(self.db, self._announcing)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        clock: Clock | None = None,
        migrate_schema: bool = True,
        pool_size: int = 5,
        hold_ttl_s_default: int = HOLD_TTL_S_DEFAULT,
        hold_ttl_s_max: int = HOLD_TTL_S_MAX,
        settings: Settings | None = None,
    ) -> CreditPool:
        """Connect to ``url`` (``sqlite:///file.db`` or ``postgresql://...``) and bring the
        schema to the newest version. ``clock`` returns an aware datetime (tests move it).
        A hold lasts ``hold_ttl_s_default`` seconds unless asked otherwise, and at most
        ``hold_ttl_s_max``."""
        engine = engines.create(url, pool_size=pool_size)
        if migrate_schema:
            migrate.upgrade(engine)
        return cls(
            engine,
            clock=clock,
            hold_ttl_s_default=hold_ttl_s_default,
            hold_ttl_s_max=hold_ttl_s_max,
            settings=settings,
        )

    def close(self) -> None:
        self.db.dispose()

    def on_commit(self, listener: CommitListener) -> Callable[[], None]:
        """Call ``listener(org_id, last_seq)`` after each commit that wrote ledger entries
        (in the committing thread; keep it quick). Returns a function that removes it."""
        self._commit_listeners.append(listener)
        return lambda: self._commit_listeners.remove(listener)

    def observe(self, observer: LedgerObserver) -> Callable[[], None]:
        """Tell ``observer`` about every change run and ledger entry committed by this
        pool. Returns a function that stops it."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    def _observed(self, batch: list[AnyChange], outcomes: list[AnyOutcome] | None) -> None:
        """``outcomes`` None: the transaction failed."""
        if not self._observers:
            return
        results = [_result_of(o) for o in outcomes] if outcomes is not None else None
        done = [(c.operation, results[i] if results else "error") for i, c in enumerate(batch)]
        for observer in list(self._observers):
            observer.operations(done)

    @contextmanager
    def _announcing(self) -> Iterator[list[OrgWriter]]:
        """Around a write transaction: after it committed, tell the commit listeners about
        the writers' new entries (nothing when it raised)."""
        writers: list[OrgWriter] = []
        yield writers
        for w in writers:
            if not w.entries:
                continue
            for observer in list(self._observers):
                observer.entries([(e["action"], e["credits"]) for e in w.entries])
            for listener in list(self._commit_listeners):
                try:
                    listener(w.org_id, w.entries[-1]["seq"])
                except Exception:  # the change is committed: a listener cannot undo it
                    log.exception("commit listener failed")

    @contextmanager
    def attach(self, hook: WriteHook) -> Iterator[None]:
        """Within this block, a change of organizations, teams, members or features made
        from this thread (or task) calls ``hook.begin(tx)`` first and ``hook.end(tx,
        result)`` last, inside its transaction: the HTTP layer claims an idempotency key and
        records its response there, so the change and its record commit together. ``begin``
        may raise to stop the change (nothing is written)."""
        token = _write_hook.set(hook)
        try:
            yield
        finally:
            _write_hook.reset(token)

    def _write(self, change: Callable[[Tx], M]) -> M:
        """One transaction of a directory change, with the attached hook if there is one;
        run again if it lost a race to a concurrent transaction."""
        hook = _write_hook.get()
        for attempt in range(1, RACE_ATTEMPTS + 1):
            try:
                with self.db.write() as tx:
                    if hook is not None:
                        hook.begin(tx)
                    result = change(tx)
                    if hook is not None:
                        hook.end(tx, result)
                    return result
            except Exception as error:
                if attempt == RACE_ATTEMPTS or not lost_a_race(error):
                    raise
                log.info("a directory change lost a race and runs again: %s", error)
        raise AssertionError("unreachable")

    def _read(self, read: Callable[[Tx], T], org_id: str | None = None) -> T:
        """One read transaction; with ``org_id``, of an organization that must exist
        (NotFound first)."""
        with self.db.read() as tx:
            if org_id is not None:
                orgs.require_org(tx, org_id)
            return read(tx)

    def __enter__(self) -> CreditPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- organizations, teams, members -------------------------------------------------

    def create_org(
        self,
        org_id: str,
        *,
        name: str | None = None,
        timezone: str = "UTC",
        low_balance_thresholds: list[Amount] | tuple[Amount, ...] = (),
        expiry_notice_days: int | None = None,
        by: str | None = None,
    ) -> Org:
        """A new organization (its low-balance alerts and expiry notice period may be set
        at once); ``by``: who created it (the audit trail)."""

        def change(tx: Tx) -> Org:
            org = orgs.create_org(
                tx, org_id, name, timezone, low_balance_thresholds, expiry_notice_days
            )
            audit.record(
                tx.conn, "org.created", by=by, at=org.created_at, org_id=org.id,
                name=org.name, timezone=org.timezone,
                low_balance_thresholds=[str(t) for t in org.low_balance_thresholds],
                expiry_notice_days=org.expiry_notice_days,
            )  # fmt: skip
            return org

        return self._write(change)

    def update_org(self, org_id: str, *, by: str | None = None, **changes: Any) -> Org:
        """Change ``name``, ``timezone``, ``low_balance_thresholds`` or
        ``expiry_notice_days``; ``by``: who changed them (the audit trail)."""
        unknown = set(changes) - {
            "name",
            "timezone",
            "low_balance_thresholds",
            "expiry_notice_days",
        }
        if unknown:
            raise InvalidInput(f"cannot change {', '.join(sorted(unknown))} of an organization")

        def change(tx: Tx) -> Org:
            org = orgs.update_org(tx, org_id, changes)
            shown = {k: getattr(org, k) for k in sorted(changes)}
            audit.record(tx.conn, "org.updated", by=by, at=tx.now, org_id=org.id, **shown)
            return org

        return self._write(change)

    def org(self, org_id: str) -> Org:
        return self._read(lambda tx: orgs.get_org(tx, org_id))

    def orgs(
        self, *, after: str | None = None, limit: int = 100, search: str | None = None
    ) -> list[Org]:
        asked = q.Orgs(after=after, limit=_page(limit), search=search)
        return self._read(lambda tx: orgs.list_orgs(tx, asked))

    def create_team(
        self,
        org_id: str,
        team_id: str,
        *,
        name: str | None = None,
        monthly_limit: Amount | None = None,
    ) -> Team:
        return self._write(lambda tx: orgs.create_team(tx, org_id, team_id, name, monthly_limit))

    def update_team(self, org_id: str, team_id: str, **changes: Any) -> Team:
        """Change ``name`` or ``monthly_limit`` (None removes the limit)."""
        unknown = set(changes) - {"name", "monthly_limit"}
        if unknown:
            raise InvalidInput(f"cannot change {', '.join(sorted(unknown))} of a team")
        return self._write(lambda tx: orgs.update_team(tx, org_id, team_id, changes))

    def set_team_limit(self, org_id: str, team_id: str, monthly_limit: Amount | None) -> Team:
        return self.update_team(org_id, team_id, monthly_limit=monthly_limit)

    def team(self, org_id: str, team_id: str) -> Team:
        return self._read(lambda tx: orgs.get_team(tx, org_id, team_id))

    teams = reading(q.Teams, list_teams)

    def set_member(
        self,
        org_id: str,
        user_id: str,
        *,
        team_id: str | None = None,
        display_name: str | None = None,
    ) -> Member:
        """Put a member in a team (or in none); future consumptions are attributed to it.
        The member is replaced as a whole, like an HTTP PUT: ``team_id`` None is no team and
        ``display_name`` None is no display name (pages then show the user id). A display
        name is at most 200 characters, not blank."""
        return self._write(lambda tx: orgs.set_member(tx, org_id, user_id, team_id, display_name))

    def member(self, org_id: str, user_id: str) -> Member:
        return self._read(lambda tx: orgs.get_member(tx, org_id, user_id))

    members = reading(q.Members, list_members)

    team_usage = reading(q.TeamUsage, list_team_usage)

    # -- features ----------------------------------------------------------------------

    def set_feature(
        self,
        key: str,
        *,
        name: str | None = None,
        cost: Amount | None = None,
        unit_rate: Amount | None = None,
        unit: str | None = None,
        changed_by: str | None = None,
    ) -> Feature:
        """Price a feature: a fixed ``cost`` per use, or a ``unit_rate`` per ``unit``, from
        now on (past consumptions keep theirs). The price joins the feature's history with
        ``changed_by``, who set it."""
        return self._write(
            lambda tx: features.set_feature(
                tx,
                key,
                name=name,
                cost=cost,
                unit_rate=unit_rate,
                unit=unit,
                changed_by=changed_by,
            )
        )

    feature_prices = reading(q.FeaturePrices, features.prices)

    def feature(self, key: str) -> Feature:
        return self._read(lambda tx: features.get(tx, key))

    features = reading(q.Features, features.list_all)

    # -- grants ------------------------------------------------------------------------

    grant = mutation(cmd.GrantBy)

    void_grant = mutation(cmd.VoidGrantBy)

    change_grant_expiry = mutation(cmd.ChangeGrantExpiryBy)

    adjust = mutation(cmd.AdjustBy)

    def adjustment(self, org_id: str, adjustment_id: int) -> Adjustment:
        return self._read(lambda tx: corrections.get_adjustment(tx, org_id, adjustment_id))

    def audit_log(
        self, org_id: str | None = None, *, before_id: int | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """The audit trail of changes that write no ledger entry (organizations, keys,
        portal links) and of refunds: who, when, what; newest first, an organization's or
        (``org_id`` None) every one."""
        asked = q.AuditLog(org_id, before_id=before_id, limit=_page(limit))
        if before_id is not None:
            _id(before_id, "before_id")
        with self.db.read() as tx:
            if org_id is not None:
                orgs.require_org(tx, org_id)
            return audit.records(tx.conn, asked)

    def corrections(
        self,
        org_id: str,
        *,
        before_id: int | None = None,
        limit: int = 100,
        grant_id: int | None = None,
        kind: CorrectionKind | str | None = None,
    ) -> list[Correction]:
        """The staff corrections of an organization (who, when, why), newest first, at
        most ``limit``; pass the last id as ``before_id`` for the next page."""
        wanted = corrections.parse_kind(kind)
        page = _page(limit)
        for value, name in ((before_id, "before_id"), (grant_id, "grant_id")):
            if value is not None:
                _id(value, name)
        asked = q.Corrections(
            org_id, kind=wanted, grant_id=grant_id, before_id=before_id, limit=page
        )
        with self.db.read() as tx:
            return corrections.list_for_org(tx, asked)

    def grant_info(self, org_id: str, grant_id: int) -> Grant:
        return self._read(lambda tx: grants.get(tx, org_id, _id(grant_id, "grant id")), org_id)

    grants = reading(q.Grants, grants.list_for_org)

    # -- consumptions and refunds ------------------------------------------------------

    consume = mutation(cmd.Consume)

    refund = mutation(cmd.RefundBy)

    def consumption(self, org_id: str, consumption_id: int) -> Consumption:
        return self._read(
            lambda tx: consumptions.get(tx, org_id, _id(consumption_id, "consumption id")), org_id
        )

    def consumptions(
        self,
        org_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        feature: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        status: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[Consumption]:
        """Newest first, at most ``limit``; pass the last id as ``before_id`` for the next page."""
        if status not in (None, "paid", "refunded"):
            raise InvalidInput("status must be 'paid' or 'refunded'")
        with self.db.read() as tx:
            orgs.require_org(tx, org_id)
            asked = q.Consumptions(
                org_id, since=check.aware(since, "since"), until=check.aware(until, "until"),
                feature=feature, user_id=user_id, team_id=team_id, status=status,
                before_id=before_id, limit=_page(limit),
            )  # fmt: skip
            return consumptions.from_rows(consumptions_repo.search(tx.conn, asked), tx)

    def funded_by(self, org_id: str, grant_id: int) -> list[Funding]:
        """What a grant paid towards each consumption it funded."""
        with self.db.read() as tx:
            orgs.require_org(tx, org_id)
            grants.get(tx, org_id, grant_id)
            rows = consumptions_repo.funded_by(tx.conn, org_id, grant_id)
            return [Funding(consumption_id=c, amount=to_decimal(a)) for c, a in rows]

    # -- holds -------------------------------------------------------------------------

    hold = mutation(cmd.Hold)

    settle = mutation(cmd.Settle)

    release = mutation(cmd.Release)

    def hold_of(self, org_id: str, hold_id: int) -> Hold:
        hid = _id(hold_id, "hold id")
        with self.db.read() as tx:
            orgs.require_org(tx, org_id)
            found = holds.get(tx, org_id, hid)
        if found.status != "expired" or found.closed_at is not None:
            return found
        self.sweep(org_id)  # ran out but not written yet: write it, then say what it gave back
        return self._read(lambda tx: holds.get(tx, org_id, hid))

    def holds(
        self,
        org_id: str,
        *,
        status: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[Hold]:
        """Newest first, at most ``limit``; pass the last id as ``before_id`` for the next
        page. ``status``: open, settled, released or expired."""
        wanted = holds.parse_status(status)
        page = _page(limit)
        if before_id is not None:
            _id(before_id, "before_id")
        self.sweep(org_id)  # holds that ran out are written first: statuses are exact
        asked = q.Holds(org_id, status=wanted, before_id=before_id, limit=page)
        with self.db.read() as tx:
            orgs.require_org(tx, org_id)
            return holds.from_rows(tx, holds_repo.search(tx.conn, asked))

    # -- balance and ledger ------------------------------------------------------------

    def balance(self, org_id: str, at: datetime | None = None) -> Balance:
        """Total, used, left, held and upcoming, now or at any past instant."""
        return self._read(lambda tx: ledger.balance(tx, org_id, check.aware(at, "at")))

    def forecast(self, org_id: str, *, window_days: int = WINDOW_DAYS_DEFAULT) -> Forecast:
        """When Left reaches zero at the pace of the paid usage of the last ``window_days``
        days (1 to 365, of 24 hours, ending now), what expires unused on the way, and each
        team's projected month-end usage against its limit."""
        days = forecasts.window_days(window_days)
        return self._read(lambda tx: forecasts.forecast(tx, org_id, days))

    def ledger(
        self,
        org_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
    ) -> list[LedgerEntry]:
        """Entries in order; availability and expiry that fell due are written first."""
        self.sweep(org_id)
        with self.db.read() as tx:
            asked = q.Ledger(
                org_id, since=check.aware(since, "since"), until=check.aware(until, "until"),
                after_seq=after_seq, limit=None if limit is None else _page(limit),
            )  # fmt: skip
            return ledger.entries(tx, asked)

    def sweep(self, org_id: str | None = None) -> int:
        """Write the availability and expiry entries that fell due; returns entries written.
        Also forgets idempotency keys older than the retention period."""
        written = 0
        with self.db.read() as tx:
            if org_id is not None:
                orgs.require_org(tx, org_id)
            due = orgs_repo.due_org_ids(tx.conn, tx.now)
        for oid in due:
            if org_id is not None and oid != org_id:
                continue
            with self._announcing() as done, self.db.write() as tx:
                w = OrgWriter.lock(tx, oid)
                done.append(w)
                w.finish()
                written += len(w.entries)
        if org_id is None:
            with self.db.write() as tx:
                idempotency_repo.delete_older_than(tx.conn, tx.now - IDEMPOTENCY_KEY_RETENTION)
        return written

    def verify(self, org_id: str | None = None) -> list[str]:
        """Replay the ledger and check every invariant: an empty list when sound."""
        self.sweep(org_id)
        problems: list[str] = []
        with self.db.read() as tx:
            ids = [org_id] if org_id is not None else orgs_repo.all_org_ids(tx.conn)
            for oid in ids:
                problems += ledger.verify_org(tx.conn, orgs.require_org(tx, oid), tx.now)
        return problems

    # -- reports -----------------------------------------------------------------------

    report = swept(reports.open_report)

    # -- API keys ----------------------------------------------------------------------

    def create_key(
        self,
        role: str,
        *,
        org_id: str | None = None,
        user_id: str | None = None,
        name: str | None = None,
        by: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new API key and its secret token (shown once; only a hash is stored); ``by``:
        who created it (the audit trail)."""

        def change(tx: Tx) -> ApiKeyWithSecret:
            made = keys.create(tx, role, org_id, user_id, name)
            audit.record(
                tx.conn, "key.created", by=by, at=made.created_at, org_id=made.org_id,
                key_id=made.id, role=made.role, user_id=made.user_id, name=made.name,
            )  # fmt: skip
            return made

        made = self._write(change)
        return made.key, made.secret

    def authenticate(self, token: str) -> ApiKey | None:
        return self._read(lambda tx: keys.authenticate(tx, token))

    def revoke_key(
        self, key_id: str, *, org_id: str | None = None, by: str | None = None
    ) -> ApiKey:
        """Revoke a key (it stops working within seconds); revoking it again answers the
        same. ``org_id``: the key must be one of this organization's (else NotFound).
        ``by``: who revoked it (the audit trail)."""

        def change(tx: Tx) -> ApiKey:
            key, now_revoked = keys.revoke(tx, key_id, org_id)
            if now_revoked:  # revoking it again changed nothing: no record
                audit.record(
                    tx.conn, "key.revoked", by=by, at=key.revoked_at or tx.now,
                    org_id=key.org_id, key_id=key.id, role=key.role,
                )  # fmt: skip
            return key

        return self._write(change)

    keys = reading(q.Keys, keys.list_keys)

    # -- portal links ------------------------------------------------------------------

    def portal_link(
        self,
        org_id: str,
        user_id: str,
        *,
        role: str = "member",
        ttl_s: int | None = None,
        by: str | None = None,
    ) -> PortalLink:
        """A one-time sign-in link's token for one user of the organization (``role``
        admin or member): it opens one browser session, within ``ttl_s`` seconds (default:
        the settings' ``portal_link_ttl_s``). The token is shown once; only its hash is
        stored. ``by``: who asked for it (the audit trail)."""
        seconds = self.settings.portal_link_ttl_s if ttl_s is None else ttl_s
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
            raise InvalidInput("ttl_s must be a whole number of seconds, at least 1")
        ttl = timedelta(seconds=seconds)

        def change(tx: Tx) -> PortalLink:
            link = portal.mint(tx, org_id, user_id, role, ttl)
            audit.record(
                tx.conn, "portal_link.created", by=by, at=tx.now, org_id=org_id,
                user_id=link.user_id, role=link.role, expires_at=link.expires_at,
            )  # fmt: skip
            return link

        return self._write(change)

    # -- the one way to change a pool --------------------------------------------------

    request_credits = mutation(cmd.RequestCreditsBy)

    credit_requests = reading(q.CreditRequests, credit_requests.list_for_org)

    grant_credit_request = mutation(cmd.GrantCreditRequestBy)

    dismiss_credit_request = mutation(cmd.DismissCreditRequestBy)

    def _execute(self, org_id: str, command: cmd.Command[M]) -> M:
        """Run a command (what every method made by ``mutation`` does)."""
        if isinstance(command, cmd.Consume) and command.dry_run:
            req = changes.consume_request(command)
            with self.db.read() as tx:
                orgs.require_org(tx, org_id)
                live = list(grants_repo.load_live(tx.conn, org_id).values())
                return cast(M, consumptions.dry_run(tx, org_id, live, req))
        return self.apply(org_id, changes.of(command, self)).unwrap()

    def apply(self, org_id: str, change: Change[M]) -> Outcome[M]:
        """Run one change (see ``creditpool.changes``): its outcome says whether its key was
        replayed; a refusal raises."""
        try:
            outcome: Outcome[M] = self._runner.run(org_id, [change], raising=True)[0]
        except CreditPoolError as error:
            self._observed([change], [Outcome(error=error)])
            raise
        except Exception:
            self._observed([change], None)
            raise
        self._observed([change], [outcome])
        return outcome

    def apply_batch(self, org_id: str, batch: list[AnyChange]) -> list[AnyOutcome]:
        """Run several changes of one organization in ONE transaction (one lock, one
        commit), in order, each all-or-nothing on its own: a refusal is its outcome's
        ``error`` and leaves the others untouched. A database failure fails the batch."""
        try:
            outcomes = self._runner.run(org_id, batch, raising=False)
        except Exception:
            self._observed(batch, None)
            raise
        self._observed(batch, outcomes)
        return outcomes

    def consume_batch(self, org_id: str, calls: list[cmd.Consume]) -> list[BatchOutcome]:
        """``apply_batch`` of consumptions; a call refused while parsing is refused alone."""
        outcomes: list[BatchOutcome | None] = [None] * len(calls)
        parsed: list[tuple[int, AnyChange]] = []
        for i, call in enumerate(calls):
            try:
                parsed.append((i, changes.of(call, self)))
            except CreditPoolError as error:
                outcomes[i] = BatchOutcome(error=error)
        if parsed:
            ran = self.apply_batch(org_id, [c for _, c in parsed])
            for (i, _), outcome in zip(parsed, ran, strict=True):
                outcomes[i] = outcome
        return [o if o is not None else BatchOutcome() for o in outcomes]


def _result_of(outcome: AnyOutcome) -> str:
    if outcome.error is not None:
        return outcome.error.code
    return "replayed" if outcome.replayed else "ok"


def _limit(limit: int | None) -> int | None:
    """A page size, or None for a whole list."""
    return None if limit is None else _page(limit)


_page = check.page_limit


_id = check.positive_id
