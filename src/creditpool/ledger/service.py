"""The balance at any instant, the ledger, the sweep, and ``verify``."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, TypedDict, Unpack

from sqlalchemy import select
from sqlalchemy.engine import Connection

from creditpool.core.balance import summarize
from creditpool.core.grants import left_at
from creditpool.core.holds import HoldState
from creditpool.core.ledger import LedgerAction, LedgerMethod
from creditpool.core.money import format_credits, to_decimal
from creditpool.core.timeline import LedgerDraft, logged_left
from creditpool.ledger.models import Balance, LedgerEntry
from creditpool.ledger.writer import OrgWriter, as_of
from creditpool.orgs.service import require_org
from creditpool.repositories import corrections as corrections_repo
from creditpool.repositories import grants as grants_repo
from creditpool.repositories import holds as holds_repo
from creditpool.repositories import ledger as repository
from creditpool.storage.tables import (
    allocations,
    consumptions,
    grants,
    hold_allocations,
    holds,
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
        full = grants_repo.list_for_org(tx.conn, org_id)
        rows = [grants_repo.to_grant_row(r) for r in full]
        # What each grant could hold at t: its amount less what was voided from it in part
        # by then (a later partial void does not reach back).
        voided_then = corrections_repo.voided_in_part_upto(tx.conn, org_id, t)
        for g, r in zip(rows, full, strict=True):
            g.amount = r.amount - voided_then.get(g.id, 0)
        if org.ledger_at is None or t >= org.ledger_at:
            # Nothing was written after t: the grants' remaining and held still describe t.
            units = summarize(as_of(tx, org_id, rows, t), t)
        else:
            by_id = {g.id: g for g in rows}
            held = sum(
                amount
                for gid, amount in holds_repo.held_at(tx.conn, org_id, t)
                if by_id[gid].is_active(t)
            )
            units = summarize(rows, t, left=repository.left_at(tx.conn, org_id, t), held=held)
    return Balance(
        org_id=org_id,
        at=t,
        total=to_decimal(units.total),
        used=to_decimal(units.used),
        left=to_decimal(units.left),
        held=to_decimal(units.held),
        upcoming=to_decimal(units.upcoming),
    )


class LedgerWindow(TypedDict, total=False):
    """Which entries to list, in order: at or after ``since``, before ``until``, after the
    entry ``after_seq``, at most ``limit``."""

    since: datetime | None
    until: datetime | None
    after_seq: int | None
    limit: int | None


def entries(tx: Tx, org_id: str, **window: Unpack[LedgerWindow]) -> list[LedgerEntry]:
    require_org(tx, org_id)
    return [entry_model(r) for r in repository.list_entries(tx.conn, org_id, **window)]


def entry_model(r: Any) -> LedgerEntry:
    """A ledger row as the public model: its columns are the model's fields."""
    values = dict(r._mapping)
    return LedgerEntry(**values | {name: to_decimal(values[name]) for name in AMOUNTS})


def verify_org(conn: Connection, org: Any, now: datetime | None = None) -> list[str]:
    """Replay one organization's ledger and check every invariant; problems as sentences."""
    problems: list[str] = []
    org_id = org.id
    say = problems.append
    problems += _verify_grants(conn, org_id)
    problems += _verify_consumptions(conn, org_id)
    problems += _verify_holds(conn, org_id, now)
    problems += _verify_corrections(conn, org_id)
    rows = repository.list_entries(conn, org_id)
    after = 0
    last_at: datetime | None = None
    for expected_seq, r in enumerate(rows, start=1):
        where = f"{org_id}: ledger #{r.seq}"
        if r.seq != expected_seq:
            say(f"{where}: sequence gap, expected #{expected_seq}")
        if r.method not in SIGN:
            say(f"{where}: unknown method {r.method!r}")
            continue
        if SIGN[r.method] == 0 and r.credits != 0:
            say(f"{where}: {r.method} moves no credits, yet records {format_credits(r.credits)}")
        elif SIGN[r.method] != 0 and r.credits <= 0:
            say(f"{where}: credits {format_credits(r.credits)} not positive")
        if r.total_before != after:
            say(
                f"{where}: total before {format_credits(r.total_before)} != previous after {format_credits(after)}"
            )
        if r.total_after != r.total_before + SIGN[r.method] * r.credits:
            say(f"{where}: after != before {'+' if SIGN[r.method] > 0 else '-'} credits")
        if r.total_after < 0:
            say(f"{where}: negative balance {format_credits(r.total_after)}")
        if last_at is not None and r.at < last_at:
            say(f"{where}: at {r.at.isoformat()} is before the previous entry")
        after, last_at = r.total_after, r.at
    if rows and org.ledger_seq != rows[-1].seq:
        say(f"{org_id}: organization's ledger_seq {org.ledger_seq} != last entry #{rows[-1].seq}")
    live = list(grants_repo.load_live(conn, org_id).values())
    if logged_left(live) != after:
        say(
            f"{org_id}: grants hold {format_credits(logged_left(live))} but the ledger ends at {format_credits(after)}"
        )
    return problems


