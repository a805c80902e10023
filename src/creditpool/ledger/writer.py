"""The one writer of an organization's pool inside a transaction.

Every change to an organization goes through an ``OrgWriter``: it locks the
organization's row, writes the availability and expiry entries that fell due (with their
own instants, in order) before anything else, hands out per-organization ids, and appends
ledger entries with an unbroken before/after chain. ``finish`` writes it all back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from types import EllipsisType
from typing import Any, NamedTuple

from pydantic import BaseModel

from creditpool.core import timeline
from creditpool.core.alerts import AlertState
from creditpool.core.errors import NotFound
from creditpool.core.events import EventDraft, EventType
from creditpool.core.grants import GrantRow
from creditpool.core.holds import HoldRow, HoldState
from creditpool.core.invariant import invariant
from creditpool.core.ledger import LedgerAction
from creditpool.core.timeline import LedgerDraft
from creditpool.ledger import notices
from creditpool.repositories import events as events_repo
from creditpool.repositories import grants as grants_repo
from creditpool.repositories import holds as holds_repo
from creditpool.repositories import idempotency as idempotency_repo
from creditpool.repositories import ledger as ledger_repo
from creditpool.repositories import orgs as orgs_repo
from creditpool.repositories import outbox as outbox_repo
from creditpool.repositories.idempotency import KeyRecord
from creditpool.repositories.orgs import LockedOrg
from creditpool.storage import compiled
from creditpool.storage.compiled import fetch_together
from creditpool.storage.uow import Tx


class ReadAhead(NamedTuple):
    """A read a change will make under the lock, made in the lock's round trip instead
    (PostgreSQL: one wait less; e.g. a consumption's price and team). ``owner`` is the
    request it is for: only that request takes the rows (``OrgWriter.take_read_ahead``)."""

    owner: object
    query: compiled.Query[Any]
    params: compiled.Params


class OrgWriter:
    def __init__(self, tx: Tx, org: LockedOrg, key: KeyRecord) -> None:
        self.tx = tx
        self.conn = tx.conn
        self.org_id: str = org.id
        self.timezone: str = org.timezone
        self.thresholds: list[int] = list(org.low_balance_thresholds)
        self._ledger_seq: int = org.ledger_seq
        self._object_seq: int = org.object_seq
        self._ledger_at: datetime | None = org.ledger_at
        self._next_event_at: datetime | None = org.next_event_at
        # The longest time to live of the organization's holds (``holds.service.hold``).
        self.longest_hold_s: int | None = org.longest_hold_s
        # Entries never go back in time, even if clocks of two processes disagree.
        self.now = tx.now if org.ledger_at is None else max(tx.now, org.ledger_at)
        self._grants: dict[int, GrantRow] | None = None
        # The open holds, loaded when one is settled or released or one may have run out;
        # the holds this change closed are saved by ``finish``.
        self._holds: dict[int, HoldRow] | None = None
        self._closed_holds: list[HoldRow] = []
        self._new_hold_ends: list[datetime] = []
        self._entries: list[dict[str, Any]] = []
        # What each grant looked like when loaded or inserted: only changed rows are saved.
        self._deferred: list[Callable[[], None]] = []
        self._saved: dict[int, tuple[int, bool, bool, int, bool]] = {}
        # What the first key of the change recorded, read with the lock.
        self.key_record = key
        # The events of this change (the outbox), written by ``finish``.
        self._events: list[EventDraft] = []
        self.notice = timedelta(days=org.expiry_notice_days)
        self._read_ahead: tuple[object, list[Any]] | None = None
        self.alerts = AlertState.from_json(org.alerts)
        self._alerts_read = self.alerts
        # Teams' paid usage this month as this change leaves it (consumptions/team_limits.py)
        self.team_usage: dict[str, tuple[str, int]] = {}

    @classmethod
    def lock(
        cls,
        tx: Tx,
        org_id: str,
        idempotency_key: str | None = None,
        scoped: tuple[str, str] | None = None,
        ahead: ReadAhead | None = None,
    ) -> OrgWriter:
        """Lock the organization; ``key_record`` is what ``idempotency_key`` recorded and
        who holds the ``scoped`` key (scope, key) if that is given. The
        key's record and the live grants are read in the same round trip as the lock
        (every change but a replay needs the grants, and a replay is rare), and so is
        ``ahead``, the read the first change will make (see ``take_read_ahead``)."""
        scope, scoped_key = scoped if scoped is not None else (None, None)
        lock = idempotency_repo.lock_queries(tx.dialect, org_id, idempotency_key, scope, scoped_key)
        reads = [*lock, grants_repo.live_query(org_id)]
        if ahead is not None:
            reads.append((ahead.query, ahead.params))
        rows = fetch_together(tx.conn, reads)
        if ahead is not None:
            ahead_rows = rows.pop()
        *locked, live_rows = rows
        found = idempotency_repo.parse_locked(tx.dialect, locked)
        if found is None:
            raise NotFound(f"organization {org_id!r} not found")
        writer = cls(tx, found.org, found.key)
        writer._grants = grants_repo.by_id(live_rows)
        writer._saved = {gid: _snapshot(g) for gid, g in writer._grants.items()}
        if ahead is not None:
            writer._read_ahead = (ahead.owner, ahead_rows)
        if writer._next_event_at is not None and writer._next_event_at <= writer.now:
            writer.holds()  # a hold may have run out too
            writer.catch_up()
        return writer

    def take_read_ahead(self, owner: object) -> list[Any] | None:
        """The rows read with the lock for ``owner`` (the very request object), once; None
        when there are none (the caller reads them itself)."""
        if self._read_ahead is None or self._read_ahead[0] is not owner:
            return None
        rows = self._read_ahead[1]
        self._read_ahead = None
        return rows

    def grants(self) -> dict[int, GrantRow]:
        """The live grants (neither voided nor logged as expired), loaded once."""
        if self._grants is None:
            self._grants = grants_repo.load_live(self.conn, self.org_id)
            self._saved = {gid: _snapshot(g) for gid, g in self._grants.items()}
        return self._grants

    def holds(self) -> dict[int, HoldRow]:
        """The open holds, loaded once."""
        if self._holds is None:
            self._holds = holds_repo.load_open(self.conn, self.org_id)
        return self._holds

    def add_hold(self, hold: HoldRow) -> None:
        """A hold the caller has just inserted joins the open set (without loading the
        others: only its end matters to ``next_event_at``)."""
        if self._holds is not None:
            self._holds[hold.id] = hold
        else:
            self._new_hold_ends.append(hold.expires_at)

    def open_hold(self, hold_id: int) -> HoldRow | None:
        """The open hold ``hold_id`` (working copy), or None when it is not open: closed
        before, or in this transaction (e.g. it ran out, written at the lock)."""
        if self._holds is not None:
            return self._holds.get(hold_id)
        return holds_repo.load_open_one(self.conn, self.org_id, hold_id)

    def closed_status(self, hold_id: int) -> HoldState | None:
        """The state this transaction closed ``hold_id`` in, if it did."""
        return next((h.status for h in self._closed_holds if h.id == hold_id), None)

    def closed(self, hold: HoldRow) -> None:
        """A hold the caller has settled or released leaves the open set; ``finish``
        writes its new state."""
        if self._holds is not None:
            self._holds.pop(hold.id, None)
        self._closed_holds.append(hold)

    def catch_up(self) -> None:
        open_holds = None if self._holds is None else list(self._holds.values())
        for draft in timeline.catch_up(list(self.grants().values()), self.now, open_holds):
            self.append(draft)
        for hold in open_holds or []:
            if hold.status is not HoldState.OPEN:
                self.closed(hold)

    def new_id(self) -> int:
        self._object_seq += 1
        return self._object_seq

    def add_grant(self, grant: GrantRow) -> None:
        """A grant the caller has just inserted joins the live set."""
        self.grants()[grant.id] = grant
        self._saved[grant.id] = _snapshot(grant)

    def forget_grant(self, grant_id: int) -> None:
        """A voided grant leaves the live set; its row was written by the caller."""
        self.grants().pop(grant_id, None)
        self._saved.pop(grant_id, None)

    def emit(
        self,
        type_: EventType,
        data: dict[str, Any],
        *,
        at: datetime | None = None,
        dedupe: str | None = None,
    ) -> None:
        """An event of this change, after the ledger entries appended so far; written with
        them (``dedupe``: at most once per organization, see ``core/events.py``)."""
        data = {"org_id": self.org_id, **data}
        self._events.append(EventDraft(type_, at or self.now, data, self._ledger_seq, dedupe))

    def emit_model(self, type_: EventType, model: BaseModel, **extra: Any) -> None:
        """An event whose data is a public model as the API shows it (amounts as exact
        decimal strings), plus ``extra``."""
        self.emit(type_, {**model.model_dump(mode="json"), **extra})

    @property
    def events(self) -> list[EventDraft]:
        return self._events

    def append(self, draft: LedgerDraft) -> None:
        moves = draft.method.sign != 0
        invariant(
            draft.credits > 0 if moves else draft.credits == 0,
            lambda: f"ledger entry's credits do not fit its method: {draft}",
        )
        invariant(
            self._ledger_at is None or draft.at >= self._ledger_at,
            lambda: f"ledger entry at {draft.at} before the last one at {self._ledger_at}",
        )
        previous_after = self._entries[-1]["total_after"] if self._entries else None
        invariant(
            previous_after is None or previous_after == draft.total_before,
            lambda: f"ledger chain broken: {previous_after} then {draft.total_before}",
        )
        self._ledger_seq += 1
        self._ledger_at = draft.at
        self._entries.append(
            {
                "org_id": self.org_id,
                "seq": self._ledger_seq,
                "at": draft.at,
                "action": draft.action.value,
                "method": draft.method.value,
                "credits": draft.credits,
                "total_before": draft.total_before,
                "total_after": draft.total_after,
                "grant_id": draft.grant_id,
                "consumption_id": draft.consumption_id,
                "hold_id": draft.hold_id,
                "correction_id": draft.correction_id,
            }
        )
        if draft.action is LedgerAction.EXPIRY:
            data = {"grant_id": draft.grant_id, "credits_lost": notices.credits(draft.credits)}
            self.emit(EventType.GRANT_EXPIRED, data, at=draft.at)
        elif draft.action is LedgerAction.HOLD_EXPIRY:
            data = {"hold_id": draft.hold_id, "released": notices.credits(draft.credits)}
            self.emit(EventType.HOLD_EXPIRED, data, at=draft.at)

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self._entries

    def defer(self, write: Callable[[], None]) -> None:
        """A write that reads nothing back, run first in ``finish`` (on PostgreSQL in the
        same pipeline as the rest: one round trip for all of a change's writes)."""
        self._deferred.append(write)

    def finish(self) -> None:
        """Write the grants' working copies, the ledger entries and the org's counters."""
        for write in self._deferred:
            write()
        self._deferred.clear()
        next_event_at: datetime | EllipsisType | None = ...  # unchanged unless grants loaded
        if self._grants is not None:
            self.catch_up()  # a grant added in this call may already be available
            live = list(self._grants.values())
            found = notices.expiry_notices(live, self.now, self.notice)
            if self._entries:
                self.alerts, alerts = notices.balance_alerts(
                    self.alerts, self.thresholds, live, self.now
                )
                found += alerts
            for type_, data, at in found:
                self.emit(type_, data, at=at)
            self._save_grants()
            next_event_at = self._next_event(
                timeline.next_event_at(live), notices.next_notice(live, self.now, self.notice)
            )
        holds_repo.save(self.conn, self.org_id, self._closed_holds)
        ledger_repo.insert_entries(self.conn, self._entries)
        outbox_repo.insert_events(self.conn, self.org_id, self._events, self.tx.now)
        if self.alerts != self._alerts_read:
            orgs_repo.save_alerts(self.conn, self.org_id, self.alerts.to_json())
        orgs_repo.save_counters(
            self.conn,
            self.org_id,
            ledger_seq=self._ledger_seq,
            object_seq=self._object_seq,
            ledger_at=self._ledger_at,
            next_event_at=next_event_at,
        )
        if self._entries and self.conn.dialect.name == "postgresql":
            # Delivered to every server's LISTEN connection when (and only if) this commits.
            events_repo.announce(self.conn, self.org_id, self._ledger_seq)

    def _save_grants(self) -> None:
        """Write the grants this change modified. Those whose ``expiry_logged`` did not
        change are written without it: naming an indexed column costs SQLite a page of
        that index (``grants_repo.save_working_copies``)."""
        assert self._grants is not None
        changed = [g for gid, g in self._grants.items() if self._saved[gid] != _snapshot(g)]
        relisted = [g for g in changed if self._saved[g.id][2] != g.expiry_logged]
        others = [g for g in changed if self._saved[g.id][2] == g.expiry_logged]
        grants_repo.save_working_copies(self.conn, self.org_id, relisted)
        grants_repo.save_working_copies(self.conn, self.org_id, others, expiry_logged_changed=False)

    def _next_event(self, of_grants: datetime | None, notice: datetime | None) -> datetime | None:
        """The earliest of the grants' next event and the open holds' end. Without the
        holds loaded, the end of the soonest hold is at or after the instant the
        organization recorded (which is in the future, or they would have been loaded), or
        is a hold added by this change."""
        candidates = [of_grants, notice, *self._new_hold_ends]
        if self._holds is not None:
            candidates += [h.expires_at for h in self._holds.values()]
        else:
            # Possibly early (a hold closed since): a change at that instant then loads
            # the open holds, finds nothing due and records the exact instant.
            candidates.append(self._next_event_at)
        return min((t for t in candidates if t is not None), default=None)


def as_of(tx: Tx, org_id: str, grants: list[GrantRow], t: datetime) -> list[GrantRow]:
    """These working copies as the ledger will record them at ``t`` (now or later): the
    holds that ran out by then have given back their credits, as the next change of the
    organization will write it. The grants' states at ``t`` already follow from their
    instants."""
    org = orgs_repo.get_org(tx.conn, org_id)
    if org is not None and holds_may_be_due(org, t):
        caught_up(grants, t, list(holds_repo.load_open(tx.conn, org_id, until=t).values()))
    return grants


def holds_may_be_due(org: Any, t: datetime) -> bool:
    """Whether an organization (its row) may have holds that ran out by ``t``: only then
    are its open holds read (its next event is due)."""
    return org.next_event_at is not None and org.next_event_at <= t


def caught_up(grants: list[GrantRow], t: datetime, due: list[HoldRow]) -> list[GrantRow]:
    """The working copies with the ``due`` holds (open, ending by ``t``, in id order) given
    back: ``as_of`` once its holds are read."""
    if due:
        timeline.catch_up(grants, t, due)
    return grants


def _snapshot(g: GrantRow) -> tuple[int, bool, bool, int, bool]:
    return (g.remaining, g.added_logged, g.expiry_logged, g.held, g.expiry_noticed)
