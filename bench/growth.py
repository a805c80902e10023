"""How the library's costs grow with an organization's history.

    uv run python bench/growth.py [--sizes 10000,1000000] [--backends sqlite,postgresql]
                                  [--calls 1000] [--repeat 20] [--verify-rounds 3] [--explain]

For each backend (SQLite in temporary files; PostgreSQL in fresh databases
``bench_growth_<size>`` created from CREDITPOOL_BENCH_POSTGRES_URL, else
CREDITPOOL_TEST_POSTGRES_URL, else the local default, and dropped afterwards) and each size
(ledger entries of one organization), it loads a consistent history straight through the
driver (PostgreSQL: COPY; SQLite: executemany, secondary indexes built after the load), then
measures, alternating between the sizes so that the machine's noise hits all of them alike:

- consume: ``CreditPool.consume`` calls per second, an idempotency key each;
- balance now, ``balance(at=)`` 30 days and a year ago (for the smallest size a year ago is
  before its first entry);
- history: the first page of ``consumptions`` and the one 10,000 consumptions deep (keyset,
  ``before_id``); the first page of ``ledger`` and the one after entry 10,000
  (``after_seq``; for the smallest size the last full page);
- the usage page: ``web.service.usage_page`` as an admin sees it (one snapshot: header,
  balance, grants, history, chart, teams, forecast), without the HTML;
- hold -> settle: ``CreditPool.hold`` of 1 credit then ``settle`` at 0.50, pairs per second;
- holds: the first page of ``holds``, the one 10,000 holds deep (``before_id``), the open
  ones and the first page of the expired ones (``status``);
- ``verify()`` in a fresh process (the fastest of VERIFY_ROUNDS runs per size): seconds,
  microseconds per entry and the peak resident memory it added (Linux: the peak ``VmHWM``, reset just before, minus ``VmRSS`` before).

The history: 40 users in 4 teams, two features at 0.50; out of every 100 entries about 86
consumptions, 4 holds (2 settled at half what they held: a release and a consumption, 1
released, 1 run out: its ``hold_expiry`` entry), 1 refund; in each grant's 30 days staff
debit and credit the pool by hand (adjustments), void part of the grant and (but the last,
permanent one) change its expiry; 3 holds near the end are still open. Each is written as
the library writes it (the same rows, entries, ids from ``object_seq`` and counters, the
grants' ``held`` included). Whatever the size, the newest 10,000 entries span the last 40
days (the same recent activity: the month's usage, the chart's 30 days and the forecast's
window read the same rows at every size); anything older is spread over the three years
before, with a grant every 30 days that is used up exactly before the next one comes and
expires after it (so expired grants write no entry). The last grant is permanent and keeps
a reserve for the benchmark's consumptions. ``verify()`` passes on it (checked).

Each figure is measured in ROUNDS rounds, the sizes taking turns, and is the lower quartile
of all its calls' times (the machine is shared: other work only ever adds time, and a
figure's ratio should show the work done, not who else ran then); the consume rate is one
over that time, its ``--calls`` spread over the rounds. Each is shown with its ratio to the
smallest size (for the consume rate: the smaller rate's slowdown) and the goal: within 1.2x
of the 10k figure; ``verify()`` linear (time per entry within 1.2x) with flat memory (peak
added memory within 1.2x, or within 16 MB, of the 10k run's).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from creditpool import CreditPool
from creditpool.http.security import Principal
from creditpool.web import service as web

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
ORG = "growth"
FEATURES = ("report", "action_plan")  # both 0.50 credit in the seeded catalog
RATE = 50_000_000  # 0.50 in rate units (1e-8 credit)
COST = 5_000  # 0.50 in units (1e-4 credit)
USERS = 40
TEAMS = 4
RECENT = 10_000  # the newest entries, over the last RECENT_SPAN
RECENT_SPAN = timedelta(days=40)
OLD_SPAN = timedelta(days=3 * 365)
GRANT_EVERY = timedelta(days=30)
RESERVE = 10_000_000_000  # 1,000,000 credits left on the last grant
DEEP = 10_000
PAGE = 50
CHUNK = 50_000
GOAL = 1.2
ROUNDS = 5  # each figure is measured this many times per size, the sizes taking turns
VERIFY_ROUNDS = 3  # verify() runs (each in a fresh process), the fastest counts
MEMORY_SLACK_MB = 16.0
US = 1_000_000
HELD = Decimal("1")  # the benchmark's holds, settled at SETTLED
SETTLED = Decimal("0.5")


# -- the history ---------------------------------------------------------------------------

# What the slots of every PERIOD entries hold (``i % PERIOD``), besides consumptions: a hold
# settled 4 entries later (the release and the consumption, two entries at one instant), a
# hold released, a hold that runs out, a refund of the consumption 5 entries before it.
PERIOD = 100
HOLDS_SETTLED = (10, 40)  # held 2 x COST, settled at COST
HOLD_RELEASED = 30  # held COST, released 3 entries later
HOLD_EXPIRED = 60  # held COST, runs out 4 entries later (its ``hold_expiry`` entry)
REFUNDED = 75  # a consumption refunded 5 entries later
CORRECTION_SLOT = 95  # corrections take the first such slot past their offset in a block
CORRECTIONS = (  # (offset in its grant's block, kind)
    (200, "debit"),
    (300, "expiry_change"),
    (400, "credit"),
    (500, "void"),
)
DEBIT = 10 * COST
CREDIT = 4 * COST
VOIDED = 20 * COST
OPEN_HOLDS = (30, 20, 10)  # entries before the end that are holds still open
HOLD_TTL = timedelta(hours=1)
OPEN_TTL = timedelta(days=1)  # open holds end after the benchmark
TAIL = 40  # the periodic holds and refunds close before the last TAIL entries
# A hold or refund begins only MARGIN entries before its grant's block ends: the
# consumptions after it close keep the grant from going below zero while it is held.
MARGIN = 15


class History:
    """Entry ``i`` (0-based) is ledger seq ``i + 1``. Objects (grants, consumptions, holds,
    corrections) are numbered from 1 in the order they are made, as ``object_seq`` does.
    Times are microseconds since the epoch (UTC).

    ``slots()`` says what each entry is (a deterministic walk); ``__init__`` walks it once
    for what the directory rows need (each grant's amount: what its block uses net, so
    that it is used up exactly before the next grant), ``chunks()`` walks it again for the
    rows."""

    def __init__(self, size: int, end: datetime) -> None:
        self.size = size
        self.recent = min(size, RECENT)
        self.old = size - self.recent
        self.end_us = _us(end)
        self.recent_start_us = self.end_us - _td_us(RECENT_SPAN)
        self.recent_step = _td_us(RECENT_SPAN) / self.recent
        self.old_start_us = self.recent_start_us - _td_us(OLD_SPAN)
        self.old_step = _td_us(OLD_SPAN) / self.old if self.old else 0.0
        first = self.time(0)
        # The first entry at or after each 30-day boundary is a grant.
        starts: list[int] = []
        boundary = first
        while boundary <= self.end_us:
            i = self._first_at(boundary)
            if i < size and (not starts or i > starts[-1]):
                starts.append(i)
            boundary += _td_us(GRANT_EVERY)
        self.grant_starts = starts
        self._grant_set = set(starts)
        self._corrections: dict[int, str] = {}
        for k, start in enumerate(starts):
            limit = self._limit(k)
            for offset, kind in CORRECTIONS:
                if kind == "expiry_change" and k + 1 == len(starts):
                    continue  # the last grant is permanent
                i = start + offset
                i += (CORRECTION_SLOT - i) % PERIOD
                if i < limit:
                    self._corrections[i] = kind
        self._summarize()

    def time(self, i: int) -> int:
        if i < self.old:
            return self.old_start_us + int(i * self.old_step)
        return self.recent_start_us + int((i - self.old + 1) * self.recent_step)

    def _first_at(self, t: int) -> int:
        low, high = 0, self.size  # the first i with time(i) >= t (size: none)
        while low < high:
            middle = (low + high) // 2
            if self.time(middle) >= t:
                high = middle
            else:
                low = middle + 1
        return low

    def is_grant(self, i: int) -> bool:
        return i in self._grant_set

    def block(self, i: int) -> int:
        """The index (in ``grant_starts``) of the grant entry ``i`` draws from."""
        return bisect.bisect_right(self.grant_starts, i) - 1

    def _limit(self, k: int) -> int:
        """Everything begun in block ``k`` ends before this entry (its grant is used up
        and holds nothing when the next grant comes)."""
        if k + 1 < len(self.grant_starts):
            return self.grant_starts[k + 1]
        return self.size - TAIL

    # -- what each entry is ------------------------------------------------------------

    def slots(self) -> Iterator[tuple[str, int, int, int]]:
        """(kind, i, new object id or 0, origin) per entry, in ledger order. Kinds: grant;
        use (origin: the entry of its refund, else -1); hold (origin: the entry that
        closes it, -1 while open); settle_release and release and hold_expiry (origin: the
        hold's entry; new id: the hold's id); settle_use (origin: the hold's entry; new id:
        the consumption's; the hold's id from the settle_release before it); refund
        (origin: the consumption's entry; new id: its id); debit, credit, void,
        expiry_change (new id: the correction's)."""
        obj = 0
        ids: dict[int, int] = {}  # entry of a hold or refunded consumption -> its id
        due: dict[int, tuple[str, int]] = {}  # entry -> (kind, origin entry)
        k = -1
        limit = 0
        open_at = {self.size - n for n in OPEN_HOLDS}
        corrections = self._corrections
        for i in range(self.size):
            if i in due:
                kind, origin = due.pop(i)
                if kind == "settle_use":
                    obj += 1
                    yield kind, i, obj, origin
                    del ids[origin]
                else:
                    yield kind, i, ids[origin] if kind != "refund" else ids.pop(origin), origin
                    if kind != "settle_release" and kind != "refund":
                        del ids[origin]
                continue
            obj += 1
            if i in self._grant_set:
                k += 1
                limit = self._limit(k)
                yield "grant", i, obj, -1
                continue
            if i in corrections:
                yield corrections[i], i, obj, -1
                continue
            r = i % PERIOD
            if r in HOLDS_SETTLED and i + MARGIN < limit:
                ids[i] = obj
                due[i + 4] = ("settle_release", i)
                due[i + 5] = ("settle_use", i)
                yield "hold", i, obj, i + 4
            elif r == HOLD_RELEASED and i + MARGIN < limit:
                ids[i] = obj
                due[i + 3] = ("release", i)
                yield "hold", i, obj, i + 3
            elif r == HOLD_EXPIRED and i + MARGIN < limit:
                ids[i] = obj
                due[i + 4] = ("hold_expiry", i)
                yield "hold", i, obj, i + 4
            elif i in open_at and k + 1 == len(self.grant_starts):
                yield "hold", i, obj, -1
            elif r == REFUNDED and i + MARGIN < limit:
                ids[i] = obj
                due[i + 5] = ("refund", i)
                yield "use", i, obj, i + 5
            else:
                yield "use", i, obj, -1

    def hold_amount(self, close: int, origin: int) -> int:
        """Held by the hold at entry ``origin`` that entry ``close`` closes (-1: open)."""
        return COST if close >= 0 and origin % PERIOD in (HOLD_RELEASED, HOLD_EXPIRED) else 2 * COST

    def hold_expires(self, origin: int, close: int) -> int:
        if close < 0:
            return self.time(origin) + _td_us(OPEN_TTL)
        if origin % PERIOD == HOLD_EXPIRED:
            return self.time(close)
        return self.time(origin) + _td_us(HOLD_TTL)

    def _summarize(self) -> None:
        """Each block's net use (its grant's amount), the grants' ids, the open holds, the
        ids the deep pages start from and the month's usage by team."""
        count = len(self.grant_starts)
        net = [0] * count
        self.grant_ids = [0] * count
        self.voided = [0] * count
        self.open_held = 0
        self.longest_hold_s = 0  # orgs.longest_hold_s: seconds, rounded up
        self.open_ends: list[int] = []
        newest_uses: deque[int] = deque(maxlen=DEEP)
        newest_holds: deque[int] = deque(maxlen=DEEP)
        last = self.time(self.size - 1)
        month = _dt(last).strftime("%Y-%m")
        month_start = _us(datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC))
        self.team_usage = {f"t{t}": 0 for t in range(TEAMS)}
        self.counts: dict[str, int] = defaultdict(int)
        k = -1
        obj = 0
        for kind, i, new, origin in self.slots():
            self.counts[kind] += 1
            obj = max(obj, new)
            if kind == "grant":
                k += 1
                self.grant_ids[k] = new
            elif kind in ("use", "settle_use"):
                net[k] += COST
                newest_uses.append(new)
                user = (origin if kind == "settle_use" else i) % USERS
                at = self.time(i - 1 if kind == "settle_use" else i)  # a settle: its instant
                if at >= month_start and not (kind == "use" and origin >= 0):
                    self.team_usage[f"t{user % TEAMS}"] += COST
            elif kind == "hold":
                newest_holds.append(new)
                lived = self.hold_expires(i, origin) - self.time(i)
                self.longest_hold_s = max(self.longest_hold_s, -(-lived // US))
                if origin < 0:
                    self.open_held += 2 * COST
                    self.open_ends.append(self.hold_expires(i, origin))
            elif kind == "refund":
                net[k] -= COST
            elif kind == "debit":
                net[k] += DEBIT
            elif kind == "credit":
                net[k] -= CREDIT
            elif kind == "void":
                net[k] += VOIDED
                self.voided[k] = VOIDED
        net[-1] += RESERVE + self.open_held
        self.amounts = net
        self.objects = obj
        uses, holds = list(newest_uses), list(newest_holds)
        # for the smallest sizes: the last full page
        self.deep_consumption = uses[0] if len(uses) == DEEP else uses[PAGE]
        self.deep_hold = holds[0] if len(holds) == DEEP else holds[PAGE]

    # -- rows (tuples in the column order of the *_COLS below) ---------------------------

    def chunks(self) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
        """The rows of every bulk table, about CHUNK entries at a time (a hold's row comes
        with the entry that closes it, or its own while it is open)."""
        rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in BULK_TABLES}
        ledger_rows = rows["ledger"]
        left = 0
        k = -1
        gid = 0
        settling = 0  # the hold a settle_release just released
        for kind, i, new, origin in self.slots():
            seq = i + 1
            at = self.time(i)
            if kind == "grant":
                k += 1
                gid = new
                amount = self.amounts[k]
                ledger_rows.append(
                    (
                        seq,
                        at,
                        "grant_added",
                        "added",
                        amount,
                        left,
                        left + amount,
                        gid,
                        None,
                        None,
                        None,
                    )
                )
                left += amount
            elif kind == "use" or kind == "settle_use":
                hold_id = settling if kind == "settle_use" else None
                user = (origin if kind == "settle_use" else i) % USERS
                if kind == "settle_use":
                    at = self.time(i - 1)  # the settle's two entries share its instant
                    self._hold_row(rows, settling, origin, i - 1, "settled", new, gid)
                refund = kind == "use" and origin >= 0
                rows["consumptions"].append(
                    (
                        new,
                        at,
                        FEATURES[i % 2],
                        f"u{user:02d}",
                        f"t{user % TEAMS}",
                        "refunded" if refund else "paid",
                        self.time(origin) if refund else None,
                        "downvoted" if refund else None,
                        COST if refund else None,
                        0 if refund else None,
                        hold_id,
                    )
                )
                rows["allocations"].append((new, gid, COST))
                ledger_rows.append(
                    (
                        seq,
                        at,
                        "consumption",
                        "used",
                        COST,
                        left,
                        left - COST,
                        None,
                        new,
                        hold_id,
                        None,
                    )
                )
                left -= COST
            elif kind == "hold":
                amount = self.hold_amount(origin, i)
                ledger_rows.append(
                    (seq, at, "hold", "held", amount, left, left - amount, None, None, new, None)
                )
                left -= amount
                if origin < 0:
                    self._hold_row(rows, new, i, -1, "open", None, gid)
            elif kind in ("settle_release", "release", "hold_expiry"):
                amount = self.hold_amount(i, origin)
                action = "release" if kind == "settle_release" else kind
                if kind == "hold_expiry":
                    at = self.hold_expires(origin, i)
                ledger_rows.append(
                    (
                        seq,
                        at,
                        action,
                        "released",
                        amount,
                        left,
                        left + amount,
                        None,
                        None,
                        new,
                        None,
                    )
                )
                left += amount
                if kind == "settle_release":
                    settling = new
                else:
                    status = "released" if kind == "release" else "expired"
                    self._hold_row(rows, new, origin, i, status, None, gid)
            elif kind == "refund":
                rows["restorations"].append((new, gid, COST))
                rows["audit_log"].append(
                    (
                        at,
                        "consumption.refunded",
                        json.dumps(
                            {
                                "consumption_id": new,
                                "reason": "downvoted",
                                "restored": "0.50",
                                "lost": "0.00",
                            }
                        ),
                    )
                )
                ledger_rows.append(
                    (seq, at, "refund", "refunded", COST, left, left + COST, None, new, None, None)
                )
                left += COST
            else:  # a staff correction
                correction = self._correction(rows, kind, new, at, k, gid)
                method, credits, sign = correction
                ledger_rows.append(
                    (
                        seq,
                        at,
                        CORRECTION_ACTION[kind],
                        method,
                        credits,
                        left,
                        left + sign * credits,
                        gid if kind in ("void", "expiry_change") else None,
                        None,
                        None,
                        new,
                    )
                )
                left += sign * credits
            if len(ledger_rows) >= CHUNK:
                yield rows
                rows = {name: [] for name in BULK_TABLES}
                ledger_rows = rows["ledger"]
        yield rows

    def _hold_row(
        self,
        rows: dict[str, list[tuple[Any, ...]]],
        hold_id: int,
        origin: int,
        close: int,
        status: str,
        consumption_id: int | None,
        gid: int,
    ) -> None:
        amount = self.hold_amount(close, origin)
        expires = self.hold_expires(origin, close)
        user = origin % USERS
        closed_at = None if close < 0 else (expires if status == "expired" else self.time(close))
        released = 0 if close < 0 else (amount - COST if status == "settled" else amount)
        rows["holds"].append(
            (
                hold_id,
                status,
                amount,
                self.time(origin),
                expires,
                closed_at,
                FEATURES[origin % 2],
                f"u{user:02d}",
                f"t{user % TEAMS}",
                consumption_id,
                released,
            )
        )
        rows["hold_allocations"].append((hold_id, gid, amount, None if close < 0 else amount))

    def _correction(
        self, rows: dict[str, list[tuple[Any, ...]]], kind: str, cid: int, at: int, k: int, gid: int
    ) -> tuple[str, int, int]:
        """The correction's rows; its entry's (method, credits, sign)."""
        by, reason = "staff@vendor", f"bench {kind}"
        if kind == "expiry_change":
            after = self.grant_expiry(k)
            assert after is not None
            before = at + (after - at) // 2  # staff moved it later, before it came
            rows["corrections"].append(
                (cid, "expiry_change", at, by, reason, gid, None, before, after)
            )
            return "changed", 0, 0
        if kind == "void":
            rows["corrections"].append(
                (cid, "partial_void", at, by, reason, gid, VOIDED, None, None)
            )
            return "voided", VOIDED, -1
        credits = -DEBIT if kind == "debit" else CREDIT
        rows["corrections"].append((cid, "adjustment", at, by, reason, None, credits, None, None))
        rows["adjustment_allocations"].append((cid, gid, credits))
        return ("debited", DEBIT, -1) if kind == "debit" else ("credited", CREDIT, 1)

    def grant_expiry(self, k: int) -> int | None:
        if k + 1 == len(self.grant_starts):
            return None
        return self.time(self.grant_starts[k + 1]) + US

    def grant_rows(self) -> list[dict[str, Any]]:
        rows = []
        count = len(self.grant_starts)
        for k, i in enumerate(self.grant_starts):
            last = k + 1 == count
            rows.append(
                {
                    "id": self.grant_ids[k],
                    "amount": self.amounts[k],
                    "remaining": RESERVE if last else 0,
                    "at": self.time(i),
                    "expires_at": self.grant_expiry(k),
                    "expired": not last,
                    "voided": self.voided[k],
                    "held": self.open_held if last else 0,
                }
            )
        return rows


CORRECTION_ACTION = {
    "debit": "adjustment",
    "credit": "adjustment",
    "void": "void",
    "expiry_change": "expiry_change",
}


def _us(t: datetime) -> int:
    return int(t.timestamp()) * US + t.microsecond


def _td_us(d: timedelta) -> int:
    return (d.days * 86_400 + d.seconds) * US + d.microseconds


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us // US, UTC).replace(microsecond=us % US)


def _iso(us: int) -> str:
    """As ``storage/types.py`` writes a time on SQLite (and PostgreSQL reads it)."""
    return _dt(us).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


# -- loading ---------------------------------------------------------------------------------

# The bulk tables: (columns after org_id, the positions of times in a row, the row made full
# with the columns every row of the history has alike). Parents before children (the
# foreign keys): holds before their allocations, corrections before theirs.
BULK: dict[str, tuple[str, tuple[int, ...], Callable[[tuple[Any, ...]], tuple[Any, ...]]]] = {
    "ledger": (
        "seq, at, action, method, credits, total_before, total_after, grant_id,"
        " consumption_id, hold_id, correction_id",
        (1,),
        lambda r: r,
    ),
    "consumptions": (
        "id, created_at, feature, user_id, team_id, status, refunded_at, refund_reason,"
        " refund_restored, refund_lost, hold_id, feature_name, action, integration, quantity,"
        " rate, cost, breakdown, requests, metadata",
        (1, 6),
        lambda r: (*r, None, None, None, None, RATE, COST, "null", None, "null"),
    ),
    "allocations": ("consumption_id, grant_id, amount", (), lambda r: r),
    "restorations": ("consumption_id, grant_id, amount", (), lambda r: r),
    "holds": (
        "id, status, amount, created_at, expires_at, closed_at, feature, user_id, team_id,"
        " consumption_id, released, lost, quantity, feature_name, action, integration, metadata",
        (3, 4, 5),
        lambda r: (*r, 0, None, None, None, None, "null"),
    ),
    "hold_allocations": ("hold_id, grant_id, amount, returned", (), lambda r: r),
    "corrections": (
        "id, kind, at, by, reason, grant_id, credits, expires_before, expires_after",
        (2, 7, 8),
        lambda r: r,
    ),
    "adjustment_allocations": ("correction_id, grant_id, amount", (), lambda r: r),
    "audit_log": ("at, action, details, by", (0,), lambda r: (*r, None)),
}
BULK_TABLES = tuple(BULK)


def _full_rows(
    table: str, rows: list[tuple[Any, ...]], convert: Callable[[int], Any]
) -> Iterator[tuple[Any, ...]]:
    _, times, make = BULK[table]
    for row in rows:
        full = make(row)
        if times:
            full = tuple(
                convert(v) if n in times and v is not None else v for n, v in enumerate(full)
            )
        yield full


def directory_rows(h: History) -> dict[str, list[tuple[Any, ...]]]:
    """The organization, its teams, members and grants, as (column, ...) tuples with the
    times still in microseconds."""
    last_at = h.time(h.size - 1)
    month = _dt(last_at).strftime("%Y-%m")
    created = h.time(0) - 86_400 * US
    next_event = min(h.open_ends) if h.open_ends else None  # the first open hold's end
    org = [
        (ORG, "Growth bench", "UTC", "[]", created, h.size, h.objects, last_at, next_event, 7,
         None, h.longest_hold_s or None)
    ]  # fmt: skip
    teams = [
        (ORG, t, f"Team {t}", None, created, month, units) for t, units in h.team_usage.items()
    ]
    members = [
        (ORG, f"u{u:02d}", f"t{u % TEAMS}", created, f"User {u:02d}" if u % 2 else None)
        for u in range(USERS)
    ]
    grants = [
        (
            ORG,
            g["id"],
            g["amount"],
            g["remaining"],
            g["at"],
            g["at"],
            g["expires_at"],
            None,
            f"PO-{g['id']}",
            "bench",
            None,
            None,
            None,
            g["voided"],
            True,
            g["expired"],
            g["held"],
            g["expired"],
        )
        for g in h.grant_rows()
    ]
    return {"orgs": org, "teams": teams, "members": members, "grants": grants}


DIRECTORY_SQL = {
    "orgs": "INSERT INTO orgs (id, name, timezone, low_balance_thresholds, created_at,"
    " ledger_seq, object_seq, ledger_at, next_event_at, expiry_notice_days, alerts,"
    " longest_hold_s)"
    " VALUES ({})",
    "teams": "INSERT INTO teams (org_id, id, name, monthly_limit, created_at, usage_month,"
    " usage_units) VALUES ({})",
    "members": "INSERT INTO members (org_id, user_id, team_id, updated_at, display_name)"
    " VALUES ({})",
    "grants": "INSERT INTO grants (org_id, id, amount, remaining, granted_at, available_from,"
    " expires_at, note, reference, granted_by, voided_at, voided_by, void_reason,"
    " voided_credits, added_logged, expiry_logged, held, expiry_noticed) VALUES ({})",
}
# Which columns of each directory row are times.
TIME_COLUMNS = {"orgs": (4, 7, 8), "teams": (4,), "members": (3,), "grants": (4, 5, 6)}


def _times(table: str, row: tuple[Any, ...], convert: Callable[[int], Any]) -> tuple[Any, ...]:
    cols = TIME_COLUMNS[table]
    return tuple(convert(v) if i in cols and v is not None else v for i, v in enumerate(row))


def load_sqlite(path: Path, h: History) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    # A load that fails leaves a database nobody wants: no journal (in WAL mode the load
    # went through the log first, then a checkpoint copied it all again).
    con.execute("PRAGMA journal_mode = OFF")
    con.execute("PRAGMA synchronous = OFF")
    indexes = _sqlite_indexes(con)
    con.execute("BEGIN")
    for name, _ in indexes:
        con.execute(f'DROP INDEX "{name}"')
    for table, rows in directory_rows(h).items():
        marks = ", ".join("?" * len(rows[0]))
        con.executemany(DIRECTORY_SQL[table].format(marks), [_times(table, r, _iso) for r in rows])
    for chunk in h.chunks():
        for table, (cols, _, _) in BULK.items():
            if not chunk[table]:
                continue
            marks = ", ".join("?" * (cols.count(",") + 1))
            con.executemany(
                f"INSERT INTO {table} (org_id, {cols}) VALUES ('{ORG}', {marks})",
                _full_rows(table, chunk[table], _iso),
            )
    for _, sql in indexes:
        con.execute(sql)
    con.execute("COMMIT")
    con.execute("PRAGMA journal_mode = WAL")  # as the library runs it
    con.close()


def _sqlite_indexes(con: sqlite3.Connection) -> list[tuple[str, str]]:
    marks = ", ".join("?" * len(BULK_TABLES))
    query = (
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        f" AND tbl_name IN ({marks})"
    )
    return list(con.execute(query, BULK_TABLES))


def load_postgres(url: str, h: History) -> None:
    with psycopg.connect(url) as con:
        indexes = con.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)"
            " AND indexname NOT LIKE 'pk_%%'",
            (list(BULK_TABLES),),
        ).fetchall()
        for name, _ in indexes:
            con.execute(f'DROP INDEX "{name}"')
        for table, rows in directory_rows(h).items():
            marks = ", ".join(["%s"] * len(rows[0]))
            with con.cursor() as cur:
                cur.executemany(
                    DIRECTORY_SQL[table].format(marks), [_times(table, r, _dt) for r in rows]
                )
        with con.cursor() as cur:
            for chunk in h.chunks():
                for table, (cols, _, _) in BULK.items():
                    if not chunk[table]:
                        continue
                    with cur.copy(f"COPY {table} (org_id, {cols}) FROM STDIN") as copy:
                        copy.write(
                            "".join(
                                f"{ORG}\t" + "\t".join(map(_copied, row)) + "\n"
                                for row in _full_rows(table, chunk[table], _iso)
                            )
                        )
        con.commit()
        con.execute("SET maintenance_work_mem = '256MB'")
        for _, sql in indexes:
            con.execute(sql)
        con.commit()
        con.autocommit = True
        con.execute("VACUUM ANALYZE")  # what autovacuum would have done by now


