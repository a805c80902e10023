"""The balance at any instant, the ledger, the sweep, and ``verify``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from creditpool.core.balance import BalanceUnits, summarize
from creditpool.core.grants import left_at
from creditpool.core.holds import HoldState
from creditpool.core.ledger import LedgerAction, LedgerMethod
from creditpool.core.money import format_credits, to_decimal
from creditpool.core.timeline import LedgerDraft, logged_left
from creditpool.ledger.models import Balance, LedgerEntry
from creditpool.ledger.writer import OrgWriter, as_of, caught_up, holds_may_be_due
from creditpool.orgs.service import require_org
from creditpool.queries import Corrections, Ledger
from creditpool.repositories import corrections as corrections_repo
from creditpool.repositories import grants as grants_repo
from creditpool.repositories import holds as holds_repo
from creditpool.repositories import ledger as repository
from creditpool.repositories import orgs as orgs_repo
from creditpool.repositories import verify as verify_repo
from creditpool.storage.tables import (
    allocations,
    grants,
    hold_allocations,
    ledger,
    restorations,
)
from creditpool.storage.uow import Tx

SIGN = {method.value: method.sign for method in LedgerMethod}
# The columns of an entry that are credits (integers of units in the table).
AMOUNTS = ("credits", "total_before", "total_after")


def left_now(w: OrgWriter) -> int:
    """Left now, over the writer's live grants: an entry's ``total_before`` when read before
    the change moves any credit."""
    return left_at(list(w.grants().values()), w.now)


def append_move(
    w: OrgWriter,
    before: int,
    action: LedgerAction,
    method: LedgerMethod,
    credits: int,
    **ids: int | None,
) -> None:
    """Append the entry of ``credits`` moved into Left or out of it (``method.sign``) now,
    from ``before``; ``ids`` name its grant, consumption or hold."""
    after = before + method.sign * credits
    w.append(LedgerDraft(w.now, action, method, credits, before, after, **ids))


def balance(tx: Tx, org_id: str, at: datetime | None) -> Balance:
    org = require_org(tx, org_id)
    t = tx.now if at is None else at
    if at is None:
        rows = list(grants_repo.load_live(tx.conn, org_id).values())
        units = summarize(as_of(tx, org_id, rows, t), t)
    else:
        past = org.ledger_at is not None and t < org.ledger_at
        # In the past only the grants active or pending at t count (and hold what was held
        # at t); at or after the last entry every grant is read, as a catch-up would.
        full = grants_repo.list_for_org(tx.conn, org_id, counting_at=t if past else None)
        rows = [grants_repo.to_grant_row(r) for r in full]
        # What each grant could hold at t: its amount less what was voided from it in part
        # by then (a later partial void does not reach back).
        voided_then = corrections_repo.voided_in_part_upto(tx.conn, org_id, t)
        for g, r in zip(rows, full, strict=True):
            g.amount = r.amount - voided_then.get(g.id, 0)
        if not past:
            # Nothing was written after t: the grants' remaining and held still describe t.
            units = summarize(as_of(tx, org_id, rows, t), t)
        else:
            by_id = {g.id: g for g in rows}
            held = sum(
                amount
                for gid, amount in holds_repo.held_at(tx.conn, org_id, t, org.longest_hold_s)
                if gid in by_id and by_id[gid].is_active(t)
            )
            units = summarize(rows, t, left=repository.left_at(tx.conn, org_id, t), held=held)
    return _balance(org_id, t, units)


def balances_now(tx: Tx, org_ids: list[str]) -> dict[str, Balance]:
    """``balance(tx, org_id, None)`` of several organizations in a fixed few statements
    whatever their number (a stream hub's round: ``http.feed``): their rows, their live
    grants, and the due holds of those whose next event is due, each read for all of them
    at once; then each balance from the same rules as ``balance``'s. An organization that
    does not exist is absent."""
    t = tx.now
    found = orgs_repo.get_orgs(tx.conn, org_ids)
    live = grants_repo.load_live_of(tx.conn, list(found))
    due_ids = [org_id for org_id, org in found.items() if holds_may_be_due(org, t)]
    due = holds_repo.load_open_of(tx.conn, due_ids, until=t) if due_ids else {}
    return {
        org_id: _balance(
            org_id, t, summarize(caught_up(live.get(org_id, []), t, due.get(org_id, [])), t)
        )
        for org_id in found
    }


def _balance(org_id: str, t: datetime, units: BalanceUnits) -> Balance:
    return Balance(
        org_id=org_id,
        at=t,
        total=to_decimal(units.total),
        used=to_decimal(units.used),
        left=to_decimal(units.left),
        held=to_decimal(units.held),
        upcoming=to_decimal(units.upcoming),
    )


def entries(tx: Tx, asked: Ledger) -> list[LedgerEntry]:
    require_org(tx, asked.org_id)
    return [entry_model(r) for r in repository.list_entries(tx.conn, asked)]


def entry_model(r: Any) -> LedgerEntry:
    """A ledger row as the public model: its columns are the model's fields."""
    values = dict(r._mapping)
    return LedgerEntry(**values | {name: to_decimal(values[name]) for name in AMOUNTS})


def verify_org(conn: Connection, org: Any, now: datetime | None = None) -> list[str]:
    """Replay one organization's ledger and check every invariant; problems as sentences.

    Every table is streamed (``repositories.verify``): what is kept while reading is a
    running sum per grant and the rows of one consumption or hold at a time, so memory
    stays flat as the history grows and the time is linear in it (bench/growth.py)."""
    problems: list[str] = []
    org_id = org.id
    say = problems.append
    problems += _verify_grants(conn, org_id)
    problems += _verify_consumptions(conn, org_id)
    problems += _verify_holds(conn, org_id, now)
    problems += _verify_corrections(conn, org_id)
    after = 0
    last_at: datetime | None = None
    last_seq: int | None = None
    # Millions of entries: each is tested in one expression, and only one that fails is
    # looked at again to say what is wrong with it.
    for expected_seq, entry in enumerate(verify_repo.entries(conn, org_id), start=1):
        seq, at, method, credits, before, total_after = entry
        last_seq = seq
        sign = SIGN.get(method)
        if (
            sign is None
            or seq != expected_seq
            or (credits != 0 if sign == 0 else credits <= 0)
            or before != after
            or total_after != before + sign * credits
            or total_after < 0
            or (last_at is not None and at < last_at)
        ):
            problems += _entry_problems(org_id, expected_seq, entry, after, last_at)
            if sign is None:
                continue
        after, last_at = total_after, at
    if last_seq is not None and org.ledger_seq != last_seq:
        say(f"{org_id}: organization's ledger_seq {org.ledger_seq} != last entry #{last_seq}")
    live = list(grants_repo.load_live(conn, org_id).values())
    if logged_left(live) != after:
        say(
            f"{org_id}: grants hold {format_credits(logged_left(live))} but the ledger ends at {format_credits(after)}"
        )
    return problems


def _entry_problems(
    org_id: str, expected_seq: int, entry: Any, after: int, last_at: datetime | None
) -> list[str]:
    """What is wrong with one entry, given the previous entry's total after and instant."""
    problems: list[str] = []
    say = problems.append
    seq, at, method, credits, total_before, total_after = entry
    where = f"{org_id}: ledger #{seq}"
    if seq != expected_seq:
        say(f"{where}: sequence gap, expected #{expected_seq}")
    if method not in SIGN:
        say(f"{where}: unknown method {method!r}")
        return problems
    if SIGN[method] == 0 and credits != 0:
        say(f"{where}: {method} moves no credits, yet records {format_credits(credits)}")
    elif SIGN[method] != 0 and credits <= 0:
        say(f"{where}: credits {format_credits(credits)} not positive")
    if total_before != after:
        say(
            f"{where}: total before {format_credits(total_before)} != previous after {format_credits(after)}"
        )
    if total_after != total_before + SIGN[method] * credits:
        say(f"{where}: after != before {'+' if SIGN[method] > 0 else '-'} credits")
    if total_after < 0:
        say(f"{where}: negative balance {format_credits(total_after)}")
    if last_at is not None and at < last_at:
        say(f"{where}: at {at.isoformat()} is before the previous entry")
    return problems


class _Groups:
    """Rows ordered by their first column, handed out one key's rows at a time as the keys
    asked for grow; the rows of a key never asked for are passed over."""

    def __init__(self, rows: Iterable[Any]) -> None:
        self._groups = groupby(rows, key=itemgetter(0))
        self._head = next(self._groups, None)

    def take(self, key: int) -> list[Any]:
        """The rows of ``key``, key first (none: an empty list)."""
        head = self._head
        while head is not None and head[0] < key:
            head = next(self._groups, None)
        if head is None or head[0] != key:
            self._head = head
            return []
        rows = list(head[1])
        self._head = next(self._groups, None)
        return rows


def _sums(conn: Connection, table: Any, key: Any, org_id: str) -> dict[int, int]:
    """Added up here, not by SUM(): a grant drawn from again and again (consumed, refunded,
    consumed...) can be drawn more in all than a 64-bit integer holds, which SQLite's SUM()
    refuses with "integer overflow". One sum per key (a grant), the rows streamed."""
    sums: dict[int, int] = defaultdict(int)
    for k, amount in verify_repo.amounts(conn, table, key, org_id):
        sums[k] += amount
    return dict(sums)


def _verify_grants(conn: Connection, org_id: str) -> list[str]:
    problems = []
    drawn = _sums(conn, allocations, allocations.c.grant_id, org_id)
    restored = _sums(conn, restorations, restorations.c.grant_id, org_id)
    held_out = _sums(conn, hold_allocations, hold_allocations.c.grant_id, org_id)
    adjusted = corrections_repo.moved_by_grant(conn, org_id)
    held_open: dict[int, int] = defaultdict(int)
    returned: dict[int, int] = defaultdict(int)
    for _, gid, amount, back, status in verify_repo.hold_allocations_by_hold(conn, org_id):
        if status == HoldState.OPEN:
            held_open[gid] += amount
        returned[gid] += back or 0
    for g in conn.execute(select(grants).where(grants.c.org_id == org_id)):
        where = f"{org_id}: grant {g.id}"
        # what a grant still in the pool can hold: its amount less what was voided in part
        room = g.amount - g.voided_credits if g.voided_at is None else g.amount
        if not (g.remaining >= 0 and g.held >= 0 and g.remaining + g.held <= room):
            problems.append(
                f"{where}: remaining {format_credits(g.remaining)} + held {format_credits(g.held)} outside 0..{format_credits(room)}"
            )
        expected = (
            g.amount
            - drawn.get(g.id, 0)
            + restored.get(g.id, 0)
            - g.voided_credits
            - held_out.get(g.id, 0)
            + returned.get(g.id, 0)
            + adjusted.get(g.id, 0)
        )
        if g.remaining != expected:
            problems.append(
                f"{where}: remaining {format_credits(g.remaining)} != amount - drawn + restored - voided - held + given back + adjusted = {format_credits(expected)}"
            )
        gone = g.voided_at is not None or g.expiry_logged
        should_hold = 0 if gone else held_open.get(g.id, 0)
        if g.held != should_hold:
            problems.append(
                f"{where}: held {format_credits(g.held)} != what its open holds hold on it, {format_credits(should_hold)}"
            )
    return problems


def _verify_holds(conn: Connection, org_id: str, now: datetime | None) -> list[str]:
    """Every hold's allocations, ledger entry and outcome add up; after a sweep (``now``
    given) no hold is open past its time to live. Walks the holds in id order, with their
    allocations, entries and settling consumption read alongside in the same order."""
    problems: list[str] = []
    say = problems.append
    allocated = _Groups(verify_repo.hold_allocations_by_hold(conn, org_id))
    recorded = _Groups(verify_repo.hold_entries(conn, org_id))
    settling = _Groups(verify_repo.settlements(conn, org_id))
    for h in verify_repo.holds_in_order(conn, org_id):
        where = f"{org_id}: hold {h.id}"
        rows = allocated.take(h.id)
        held = sum(amount for _, _, amount, _, _ in rows)
        back = sum(returned or 0 for _, _, _, returned, _ in rows)
        taken = [c for _, action, c in recorded.take(h.id) if action == LedgerAction.HOLD]
        settlers = settling.take(h.id)
        settled_by = settlers[-1][1] if settlers else None
        if held != h.amount:
            say(
                f"{where}: allocations sum to {format_credits(held)}, amount {format_credits(h.amount)}"
            )
        if (taken or None) != [h.amount]:
            say(f"{where}: ledger holds {taken or None} instead of one entry of its amount")
        if h.status == HoldState.OPEN:
            if now is not None and h.expires_at <= now:
                say(f"{where}: open past its time to live ({h.expires_at.isoformat()})")
            continue
        if h.lost != h.amount - back:
            say(f"{where}: lost {format_credits(h.lost)} != amount - given back to grants")
        if h.status != HoldState.SETTLED and h.released != back:
            say(f"{where}: released {format_credits(h.released)} != given back to grants")
        if (h.status == HoldState.SETTLED) != (h.consumption_id is not None):
            say(f"{where}: {h.status} with consumption {h.consumption_id}")
        if h.consumption_id is not None and settled_by != h.consumption_id:
            say(
                f"{where}: settled by consumption {h.consumption_id}, which names hold {settled_by}"
            )
    return problems


def _verify_corrections(conn: Connection, org_id: str) -> list[str]:
    """Each adjustment moved its credits on the grants and in one ledger entry; each
    expiry change has its entry of no credits."""
    problems: list[str] = []
    entries_q = select(ledger.c.correction_id, ledger.c.method, ledger.c.credits).where(
        ledger.c.org_id == org_id, ledger.c.correction_id.is_not(None)
    )
    recorded: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for cid, method, credits in conn.execute(entries_q):
        recorded[cid].append((method, credits))
    found = corrections_repo.list_for_org(conn, Corrections(org_id))
    moves = corrections_repo.allocations(conn, org_id, [c.id for c in found])
    for c in found:
        where = f"{org_id}: correction {c.id} ({c.kind})"
        if c.kind == "adjustment":
            moved = sum(amount for _, amount in moves.get(c.id, []))
            if moved != c.credits:
                problems.append(
                    f"{where}: grants moved {format_credits(moved)}, not {format_credits(c.credits)}"
                )
            method = LedgerMethod.CREDITED if c.credits > 0 else LedgerMethod.DEBITED
            if recorded.get(c.id) != [(method.value, abs(c.credits))]:
                problems.append(f"{where}: ledger records {recorded.get(c.id)}")
        elif c.kind == "expiry_change" and recorded.get(c.id) != [(LedgerMethod.CHANGED.value, 0)]:
            problems.append(f"{where}: ledger records {recorded.get(c.id)}")
    return problems


def _verify_consumptions(conn: Connection, org_id: str) -> list[str]:
    """Walks the consumptions in id order, with their allocations, restorations and ledger
    entries read alongside in the same order."""
    problems: list[str] = []
    drawn_rows = _Groups(verify_repo.amounts_by_consumption(conn, allocations, org_id))
    restored_rows = _Groups(verify_repo.amounts_by_consumption(conn, restorations, org_id))
    recorded = _Groups(verify_repo.consumption_entries(conn, org_id))
    used = LedgerMethod.USED.value
    for cid, cost, status, refund_restored, refund_lost in verify_repo.consumptions_in_order(
        conn, org_id
    ):
        drawn_of = drawn_rows.take(cid)
        drawn = drawn_of[0][1] if len(drawn_of) == 1 else sum(a for _, a in drawn_of)
        back_rows = restored_rows.take(cid)
        restored = sum(amount for _, amount in back_rows) if back_rows else None
        entries_of = recorded.take(cid)
        if (
            drawn == cost
            and status == "paid"
            and restored is None
            and len(entries_of) == 1
            and entries_of[0][1] == used
            and entries_of[0][2] == cost
        ):
            continue  # the common case: a paid consumption, drawn and charged once
        charged: list[int] = []
        refunded: list[int] = []
        for _, method, credits in entries_of:
            (charged if method == used else refunded).append(credits)
        where = f"{org_id}: consumption {cid}"
        if drawn != cost:
            problems.append(
                f"{where}: allocations sum to {format_credits(drawn)}, cost {format_credits(cost)}"
            )
        if (charged or None) != [cost]:
            problems.append(
                f"{where}: ledger charges {charged or None} instead of one entry of its cost"
            )
        if status == "paid" and (restored or refunded):
            problems.append(f"{where}: paid but has restorations")
        if status == "refunded":
            back = restored or 0
            if back != refund_restored or back + refund_lost != cost:
                problems.append(
                    f"{where}: restored {format_credits(back)} + lost {format_credits(refund_lost)} != cost"
                )
            if sum(refunded) != back:
                problems.append(
                    f"{where}: ledger refunds {refunded or None} != restored {format_credits(back)}"
                )
    return problems