def _sums(conn: Connection, table: Any, key: Any, org_id: str) -> dict[int, int]:
    """Added up here, not by SUM(): a grant drawn from again and again (consumed, refunded,
    consumed...) can be drawn more in all than a 64-bit integer holds, which SQLite's SUM()
    refuses with "integer overflow"."""
    sums: dict[int, int] = defaultdict(int)
    query = select(key, table.c.amount).where(table.c.org_id == org_id)
    for k, amount in conn.execute(query):
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
    for _, gid, amount, back, status in _hold_allocations(conn, org_id):
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


def _hold_allocations(conn: Connection, org_id: str) -> list[Any]:
    """(hold id, grant id, amount held, amount given back, hold status) of every hold."""
    a, h = hold_allocations.c, holds.c
    query = (
        select(a.hold_id, a.grant_id, a.amount, a.returned, h.status)
        .join(holds, (h.org_id == a.org_id) & (h.id == a.hold_id))
        .where(a.org_id == org_id)
    )
    return list(conn.execute(query))


def _verify_holds(conn: Connection, org_id: str, now: datetime | None) -> list[str]:
    """Every hold's allocations, ledger entry and outcome add up; after a sweep (``now``
    given) no hold is open past its time to live."""
    problems: list[str] = []
    say = problems.append
    held: dict[int, int] = defaultdict(int)
    back: dict[int, int] = defaultdict(int)
    for hid, _, amount, returned, _ in _hold_allocations(conn, org_id):
        held[hid] += amount
        back[hid] += returned or 0
    entries_q = select(ledger.c.hold_id, ledger.c.action, ledger.c.credits).where(
        ledger.c.org_id == org_id, ledger.c.hold_id.is_not(None)
    )
    taken: dict[int, list[int]] = defaultdict(list)
    for hid, action, credits in conn.execute(entries_q):
        if action == LedgerAction.HOLD:
            taken[hid].append(credits)
    settled_by = dict(
        conn.execute(
            select(consumptions.c.hold_id, consumptions.c.id).where(
                consumptions.c.org_id == org_id, consumptions.c.hold_id.is_not(None)
            )
        ).all()
    )
    for h in conn.execute(select(holds).where(holds.c.org_id == org_id)):
        where = f"{org_id}: hold {h.id}"
        if held.get(h.id, 0) != h.amount:
            say(
                f"{where}: allocations sum to {format_credits(held.get(h.id, 0))}, amount {format_credits(h.amount)}"
            )
        if taken.get(h.id) != [h.amount]:
            say(f"{where}: ledger holds {taken.get(h.id)} instead of one entry of its amount")
        if h.status == HoldState.OPEN:
            if now is not None and h.expires_at <= now:
                say(f"{where}: open past its time to live ({h.expires_at.isoformat()})")
            continue
        if h.lost != h.amount - back.get(h.id, 0):
            say(f"{where}: lost {format_credits(h.lost)} != amount - given back to grants")
        if h.status != HoldState.SETTLED and h.released != back.get(h.id, 0):
            say(f"{where}: released {format_credits(h.released)} != given back to grants")
        if (h.status == HoldState.SETTLED) != (h.consumption_id is not None):
            say(f"{where}: {h.status} with consumption {h.consumption_id}")
        if h.consumption_id is not None and settled_by.get(h.id) != h.consumption_id:
            say(
                f"{where}: settled by consumption {h.consumption_id}, which names hold {settled_by.get(h.id)}"
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
    found = corrections_repo.list_for_org(conn, org_id)
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
    problems = []
    drawn = _sums(conn, allocations, allocations.c.consumption_id, org_id)
    restored = _sums(conn, restorations, restorations.c.consumption_id, org_id)
    charged: dict[int, list[int]] = defaultdict(list)
    refunded: dict[int, list[int]] = defaultdict(list)
    entries_q = select(ledger.c.consumption_id, ledger.c.method, ledger.c.credits).where(
        ledger.c.org_id == org_id, ledger.c.consumption_id.is_not(None)
    )
    for cid, method, credits in conn.execute(entries_q):
        (charged if method == LedgerMethod.USED else refunded)[cid].append(credits)
    for c in conn.execute(select(consumptions).where(consumptions.c.org_id == org_id)):
        where = f"{org_id}: consumption {c.id}"
        if drawn.get(c.id, 0) != c.cost:
            problems.append(
                f"{where}: allocations sum to {format_credits(drawn.get(c.id, 0))}, cost {format_credits(c.cost)}"
            )
        if charged.get(c.id) != [c.cost]:
            problems.append(
                f"{where}: ledger charges {charged.get(c.id)} instead of one entry of its cost"
            )
        if c.status == "paid" and (restored.get(c.id) or refunded.get(c.id)):
            problems.append(f"{where}: paid but has restorations")
        if c.status == "refunded":
            back = restored.get(c.id, 0)
            if back != c.refund_restored or back + c.refund_lost != c.cost:
                problems.append(
                    f"{where}: restored {format_credits(back)} + lost {format_credits(c.refund_lost)} != cost"
                )
            if sum(refunded.get(c.id, [])) != back:
                problems.append(
                    f"{where}: ledger refunds {refunded.get(c.id)} != restored {format_credits(back)}"
                )
    return problems