def _copied(value: Any) -> str:
    """A value in COPY's text format (no value here holds a tab, newline or backslash)."""
    if value is None:
        return "\\N"
    return str(value)


# -- databases -------------------------------------------------------------------------------


@dataclass
class Target:
    backend: str
    size: int
    url: str
    drop: Callable[[], None]
    history: History | None = None
    pool: CreditPool | None = None
    admin: Principal | None = None
    deep_consumption: int = 0
    deep_hold: int = 0


def sqlite_target(size: int, workdir: Path) -> Target:
    path = workdir / f"growth-{size}.db"
    return Target("sqlite", size, f"sqlite:///{path}", lambda: None)


def postgres_target(size: int, admin_url: str) -> Target:
    name = f"bench_growth_{size}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return Target("postgresql", size, admin_url.rsplit("/", 1)[0] + f"/{name}", drop)


def prepare(t: Target) -> float:
    """Migrate, load the history, open the pool; returns the seconds the load took."""
    CreditPool.open(t.url).close()  # the schema, through the migrations
    h = History(t.size, datetime.now(UTC) - timedelta(minutes=1))
    began = time.perf_counter()
    if t.backend == "sqlite":
        load_sqlite(Path(t.url.removeprefix("sqlite:///")), h)
    else:
        load_postgres(t.url.replace("postgresql+psycopg://", "postgresql://"), h)
    seconds = time.perf_counter() - began
    t.history = h
    t.pool = CreditPool.open(t.url)
    key, _ = t.pool.create_key("admin", org_id=ORG, name="growth bench")
    t.admin = Principal(key)
    t.deep_consumption = h.deep_consumption
    t.deep_hold = h.deep_hold
    return seconds


