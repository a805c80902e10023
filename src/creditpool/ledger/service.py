"""The balance at any instant, the ledger, the sweep, and ``verify``."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from creditpool.core.balance import summarize
from creditpool.core.ledger import LedgerMethod
from creditpool.core.money import format_credits, to_decimal
from creditpool.core.timeline import logged_left
from creditpool.ledger.models import Balance, LedgerEntry
from creditpool.orgs.service import require_org
from creditpool.repositories import grants as grants_repo
from creditpool.repositories import ledger as repository
from creditpool.storage.tables import allocations, consumptions, grants, ledger, restorations
from creditpool.storage.uow import Tx

SIGN = {method.value: method.sign for method in LedgerMethod}


def balance(tx: Tx, org_id: str, at: datetime | None) -> Balance:
    org = require_org(tx, org_id)
    t = tx.now if at is None else at
    if at is None:
        rows = list(grants_repo.load_live(tx.conn, org_id).values())
        units = summarize(rows, t)
    else:
        rows = [grants_repo.to_grant_row(r) for r in grants_repo.list_for_org(tx.conn, org_id)]
        if org.ledger_at is None or t >= org.ledger_at:
            # Nothing was written after t: the grants' remaining still describe t.
            units = summarize(rows, t)
        else:
            units = summarize(rows, t, left=repository.left_at(tx.conn, org_id, t))
    return Balance(
        org_id=org_id,
        at=t,
        total=to_decimal(units.total),
        used=to_decimal(units.used),
        left=to_decimal(units.left),
        held=to_decimal(units.held),
        upcoming=to_decimal(units.upcoming),
    )


def entries(
    tx: Tx,
    org_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    after_seq: int | None = None,
    limit: int | None = None,
) -> list[LedgerEntry]:
    require_org(tx, org_id)
    rows = repository.list_entries(
        tx.conn, org_id, since=since, until=until, after_seq=after_seq, limit=limit
    )
    return [entry_model(r) for r in rows]


def entry_model(r: Any) -> LedgerEntry:
    return LedgerEntry(
        org_id=r.org_id,
        seq=r.seq,
        at=r.at,
        action=r.action,
        method=r.method,
        credits=to_decimal(r.credits),
        total_before=to_decimal(r.total_before),
        total_after=to_decimal(r.total_after),
        grant_id=r.grant_id,
        consumption_id=r.consumption_id,
    )


def verify_org(conn: Connection, org: Any) -> list[str]:
    """Replay one organization's ledger and check every invariant; problems as sentences."""
    problems: list[str] = []
    org_id = org.id
    say = problems.append
    problems += _verify_grants(conn, org_id)
    problems += _verify_consumptions(conn, org_id)
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
        if r.credits <= 0:
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
    for g in conn.execute(select(grants).where(grants.c.org_id == org_id)):
        where = f"{org_id}: grant {g.id}"
        if not 0 <= g.remaining <= g.amount:
            problems.append(
                f"{where}: remaining {format_credits(g.remaining)} outside 0..{format_credits(g.amount)}"
            )
        expected = g.amount - drawn.get(g.id, 0) + restored.get(g.id, 0) - g.voided_credits
        if g.remaining != expected:
            problems.append(
                f"{where}: remaining {format_credits(g.remaining)} != amount - drawn + restored - voided = {format_credits(expected)}"
            )
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
