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

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel
from sqlalchemy import Engine

from creditpool import validation as check
from creditpool.auth import service as keys
from creditpool.auth.models import ApiKey
from creditpool.consumptions import repository as consumptions_repo
from creditpool.consumptions import service as consumptions
from creditpool.consumptions.models import Consumption, Refund
from creditpool.consumptions.service import ConsumeRequest
from creditpool.core.errors import CreditPoolError, InvalidInput
from creditpool.core.money import to_decimal
from creditpool.features import service as features
from creditpool.features.models import Feature
from creditpool.grants import repository as grants_repo
from creditpool.grants import service as grants
from creditpool.grants.models import Funding, Grant
from creditpool.idempotency import repository as idempotency_repo
from creditpool.idempotency import service as idempotency
from creditpool.idempotency.service import ScopedKey
from creditpool.ledger import service as ledger
from creditpool.ledger.models import Balance, LedgerEntry
from creditpool.ledger.writer import OrgWriter
from creditpool.orgs import repository as orgs_repo
from creditpool.orgs import service as orgs
from creditpool.orgs.models import Member, Org, Team, TeamUsage
from creditpool.reports import service as reports
from creditpool.reports.models import ReportKind
from creditpool.settings import REPORT_SPAN_DAYS_MAX
from creditpool.storage import engine as engines
from creditpool.storage import migrate
from creditpool.storage.conflicts import lost_a_race
from creditpool.storage.engine import pipelined
from creditpool.storage.uow import Clock, Tx, reading, system_clock, writing

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
CommitListener = Callable[[str, int], None]
Amount = str | int | Decimal
PAGE_SIZE_MAX = 1000
IDEMPOTENCY_KEY_RETENTION = timedelta(days=7)
# Runs of one transaction that lost a race (see ``storage.conflicts.lost_a_race``): the
# second run sees what the winner committed, so more than two is already unusual.
RACE_ATTEMPTS = 4
IdempotencyKey = str | ScopedKey


_replayed: ContextVar[bool] = ContextVar("creditpool_replayed", default=False)


class WriteHook(Protocol):
    """Takes part in the transaction of a directory change (see ``CreditPool.attach``)."""

    def begin(self, tx: Tx) -> None: ...

    def end(self, tx: Tx, result: BaseModel) -> None: ...


_write_hook: ContextVar[WriteHook | None] = ContextVar("creditpool_write_hook", default=None)


def last_call_replayed() -> bool:
    """Whether this thread's last mutation returned a stored result (a replayed key)."""
    return _replayed.get()


@dataclass(frozen=True, slots=True)
class ConsumeCall:
    """One consumption of a batch: the arguments of ``CreditPool.consume``."""

    feature: str
    user_id: str
    quantity: Amount | None = None
    feature_name: str | None = None
    action: str | None = None
    integration: str | None = None
    breakdown: dict[str, int] | None = None
    requests: int | None = None
    metadata: dict[str, Any] | None = None
    idempotency_key: IdempotencyKey | None = None

    def request(self) -> ConsumeRequest:
        return ConsumeRequest.parse(
            self.feature,
            self.user_id,
            quantity=self.quantity,
            feature_name=self.feature_name,
            action=self.action,
            integration=self.integration,
            breakdown=self.breakdown,
            requests=self.requests,
            metadata=self.metadata,
        )


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """One call's answer: its consumption (``replayed`` when its key was known) or its
    refusal."""

    result: Consumption | None = None
    error: CreditPoolError | None = None
    replayed: bool = False