# -- measuring -------------------------------------------------------------------------------


def timed_ms(call: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds of each of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return times


def lower_quartile(values: list[float]) -> float:
    return statistics.quantiles(values, n=4)[0]


def consume_calls(t: Target, calls: int, run: str) -> list[float]:
    """Milliseconds of each of ``calls`` consumptions, an idempotency key each."""
    assert t.pool is not None
    pool = t.pool
    times = []
    for i in range(calls):
        began = time.perf_counter()
        pool.consume(
            ORG, FEATURES[i % 2], user_id=f"u{i % USERS:02d}", idempotency_key=f"{run}-{i}"
        )
        times.append((time.perf_counter() - began) * 1000)
    return times


def hold_settle_calls(t: Target, calls: int, run: str) -> list[float]:
    """Milliseconds of each of ``calls`` pairs: a hold of 1 credit, settled at 0.50."""
    assert t.pool is not None
    pool = t.pool
    times = []
    for i in range(calls):
        user = f"u{i % USERS:02d}"
        began = time.perf_counter()
        held = pool.hold(
            ORG, FEATURES[i % 2], user_id=user, amount=HELD, idempotency_key=f"{run}-h{i}"
        )
        pool.settle(ORG, held.id, cost=SETTLED, idempotency_key=f"{run}-s{i}")
        times.append((time.perf_counter() - began) * 1000)
    return times


def readers(t: Target) -> dict[str, Callable[[], object]]:
    assert t.pool is not None
    assert t.admin is not None
    pool, admin = t.pool, t.admin
    month_ago = datetime.now(UTC) - timedelta(days=30)
    year_ago = datetime.now(UTC) - timedelta(days=365)
    deep_seq = min(DEEP, t.size - PAGE)
    return {
        "balance()": lambda: pool.balance(ORG),
        "balance(at=30 days ago)": lambda: pool.balance(ORG, at=month_ago),
        "balance(at=a year ago)": lambda: pool.balance(ORG, at=year_ago),
        "consumptions, first page": lambda: pool.consumptions(ORG, limit=PAGE),
        "consumptions, 10k deep": lambda: pool.consumptions(
            ORG, before_id=t.deep_consumption, limit=PAGE
        ),
        "ledger, first page": lambda: pool.ledger(ORG, limit=PAGE),
        "ledger, after entry 10k": lambda: pool.ledger(ORG, after_seq=deep_seq, limit=PAGE),
        "holds, first page": lambda: pool.holds(ORG, limit=PAGE),
        "holds, 10k deep": lambda: pool.holds(ORG, before_id=t.deep_hold, limit=PAGE),
        "holds, open ones": lambda: pool.holds(ORG, status="open", limit=PAGE),
        "holds, expired, first page": lambda: pool.holds(ORG, status="expired", limit=PAGE),
        "usage page": lambda: web.usage_page(
            pool.db, admin, ORG, web.HistoryFilters(), None, web.CHART_DAYS[0]
        ),
    }


VERIFY_SCRIPT = """
import json, sys, time
from creditpool import CreditPool

def status(field):  # kB, from the kernel's view of this process
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

pool = CreditPool.open(sys.argv[1], migrate_schema=False)
pool.balance(sys.argv[2])  # connect and finish importing before the baseline
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak (VmHWM) to the current resident size
before = status("VmRSS")
began = time.perf_counter()
problems = pool.verify(sys.argv[2])
seconds = time.perf_counter() - began
peak = status("VmHWM")
print(json.dumps({"seconds": seconds, "added_mb": (peak - before) / 1024,
                  "peak_mb": peak / 1024, "problems": problems[:5]}))
"""


def verify_in_process(t: Target) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", VERIFY_SCRIPT, t.url, ORG],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    if result["problems"]:
        raise SystemExit(f"verify() found problems at {t.size}: {result['problems']}")
    return result


@dataclass
class Figure:
    name: str
    unit: str
    values: dict[int, float]
    higher_is_better: bool = False
    slack: float = 0.0  # an absolute allowance on top of the ratio (memory)

    def ratio(self, size: int, base: int) -> float:
        v, b = self.values[size], self.values[base]
        if self.higher_is_better:
            return b / v if v else float("inf")
        return v / b if b else float("inf")

    def met(self, size: int, base: int) -> bool:
        if self.ratio(size, base) <= GOAL:
            return True
        return self.slack > 0 and self.values[size] - self.values[base] <= self.slack


def progress(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def measure(
    targets: list[Target], calls: int, repeat: int, verify_rounds: int = VERIFY_ROUNDS
) -> list[Figure]:
    sizes = [t.size for t in targets]
    progress("consume")
    consumed: dict[int, list[float]] = {s: [] for s in sizes}
    for t in targets:  # warm up: first calls open connections, fill caches
        consume_calls(t, 20, "warm")
    for r in range(ROUNDS):  # alternate, so that noise hits every size alike
        for t in targets:
            consumed[t.size] += consume_calls(t, calls // ROUNDS, f"run{r}")
    rates = {s: 1000 / lower_quartile(v) for s, v in consumed.items()}
    figures = [Figure("consume", "/s", rates, True)]
    progress("hold -> settle")
    paired: dict[int, list[float]] = {s: [] for s in sizes}
    for t in targets:
        hold_settle_calls(t, 10, "warm")
    for r in range(ROUNDS):
        for t in targets:
            paired[t.size] += hold_settle_calls(t, calls // ROUNDS // 2, f"run{r}")
    rates = {s: 1000 / lower_quartile(v) for s, v in paired.items()}
    figures.append(Figure("hold -> settle pairs", "/s", rates, True))
    calls_by_target = {t.size: readers(t) for t in targets}
    for name in calls_by_target[sizes[0]]:
        progress(name)
        samples: dict[int, list[float]] = {s: [] for s in sizes}
        for t in targets:
            calls_by_target[t.size][name]()  # warm
        for _ in range(ROUNDS):
            for t in targets:
                samples[t.size] += timed_ms(calls_by_target[t.size][name], repeat)
        figures.append(Figure(name, "ms", {s: lower_quartile(v) for s, v in samples.items()}))
    runs: dict[int, list[dict[str, Any]]] = {t.size: [] for t in targets}
    for _ in range(verify_rounds):
        for t in targets:
            runs[t.size].append(verify_in_process(t))
            progress(f"verify() at {t.size:,}: {runs[t.size][-1]['seconds']:.1f} s")
    verified = {s: min(v, key=lambda run: run["seconds"]) for s, v in runs.items()}
    figures.append(
        Figure(
            "verify() per entry",
            "us",
            {s: v["seconds"] * US / s for s, v in verified.items()},
        )
    )
    figures.append(
        Figure(
            "verify() memory added",
            "MB",
            {s: v["added_mb"] for s, v in verified.items()},
            slack=MEMORY_SLACK_MB,
        )
    )
    figures.append(Figure("verify() total", "s", {s: v["seconds"] for s, v in verified.items()}))
    return figures


def print_table(backend: str, sizes: list[int], figures: list[Figure]) -> None:
    base = sizes[0]
    heads = [f"{s:,}" for s in sizes] + [f"ratio {s:,}" for s in sizes[1:]]
    print(f"\n{backend}: one organization, figures at each size of its ledger")
    print("| figure | " + " | ".join(heads) + " | goal |")
    print("|---" * (len(heads) + 2) + "|")
    for f in figures:
        cells = [_fmt(f.values[s], f.unit) for s in sizes]
        if f.name == "verify() total":
            cells += ["" for _ in sizes[1:]]
            goal = "(linear: see per entry)"
        else:
            cells += [f"{f.ratio(s, base):.2f}x" for s in sizes[1:]]
            verdicts = ", ".join("met" if f.met(s, base) else f"MISSED at {s:,}" for s in sizes[1:])
            limit = f"<= {GOAL}x" + (f" or +{MEMORY_SLACK_MB:.0f} MB" if f.slack else "")
            goal = f"{limit}: {verdicts}"
        print(f"| {f.name} | " + " | ".join(cells) + f" | {goal} |")
    sys.stdout.flush()


def _fmt(value: float, unit: str) -> str:
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "us":
        return f"{value:.1f} us"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:.1f} s"


# -- EXPLAIN ---------------------------------------------------------------------------------

EXPLAINED = {
    "balance(at=a year ago): Left then, as it was (by seq)": (
        "SELECT total_after FROM ledger WHERE org_id = :o AND at <= :y ORDER BY seq DESC LIMIT 1"
    ),
    "balance(at=a year ago): Left then, as it is (by at, seq)": (
        "SELECT total_after FROM ledger WHERE org_id = :o AND at <= :y"
        " ORDER BY at DESC, seq DESC LIMIT 1"
    ),
    "ledger page after seq": (
        "SELECT * FROM ledger WHERE org_id = :o AND seq > :s ORDER BY seq LIMIT 51"
    ),
    "consumptions page before id": (
        "SELECT * FROM consumptions WHERE org_id = :o AND id < :i ORDER BY id DESC LIMIT 51"
    ),
    "balance(at=a year ago): what open holds held then (held_at)": (
        "SELECT a.grant_id, a.amount FROM holds h JOIN hold_allocations a"
        " ON a.org_id = h.org_id AND a.hold_id = h.id WHERE h.org_id = :o"
        " AND h.expires_at > :y AND h.created_at <= :y"
        " AND (h.closed_at IS NULL OR h.closed_at > :y) AND h.expires_at <= :z"
    ),
    "holds page before id": (
        "SELECT * FROM holds WHERE org_id = :o AND id < :h ORDER BY id DESC LIMIT 51"
    ),
    "holds page, open": (
        "SELECT * FROM holds WHERE org_id = :o AND id IN (SELECT id FROM holds"
        " WHERE org_id = :o AND status = 'open' ORDER BY id DESC LIMIT 51)"
        " ORDER BY id DESC LIMIT 51"
    ),
    "holds page, expired": (
        "SELECT * FROM holds WHERE org_id = :o AND id IN (SELECT id FROM holds"
        " WHERE org_id = :o AND status = 'expired' ORDER BY id DESC LIMIT 51)"
        " ORDER BY id DESC LIMIT 51"
    ),
    "usage chart (30 days)": (
        "SELECT feature, sum(cost) FROM consumptions WHERE org_id = :o AND status = 'paid'"
        " AND created_at >= :t GROUP BY feature"
    ),
}


def explain(t: Target) -> None:
    assert t.pool is not None
    month_ago = datetime.now(UTC) - timedelta(days=30)
    year_ago = datetime.now(UTC) - timedelta(days=365)
    params = {
        "o": ORG,
        "t": month_ago,
        "y": year_ago,
        "s": DEEP,
        "i": t.deep_consumption,
        "h": t.deep_hold,
        "z": year_ago + timedelta(seconds=t.history.longest_hold_s if t.history else 0),
    }
    engine = t.pool.db.engine
    print(f"\nEXPLAIN ({t.backend}, {t.size:,} entries)")
    with engine.connect() as conn:
        from sqlalchemy import text

        for name, sql in EXPLAINED.items():
            prefix = "EXPLAIN QUERY PLAN " if t.backend == "sqlite" else "EXPLAIN ANALYZE "
            bound = dict(params)
            if t.backend == "sqlite":
                bound["t"], bound["y"] = _iso(_us(month_ago)), _iso(_us(year_ago))
                bound["z"] = _iso(_us(params["z"]))
            rows = conn.execute(text(prefix + sql), bound).all()
            print(f"-- {name}")
            for row in rows:
                print("   ", row[-1] if t.backend == "sqlite" else row[0])


# -- main ------------------------------------------------------------------------------------


def postgres_admin_url() -> str:
    return (
        os.environ.get("CREDITPOOL_BENCH_POSTGRES_URL")
        or os.environ.get("CREDITPOOL_TEST_POSTGRES_URL")
        or DEFAULT_PG_URL
    )


def run_backend(backend: str, sizes: list[int], args: argparse.Namespace) -> None:
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="growth-") as workdir:
        try:
            for size in sizes:
                if backend == "sqlite":
                    t = sqlite_target(size, Path(workdir))
                else:
                    t = postgres_target(size, postgres_admin_url())
                targets.append(t)
                seconds = prepare(t)
                print(f"{backend}: loaded {size:,} entries in {seconds:.1f} s", flush=True)
            if args.explain:
                for t in targets:
                    explain(t)
            figures = measure(targets, args.calls, args.repeat, args.verify_rounds)
            print_table(backend, sizes, figures)
        finally:
            for t in targets:
                if t.pool is not None:
                    t.pool.close()
                t.drop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,1000000", help="ledger entries per run")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--calls", type=int, default=1000, help="consumptions timed per size")
    parser.add_argument("--repeat", type=int, default=20, help="calls per read figure and round")
    parser.add_argument("--explain", action="store_true", help="print the plans of key queries")
    parser.add_argument(
        "--verify-rounds", type=int, default=VERIFY_ROUNDS, help="verify() runs per size"
    )
    args = parser.parse_args(argv)
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    if sizes[0] < 1_000:
        parser.error("the smallest size must be at least 1,000")
    os.environ.setdefault("CREDITPOOL_SECRET_KEY", "growth bench key, not a secret")
    for backend in args.backends.split(","):
        run_backend(backend.strip(), sizes, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