class CreditPool:
    """A prepaid credit pool per organization, over one SQLite file or PostgreSQL."""

    def __init__(self, engine: Engine, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or system_clock
        self._commit_listeners: list[CommitListener] = []

    @classmethod
    def open(
        cls,
        url: str,
        *,
        clock: Clock | None = None,
        migrate_schema: bool = True,
        pool_size: int = 5,
    ) -> CreditPool:
        """Connect to ``url`` (``sqlite:///file.db`` or ``postgresql://...``) and bring the
        schema to the newest version. ``clock`` returns an aware datetime (tests move it)."""
        engine = engines.create(url, pool_size=pool_size)
        if migrate_schema:
            migrate.upgrade(engine)
        return cls(engine, clock=clock)

    def close(self) -> None:
        self.engine.dispose()

    def on_commit(self, listener: CommitListener) -> Callable[[], None]:
        """Call ``listener(org_id, last_seq)`` after each commit that wrote ledger entries
        (in the committing thread; keep it quick). Returns a function that removes it."""
        self._commit_listeners.append(listener)
        return lambda: self._commit_listeners.remove(listener)

    @contextmanager
    def _announcing(self) -> Iterator[list[OrgWriter]]:
        """Around a write transaction: after it committed, tell the commit listeners about
        the writers' new entries (nothing when it raised)."""
        writers: list[OrgWriter] = []
        yield writers
        for w in writers:
            if not w.entries:
                continue
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
                with writing(self.engine, self.clock) as tx:
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

    def __enter__(self) -> CreditPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- organizations, teams, members -------------------------------------------------

    def create_org(self, org_id: str, *, name: str | None = None, timezone: str = "UTC") -> Org:
        return self._write(lambda tx: orgs.create_org(tx, org_id, name, timezone))

    def update_org(self, org_id: str, **changes: Any) -> Org:
        """Change ``name``, ``timezone`` or ``low_balance_thresholds``."""
        unknown = set(changes) - {"name", "timezone", "low_balance_thresholds"}
        if unknown:
            raise InvalidInput(f"cannot change {', '.join(sorted(unknown))} of an organization")
        return self._write(lambda tx: orgs.update_org(tx, org_id, changes))

    def org(self, org_id: str) -> Org:
        with reading(self.engine, self.clock) as tx:
            return orgs.get_org(tx, org_id)

    def orgs(
        self, *, after: str | None = None, limit: int = 100, search: str | None = None
    ) -> list[Org]:
        with reading(self.engine, self.clock) as tx:
            return orgs.list_orgs(tx, after=after, limit=_page(limit), search=search)

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
        with reading(self.engine, self.clock) as tx:
            return orgs.get_team(tx, org_id, team_id)

    def teams(self, org_id: str) -> list[Team]:
        with reading(self.engine, self.clock) as tx:
            return orgs.list_teams(tx, org_id)

    def set_member(self, org_id: str, user_id: str, *, team_id: str | None = None) -> Member:
        """Put a member in a team (or in none). Future consumptions are attributed to it."""
        return self._write(lambda tx: orgs.set_member(tx, org_id, user_id, team_id))

    def member(self, org_id: str, user_id: str) -> Member:
        with reading(self.engine, self.clock) as tx:
            return orgs.get_member(tx, org_id, user_id)

    def members(self, org_id: str, *, team_id: str | None = None) -> list[Member]:
        with reading(self.engine, self.clock) as tx:
            return orgs.list_members(tx, org_id, team_id)

    def team_usage(self, org_id: str, month: str | None = None) -> list[TeamUsage]:
        """Paid usage per team in a calendar month (``YYYY-MM``, the org's zone; default now)."""
        with reading(self.engine, self.clock) as tx:
            return orgs.team_usage(tx, org_id, month)

    # -- features ----------------------------------------------------------------------

    def set_feature(
        self,
        key: str,
        *,
        name: str | None = None,
        cost: Amount | None = None,
        unit_rate: Amount | None = None,
        unit: str | None = None,
    ) -> Feature:
        """Price a feature: a fixed ``cost`` per use, or a ``unit_rate`` per ``unit``."""
        return self._write(
            lambda tx: features.set_feature(
                tx, key, name=name, cost=cost, unit_rate=unit_rate, unit=unit
            )
        )

    def feature(self, key: str) -> Feature:
        with reading(self.engine, self.clock) as tx:
            return features.get(tx, key)

    def features(self) -> list[Feature]:
        with reading(self.engine, self.clock) as tx:
            return features.list_all(tx)

    # -- grants ------------------------------------------------------------------------

    def grant(
        self,
        org_id: str,
        amount: Amount,
        *,
        expires_at: datetime | None = None,
        available_from: datetime | None = None,
        granted_by: str | None = None,
        note: str | None = None,
        reference: str | None = None,
        idempotency_key: IdempotencyKey | None = None,
    ) -> Grant:
        """Deposit ``amount`` credits. Permanent unless ``expires_at``; usable from
        ``available_from`` (default: now)."""
        req = grants.GrantRequest.parse(
            amount,
            expires_at=expires_at,
            available_from=available_from,
            granted_by=granted_by,
            note=note,
            reference=reference,
        )
        return self._mutate(
            org_id, "grant", idempotency_key, req.arguments(), Grant, lambda w: grants.grant(w, req)
        )

    def void_grant(
        self,
        org_id: str,
        grant_id: int,
        *,
        by: str | None = None,
        reason: str | None = None,
        idempotency_key: IdempotencyKey | None = None,
    ) -> Grant:
        """Void a mistaken grant: its remaining credits leave the pool (a ledger entry)."""
        by = check.text(by, "by")
        reason = check.text(reason, "reason", check.TEXT_LENGTH_MAX)
        args = {"grant_id": grant_id, "by": by, "reason": reason}
        return self._mutate(
            org_id,
            "void",
            idempotency_key,
            args,
            Grant,
            lambda w: grants.void(w, _id(grant_id, "grant id"), by, reason),
        )

    def grant_info(self, org_id: str, grant_id: int) -> Grant:
        with reading(self.engine, self.clock) as tx:
            orgs.require_org(tx, org_id)
            return grants.get(tx, org_id, _id(grant_id, "grant id"))

    def grants(self, org_id: str) -> list[Grant]:
        with reading(self.engine, self.clock) as tx:
            orgs.require_org(tx, org_id)
            return grants.list_for_org(tx, org_id)

    # -- consumptions and refunds ------------------------------------------------------

    def consume(
        self,
        org_id: str,
        feature: str,
        *,
        user_id: str,
        quantity: Amount | None = None,
        feature_name: str | None = None,
        action: str | None = None,
        integration: str | None = None,
        breakdown: dict[str, int] | None = None,
        requests: int | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: IdempotencyKey | None = None,
        dry_run: bool = False,
    ) -> Consumption:
        """Charge one use of ``feature`` by ``user_id``: all or nothing.

        Raises InsufficientCredits (nothing charged) when Left < cost. With ``dry_run`` the
        answer shows the cost and the grants it would draw from, and nothing is written.
        """
        req = consumptions.ConsumeRequest.parse(
            feature,
            user_id,
            quantity=quantity,
            feature_name=feature_name,
            action=action,
            integration=integration,
            breakdown=breakdown,
            requests=requests,
            metadata=metadata,
        )
        if dry_run:
            with reading(self.engine, self.clock) as tx:
                orgs.require_org(tx, org_id)
                live = list(grants_repo.load_live(tx.conn, org_id).values())
                return consumptions.dry_run(tx, org_id, live, req)
        return self._mutate(
            org_id,
            "consume",
            idempotency_key,
            req.arguments(),
            Consumption,
            lambda w: consumptions.consume(w, req),
        )

    def refund(
        self,
        org_id: str,
        consumption_id: int,
        *,
        reason: str | None = None,
        idempotency_key: IdempotencyKey | None = None,
    ) -> Refund:
        """Refund a paid consumption; a second refund returns the first result."""
        reason = check.text(reason, "reason", check.TEXT_LENGTH_MAX)
        cid = _id(consumption_id, "consumption id")
        args = {"consumption_id": cid, "reason": reason}
        return self._mutate(
            org_id,
            "refund",
            idempotency_key,
            args,
            Refund,
            lambda w: consumptions.refund(w, cid, reason),
        )

    def consumption(self, org_id: str, consumption_id: int) -> Consumption:
        with reading(self.engine, self.clock) as tx:
            orgs.require_org(tx, org_id)
            return consumptions.get(tx, org_id, _id(consumption_id, "consumption id"))

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
        with reading(self.engine, self.clock) as tx:
            orgs.require_org(tx, org_id)
            rows = consumptions_repo.search(
                tx.conn,
                org_id,
                since=check.aware(since, "since"),
                until=check.aware(until, "until"),
                feature=feature,
                user_id=user_id,
                team_id=team_id,
                status=status,
                before_id=before_id,
                limit=_page(limit),
            )
            return consumptions.from_rows(rows, tx)

    def funded_by(self, org_id: str, grant_id: int) -> list[Funding]:
        """What a grant paid towards each consumption it funded."""
        with reading(self.engine, self.clock) as tx:
            orgs.require_org(tx, org_id)
            grants.get(tx, org_id, grant_id)
            rows = consumptions_repo.funded_by(tx.conn, org_id, grant_id)
            return [Funding(consumption_id=c, amount=to_decimal(a)) for c, a in rows]

    # -- balance and ledger ------------------------------------------------------------

    def balance(self, org_id: str, at: datetime | None = None) -> Balance:
        """Total, used, left, held and upcoming, now or at any past instant."""
        with reading(self.engine, self.clock) as tx:
            return ledger.balance(tx, org_id, check.aware(at, "at"))

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
        with reading(self.engine, self.clock) as tx:
            return ledger.entries(
                tx,
                org_id,
                since=check.aware(since, "since"),
                until=check.aware(until, "until"),
                after_seq=after_seq,
                limit=None if limit is None else _page(limit),
            )

    def sweep(self, org_id: str | None = None) -> int:
        """Write the availability and expiry entries that fell due; returns entries written.
        Also forgets idempotency keys older than the retention period."""
        written = 0
        with reading(self.engine, self.clock) as tx:
            if org_id is not None:
                orgs.require_org(tx, org_id)
            due = orgs_repo.due_org_ids(tx.conn, tx.now)
        for oid in due:
            if org_id is not None and oid != org_id:
                continue
            with self._announcing() as done, writing(self.engine, self.clock) as tx:
                w = OrgWriter.lock(tx, oid)
                done.append(w)
                w.finish()
                written += len(w.entries)
        if org_id is None:
            with writing(self.engine, self.clock) as tx:
                idempotency_repo.delete_older_than(tx.conn, tx.now - IDEMPOTENCY_KEY_RETENTION)
        return written

    def verify(self, org_id: str | None = None) -> list[str]:
        """Replay the ledger and check every invariant: an empty list when sound."""
        self.sweep(org_id)
        problems: list[str] = []
        with reading(self.engine, self.clock) as tx:
            ids = [org_id] if org_id is not None else orgs_repo.all_org_ids(tx.conn)
            for oid in ids:
                problems += ledger.verify_org(tx.conn, orgs.require_org(tx, oid))
        return problems

    # -- reports -----------------------------------------------------------------------

    def report(
        self,
        org_id: str,
        kind: ReportKind | str,
        start: date | str | None = None,
        end: date | str | None = None,
        *,
        span_days_max: int = REPORT_SPAN_DAYS_MAX,
    ) -> reports.Report:
        """The ``usage``, ``balance`` or ``purchases`` report over the days [start, end] of
        the organization's zone (default: this month so far). Refusals (unknown
        organization, bad range) come now; rows are read as the report is iterated
        (``rows()``, or ``reports.formats.csv_chunks`` / ``write_xlsx``). Availability and
        expiry entries that fell due are written first."""
        self.sweep(org_id)
        return reports.open_report(
            self.engine, self.clock, org_id, kind, start, end, span_days_max=span_days_max
        )

    # -- API keys ----------------------------------------------------------------------

    def create_key(
        self,
        role: str,
        *,
        org_id: str | None = None,
        user_id: str | None = None,
        name: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new API key and its secret token (shown once; only a hash is stored)."""
        with writing(self.engine, self.clock) as tx:
            return keys.create(tx, role, org_id, user_id, name)

    def authenticate(self, token: str) -> ApiKey | None:
        with reading(self.engine, self.clock) as tx:
            return keys.authenticate(tx, token)

    def revoke_key(self, key_id: str) -> ApiKey:
        with writing(self.engine, self.clock) as tx:
            return keys.revoke(tx, key_id)

    def keys(self) -> list[ApiKey]:
        with reading(self.engine, self.clock) as tx:
            return keys.list_all(tx)

    # -- the one way to change a pool --------------------------------------------------

    def consume_batch(self, org_id: str, calls: list[ConsumeCall]) -> list[BatchOutcome]:
        """Charge several consumptions of one organization in ONE transaction (one lock,
        one commit), in order. Each call is all-or-nothing on its own: a refused call
        (insufficient credits, bad input, idempotency conflict) writes nothing and leaves
        the others untouched; a replayed key returns its first result. An unexpected
        failure (the database) fails the whole batch and raises.
        """
        outcomes: list[BatchOutcome | None] = [None] * len(calls)
        parsed: list[_BatchCall] = []
        for i, call in enumerate(calls):
            try:
                req = call.request()
                key, scoped = idempotency.parse_key(call.idempotency_key)
                digest = idempotency.fingerprint("consume", req.arguments()) if key else ""
                parsed.append(_BatchCall(i, req, key, scoped, digest))
            except CreditPoolError as error:
                outcomes[i] = BatchOutcome(error=error)
        keyed = any(c.key is not None for c in parsed)
        for attempt in range(1, RACE_ATTEMPTS + 1):
            try:
                for i, outcome in self._consume_batch_once(org_id, parsed):
                    outcomes[i] = outcome
                break
            except Exception as error:
                if not keyed or attempt == RACE_ATTEMPTS or not lost_a_race(error):
                    raise
                log.info("a batch lost a race on an idempotency key and runs again: %s", error)
        return [o if o is not None else BatchOutcome() for o in outcomes]

    def _consume_batch_once(
        self, org_id: str, parsed: list[_BatchCall]
    ) -> list[tuple[int, BatchOutcome]]:
        # The first key is read with the lock (a batch of one, the usual case without
        # contention, then costs no extra round trip); the others each with one query.
        first = next((c for c in parsed if c.key is not None), None)
        with self._announcing() as done, writing(self.engine, self.clock) as tx:
            w = OrgWriter.lock(
                tx,
                org_id,
                first.key if first is not None else None,
                first.scoped_pair if first is not None else None,
            )
            done.append(w)
            seen: dict[str, tuple[str, BatchOutcome]] = {}
            answers: list[tuple[int, BatchOutcome]] = []
            for call in parsed:
                if call is first:
                    known = (w.stored_key, w.scope_claim)
                elif call.key is not None and call.key not in seen:
                    known = idempotency_repo.get(
                        w.conn, org_id, call.key, *call.scoped_pair_or_none
                    )
                else:
                    known = (None, None)
                answers.append((call.index, self._consume_in_batch(w, call, known, seen)))
            with pipelined(tx.conn):  # the writes below read nothing back
                w.finish()
                claims: list[tuple[str, str, str, str]] = []
                for key, (digest, outcome) in seen.items():
                    if outcome.result is not None and not outcome.replayed:
                        idempotency_repo.insert(
                            tx.conn,
                            org_id=org_id,
                            key=key,
                            operation="consume",
                            request_hash=digest,
                            result=outcome.result.model_dump(mode="json"),
                            created_at=tx.now,
                        )
                        scoped = next(c.scoped for c in parsed if c.key == key)
                        if scoped is not None:
                            claims.append((scoped.scope, scoped.key, org_id, digest))
                idempotency_repo.claim(tx.conn, claims, tx.now)
        return answers

    def _consume_in_batch(
        self,
        w: OrgWriter,
        call: _BatchCall,
        known: tuple[idempotency_repo.StoredKey | None, idempotency_repo.ScopeClaim | None],
        seen: dict[str, tuple[str, BatchOutcome]],
    ) -> BatchOutcome:
        key, digest = call.key, call.digest
        try:
            if key is not None:
                if key in seen:  # the same key twice in one batch: the second replays
                    first_digest, first = seen[key]
                    idempotency.replay(
                        idempotency_repo.StoredKey("consume", first_digest, {}),
                        call.shown_key,
                        "consume",
                        digest,
                    )
                    if first.result is None:
                        return first
                    return BatchOutcome(result=first.result, replayed=True)
                stored, claim = known
                idempotency.check_scope(claim, w.org_id, call.scoped)
                result = idempotency.replay(stored, call.shown_key, "consume", digest)
                if result is not None:
                    replayed = BatchOutcome(
                        result=Consumption.model_validate(result), replayed=True
                    )
                    seen[key] = (digest, replayed)
                    return replayed
            outcome = BatchOutcome(result=consumptions.consume(w, call.req))
        except CreditPoolError as error:
            outcome = BatchOutcome(error=error)
        if key is not None and outcome.result is not None:
            seen[key] = (digest, outcome)
        return outcome

    def _mutate(
        self,
        org_id: str,
        operation: str,
        key: IdempotencyKey | None,
        arguments: dict[str, Any],
        model: type[M],
        run: Callable[[OrgWriter], M],
    ) -> M:
        stored_key, scoped = idempotency.parse_key(key)
        digest = idempotency.fingerprint(operation, arguments) if stored_key else ""
        for attempt in range(1, RACE_ATTEMPTS + 1):
            try:
                return self._mutate_once(org_id, operation, stored_key, scoped, digest, model, run)
            except Exception as error:
                # Without a key nothing can collide: one writer per organization.
                if stored_key is None or attempt == RACE_ATTEMPTS or not lost_a_race(error):
                    raise
                log.info("a change lost a race on an idempotency key and runs again: %s", error)
        raise AssertionError("unreachable")

    def _mutate_once(
        self,
        org_id: str,
        operation: str,
        key: str | None,
        scoped: ScopedKey | None,
        digest: str,
        model: type[M],
        run: Callable[[OrgWriter], M],
    ) -> M:
        _replayed.set(False)
        with self._announcing() as done, writing(self.engine, self.clock) as tx:
            # The key's record (and a scoped key's claim) is read with the lock: one round
            # trip, and no other writer of this organization can record the key in between.
            # A scoped key can still be claimed meanwhile in another organization: claiming
            # it then fails, and ``_mutate`` runs this again, which refuses.
            pair = (scoped.scope, scoped.key) if scoped is not None else None
            w = OrgWriter.lock(tx, org_id, key, pair)
            done.append(w)
            if key is not None:
                idempotency.check_scope(w.scope_claim, org_id, scoped)
                shown = scoped.key if scoped is not None else key
                stored = idempotency.replay(w.stored_key, shown, operation, digest)
                if stored is not None:
                    w.finish()  # keep any availability/expiry entries that fell due
                    _replayed.set(True)
                    return model.model_validate(stored)
            result = run(w)
            with pipelined(tx.conn):  # the writes below read nothing back
                w.finish()
                if key is not None:
                    idempotency_repo.insert(
                        tx.conn,
                        org_id=org_id,
                        key=key,
                        operation=operation,
                        request_hash=digest,
                        result=result.model_dump(mode="json"),
                        created_at=tx.now,
                    )
                if scoped is not None:
                    idempotency_repo.claim(
                        tx.conn, [(scoped.scope, scoped.key, org_id, digest)], tx.now
                    )
            return result


@dataclass(frozen=True, slots=True, eq=False)
class _BatchCall:
    """A parsed call of a batch: its index, request, stored key and scoped key, and hash."""

    index: int
    req: ConsumeRequest
    key: str | None
    scoped: ScopedKey | None
    digest: str

    @property
    def shown_key(self) -> str:
        """The key as its caller sent it (for messages)."""
        return self.scoped.key if self.scoped is not None else self.key or ""

    @property
    def scoped_pair(self) -> tuple[str, str] | None:
        return (self.scoped.scope, self.scoped.key) if self.scoped is not None else None

    @property
    def scoped_pair_or_none(self) -> tuple[str | None, str | None]:
        return (self.scoped.scope, self.scoped.key) if self.scoped is not None else (None, None)


def _page(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidInput(f"limit must be from 1 to {PAGE_SIZE_MAX}")
    return limit


def _id(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"{field} must be a positive whole number")
    return value
