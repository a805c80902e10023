"""The three reports: a date range in the organization's zone, rows read as they come.

``open_report`` checks everything that can be refused (the organization, the kind, the
range) before a single row is read, so that an API answer or a CLI run fails before its
first byte. ``Report.batches`` then reads the rows in one read transaction and shapes them
in batches, with one cell maker per cell type (``Cells``): text for CSV, typed values
for spreadsheets and for library callers. Nothing holds more than one batch.

``Report.csv_blocks`` chooses how CSV is made: PostgreSQL writes the usage report's rows
itself (``COPY ... TO STDOUT``, cells formatted in SQL; only the breakdown is made here,
once per distinct value), byte for byte what the rows shaped here and written by the
``csv`` module give, which is the path of every other report and of SQLite.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from creditpool.core.errors import InvalidInput
from creditpool.core.ledger import GAINS, LedgerAction
from creditpool.core.money import format_credits, to_decimal
from creditpool.orgs import service as orgs
from creditpool.reports.models import (
    COLUMNS,
    TITLES,
    Column,
    ReportFormat,
    ReportKind,
    ReportPeriod,
)
from creditpool.repositories import reports as repository
from creditpool.settings import REPORT_SPAN_DAYS_MAX
from creditpool.storage.uow import Database

REPORT_BATCH_ROWS = 5_000  # rows per fetch from the server-side cursor
CELL_CACHE_SIZE_MAX = 10_000  # formatted amounts and breakdowns remembered per report
# Every zone's offset has been whole minutes since 1972 (Africa/Monrovia was the last at
# -0:44:30); before that ``isoformat`` writes the offset's seconds, which PostgreSQL's
# to_char cannot: a range starting earlier is formatted here.
DATABASE_CSV_SINCE = datetime(1973, 1, 1, tzinfo=UTC)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_GAINS = frozenset(m.value for m in GAINS)  # the other methods take credits out

Row = tuple[Any, ...]


# -- the range ---------------------------------------------------------------------------


def parse_day(value: str | date | None, field_name: str) -> date | None:
    """A calendar day, written YYYY-MM-DD."""
    if value is None or isinstance(value, date):
        return value
    text = value.strip()
    if not _DAY.match(text):
        raise InvalidInput(f"{field_name} must be a date written YYYY-MM-DD, not {value!r}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field_name} is not a calendar date: {value!r}") from None


def resolve_range(
    start: date | None,
    end: date | None,
    today: date,
    first_day: date | None,
    span_days_max: int | None = None,
) -> tuple[date, date]:
    """[start, end], both included. Defaults: ``end`` today, ``start`` the organization's
    first day with an entry (``first_day``; no entry yet, or none before ``end``: ``end``),
    so a report without dates covers all time. No cap on the span unless asked for: rows
    are streamed, so any range costs only the rows it holds."""
    end = end or today
    start = start or min(first_day or end, end)
    if end < start:
        raise InvalidInput(f"the range ends ({end}) before it starts ({start})")
    span = (end - start).days + 1
    if span_days_max is not None and span > span_days_max:
        raise InvalidInput(f"the range spans {span} days: at most {span_days_max} days per report")
    return start, end


def period_range(period: ReportPeriod | str, today: date) -> tuple[date | None, date]:
    """A named period's [start, end] as of ``today``; ``all-time`` starts at the first entry
    (None: let ``resolve_range`` find it)."""
    try:
        period = ReportPeriod(period)
    except ValueError:
        periods = ", ".join(p.value for p in ReportPeriod)
        raise InvalidInput(f"unknown period {period!r}: one of {periods}") from None
    if period is ReportPeriod.THIS_MONTH:
        return today.replace(day=1), today
    if period is ReportPeriod.LAST_MONTH:
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if period is ReportPeriod.THIS_YEAR:
        return today.replace(month=1, day=1), today
    return None, today


def day_bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants [first midnight, midnight after the last day) of the range, in UTC."""
    lo = datetime.combine(start, time(0), tzinfo=zone)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone)
    return lo.astimezone(UTC), hi.astimezone(UTC)


# -- cells -------------------------------------------------------------------------------


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
_SECONDS = [f"{s:02d}" for s in range(60)]
_UNSEEN: tuple[str, str] = ("", "")


@dataclass
class Cells:
    """Makes the cells of one report: an instant from a stored timestamp (a datetime, or
    SQLite's fixed-width UTC ISO text) and credits from units. ``text`` for CSV (ISO 8601
    in the organization's zone, to the second, with its offset); otherwise typed values
    (aware datetimes in that zone, Decimal credits)."""

    zone: ZoneInfo
    text: bool
    _credits: dict[int, Any] = field(default_factory=dict)
    # minute (of UTC) -> (local "YYYY-MM-DDTHH:MM:", offset): rows come in time order, so
    # most rows find their minute here and cost a lookup instead of a time zone conversion.
    _minutes: dict[Any, tuple[str, str] | None] = field(default_factory=dict)

    def instant(self, value: Any) -> Any:
        if value is None:
            return None
        if not self.text:
            return _aware(value).astimezone(self.zone)
        if isinstance(value, str):  # UTC text: "YYYY-MM-DD HH:MM:SS[.ffffff][+00:00]"
            key: Any = value[:16]
            second = int(value[17:19])
        else:
            delta = value - _EPOCH
            key, second = divmod(delta.days * 86_400 + delta.seconds, 60)
        minute = self._minutes.get(key, _UNSEEN)
        if minute is _UNSEEN:
            minute = self._minute(_aware(value).replace(second=0, microsecond=0))
            if len(self._minutes) >= CELL_CACHE_SIZE_MAX:
                self._minutes.clear()
            self._minutes[key] = minute
        if minute is None:  # the offset changes within this minute, or has seconds
            return _aware(value).astimezone(self.zone).isoformat(timespec="seconds")
        prefix, offset = minute
        return prefix + _SECONDS[second] + offset

    def _minute(self, start: datetime) -> tuple[str, str] | None:
        local = start.astimezone(self.zone)
        end = (start + timedelta(seconds=59)).astimezone(self.zone)
        offset = local.utcoffset()
        # An offset with seconds (local mean times before 1973) moves the local second.
        if offset != end.utcoffset() or offset is None or offset % _MINUTE:
            return None
        text = local.isoformat(timespec="seconds")
        return text[:17], text[19:]

    def credits(self, units: int) -> Any:
        made = self._credits.get(units)
        if made is None:
            made = format_credits(units) if self.text else to_decimal(units)
            if len(self._credits) >= CELL_CACHE_SIZE_MAX:
                self._credits.clear()
            self._credits[units] = made
        return made


def _aware(value: Any) -> datetime:
    """A stored instant: a datetime, or UTC text (with or without its ``+00:00``)."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(parsed, datetime)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def readable_breakdown(encoded: str | None) -> str | None:
    """``{"calls": 12, "web_searches": 3}`` -> ``12 calls, 3 web searches``."""
    if encoded is None:
        return None
    counts = json.loads(encoded)
    if not isinstance(counts, dict) or not counts:
        return None
    return ", ".join(f"{n} {_noun(str(key), n)}" for key, n in counts.items())


def _noun(key: str, n: object) -> str:
    words = key.replace("_", " ")
    if n != 1:
        return words
    for ending in ("ches", "shes", "sses", "xes"):
        if words.endswith(ending):
            return words[:-2]
    return words[:-1] if words.endswith("s") and not words.endswith("ss") else words


def _csv_cell(text: str | None) -> bytes:
    """One CSV cell as the ``csv`` module writes it among others: quoted (quotes doubled)
    only when it holds a comma, a quote or a line break; None is an empty cell."""
    if text is None:
        return b""
    if any(c in text for c in ',"\r\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text.encode()


# -- CSV blocks --------------------------------------------------------------------------

Block = tuple[bytes, int]  # CSV records (UTF-8, CRLF) and how many


def _written(batches: Iterable[list[Row]], block_bytes: int) -> Iterator[Block]:
    """Rows of text cells written by the ``csv`` module (RFC 4180: CRLF, quotes only where
    needed), in blocks of about ``block_bytes``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    rows = 0
    for batch in batches:
        writer.writerows(batch)
        rows += len(batch)
        if buffer.tell() >= block_bytes:
            yield buffer.getvalue().encode(), rows
            buffer.seek(0)
            buffer.truncate()
            rows = 0
    if rows:
        yield buffer.getvalue().encode(), rows


def _usage_records(copied: Iterable[Any], block_bytes: int) -> Iterator[Block]:
    """PostgreSQL's usage rows (``repository.usage_csv``, one per item) as the report's
    records, in blocks of about ``block_bytes``."""
    made: dict[bytes, bytes] = {}
    rows: list[Any] = []
    size = 0
    for row in copied:
        rows.append(row)
        size += len(row)
        if size >= block_bytes:
            yield _usage_block(rows, made), len(rows)
            rows.clear()
            size = 0
            if len(made) >= CELL_CACHE_SIZE_MAX:
                made = {}
    if rows:
        yield _usage_block(rows, made), len(rows)


_MARK = repository.BREAKDOWN_MARK


def _usage_block(rows: list[Any], made: dict[bytes, bytes]) -> bytes:
    """Rows ``<7 cells>,<mark>,<breakdown's JSON>,<mark>,<requests>\\n`` -> the records:
    ``<mark>,<JSON>,<mark>`` swapped for the readable cell (made once per distinct
    value), CRLF line ends. When the block holds no other mark and no line break inside
    a cell (checked by counting), both are done on the whole block at once; otherwise
    row by row, from the row's last two marks (text cells all come before them, and JSON
    text holds no control character), its line end being its last byte (a line break
    inside a quoted cell stays as it is, as the csv module leaves it)."""
    data = b"".join(rows)
    if data.count(b"\n") == len(rows) and data.count(_MARK) == 2 * len(rows):
        parts = data.split(_MARK)
        keys = parts[1::2]  # ``,<JSON as COPY writes it>,``
        found = list(map(made.get, keys))
        if None in found:  # some not made yet
            parts[1::2] = [made[k] if k in made else _breakdown_cell(k, made) for k in keys]
        else:
            parts[1::2] = found  # type: ignore[assignment]  # no None in it
        return b"".join(parts).replace(b"\n", b"\r\n")
    records: list[bytes] = []
    for row in rows:
        head, key, tail = bytes(row).rsplit(_MARK, 2)
        cell = made[key] if key in made else _breakdown_cell(key, made)
        records += (head, cell, tail[:-1], b"\r\n")
    return b"".join(records)


def _breakdown_cell(key: bytes, made: dict[bytes, bytes]) -> bytes:
    """``,<JSON as COPY writes it>,`` -> its readable cell; the commas around it are the
    ones left beside the marks."""
    written = key[1:-1]
    if written.startswith(b'"'):
        written = written[1:-1].replace(b'""', b'"')
    cell = _csv_cell(readable_breakdown(written.decode() if written else None))
    made[key] = cell
    return cell


# -- rows --------------------------------------------------------------------------------


@dataclass
class _Context:
    cells: Cells
    feature_names: dict[str, str]
    now: datetime
    breakdowns: dict[str | None, str | None] = field(default_factory=dict)

    def breakdown(self, encoded: str | None) -> str | None:
        made = self.breakdowns.get(encoded, "")
        if made == "":
            made = readable_breakdown(encoded)
            if len(self.breakdowns) >= CELL_CACHE_SIZE_MAX:
                self.breakdowns.clear()
            self.breakdowns[encoded] = made
        return made


def _usage_rows(batch: Sequence[Any], ctx: _Context) -> list[Row]:
    instant, credits, breakdown = ctx.cells.instant, ctx.cells.credits, ctx.breakdown
    names = ctx.feature_names
    return [
        (instant(at), names.get(f, f), name, act, integ, user, credits(cost), breakdown(b), req)
        for at, f, name, act, integ, user, cost, b, req in batch
    ]


def action_label(
    action: str, grant_id: int | None, consumption_id: int | None, hold_id: int | None = None
) -> str:
    if action == LedgerAction.CONSUMPTION and hold_id is not None:
        return f"Consumption #{consumption_id} (settles hold #{hold_id})"
    labels: dict[str, str] = {
        LedgerAction.GRANT_ADDED: f"Grant #{grant_id} added",
        LedgerAction.EXPIRY: f"Grant #{grant_id} expired",
        LedgerAction.VOID: f"Grant #{grant_id} voided",
        LedgerAction.CONSUMPTION: f"Consumption #{consumption_id}",
        LedgerAction.REFUND: f"Refund of consumption #{consumption_id}",
        LedgerAction.HOLD: f"Hold #{hold_id}",
        LedgerAction.RELEASE: f"Hold #{hold_id} released",
        LedgerAction.HOLD_EXPIRY: f"Hold #{hold_id} expired",
        LedgerAction.EXPIRY_CHANGE: f"Grant #{grant_id} expiry changed",
        LedgerAction.ADJUSTMENT: "Manual adjustment",
    }
    return labels.get(action) or action.replace("_", " ").capitalize()


def _balance_rows(batch: Sequence[Any], ctx: _Context) -> list[Row]:
    """Credits signed (+ in, - out: a hold takes from Left, its release gives back), so
    the column re-adds to the chain of Left before and after."""
    instant, credits = ctx.cells.instant, ctx.cells.credits
    return [
        (
            instant(at),
            action_label(action, grant_id, consumption_id, hold_id),
            f"Credits {method}",
            credits(amount if method in _GAINS else -amount),
            credits(before),
            credits(after),
        )
        for at, action, method, amount, before, after, grant_id, consumption_id, hold_id in batch
    ]


def _purchase_rows(batch: Sequence[Any], ctx: _Context) -> list[Row]:
    instant, credits = ctx.cells.instant, ctx.cells.credits
    rows: list[Row] = []
    for granted_at, amount, available_from, expires_at, remaining, voided_at in batch:
        expires = None if expires_at is None else _aware(expires_at)
        # What the grant can still pay for: nothing once voided or expired.
        gone = voided_at is not None or (expires is not None and expires <= ctx.now)
        rows.append(
            (
                instant(granted_at),
                credits(amount),
                instant(available_from),
                instant(expires),
                credits(0 if gone else remaining),
            )
        )
    return rows


_SHAPES: dict[ReportKind, tuple[dict[str, str], Callable[[Sequence[Any], _Context], list[Row]]]]
_SHAPES = {
    ReportKind.USAGE: (repository.USAGE_SQL, _usage_rows),
    ReportKind.BALANCE: (repository.BALANCE_SQL, _balance_rows),
    ReportKind.PURCHASES: (repository.PURCHASES_SQL, _purchase_rows),
}


# -- a report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """One report of one organization over [start, end] (days in ``timezone``), not yet read.

    ``rows()`` gives typed cells (aware datetimes in the organization's zone, Decimal
    credits, str, int, None); ``batches(text=True)`` gives the CSV text of every cell.
    Each iteration reads the database afresh, in one read transaction.
    """

    db: Database
    kind: ReportKind
    org_id: str
    timezone: str
    start: date
    end: date
    now: datetime
    feature_names: dict[str, str]
    batch_rows: int = REPORT_BATCH_ROWS

    @property
    def columns(self) -> tuple[Column, ...]:
        return COLUMNS[self.kind]

    @property
    def header(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return day_bounds(self.start, self.end, ZoneInfo(self.timezone))

    def filename(self, fmt: ReportFormat | str) -> str:
        """``acme_credit-usage_2026-11-01_2026-11-30.csv``: organization, report, range."""
        org = re.sub(r"[^A-Za-z0-9.-]+", "-", self.org_id).strip("-.") or "org"
        title = self.title.lower().replace(" ", "-")
        return f"{org}_{title}_{self.start}_{self.end}.{ReportFormat(fmt).value}"

    def count(self) -> int:
        lo, hi = self.bounds
        with self.db.read() as tx:
            return repository.count(tx.conn, self.kind.value, self.org_id, lo, hi)

    def batches(self, *, text: bool = False) -> Iterator[list[Row]]:
        statement, shape = _SHAPES[self.kind]
        ctx = _Context(Cells(ZoneInfo(self.timezone), text), self.feature_names, self.now)
        lo, hi = self.bounds
        with self.db.read() as tx:
            for batch in repository.stream(
                tx.conn, statement, self.org_id, lo, hi, self.batch_rows
            ):
                yield shape(batch, ctx)

    def rows(self) -> Iterator[Row]:
        for batch in self.batches():
            yield from batch

    def csv_blocks(self, block_bytes: int) -> Generator[Block, None, None]:
        """The CSV records (no header) in blocks of about ``block_bytes``, with how many
        each holds. The usage report on PostgreSQL is written by the database (cells
        formatted in SQL, read over COPY: bench/REPORTS.md), unless the range starts
        before ``DATABASE_CSV_SINCE`` or PostgreSQL does not know the zone; everything
        else is shaped here and written by the ``csv`` module. Both give the same bytes."""
        lo, hi = self.bounds
        if self.kind is ReportKind.USAGE and lo >= DATABASE_CSV_SINCE:
            with self.db.read() as tx:
                copied = repository.usage_csv(
                    tx.conn, self.org_id, lo, hi, self.timezone, self.feature_names
                )
                if copied is not None:
                    with closing(copied):  # before the transaction ends, read or not
                        yield from _usage_records(copied, block_bytes)
                    return
        yield from _written(self.batches(text=True), block_bytes)


def open_report(
    db: Database,
    org_id: str,
    kind: ReportKind | str,
    start: date | str | None = None,
    end: date | str | None = None,
    *,
    period: ReportPeriod | str | None = None,
    span_days_max: int | None = REPORT_SPAN_DAYS_MAX,
) -> Report:
    """The ``usage``, ``balance`` or ``purchases`` report over the days [start, end] of
    the organization's zone (default: from its first entry to today; or a ``period``:
    this-month, last-month, this-year, all-time). Refusals (unknown
    organization, bad range) come now; rows are read as the report is iterated
    (``rows()``, or ``reports.formats.csv_chunks`` / ``write_xlsx``). Availability and
    expiry entries that fell due are written first (by ``CreditPool.report``, which this
    is: it checks the organization, the kind and the range, and reads nothing else yet)."""
    try:
        kind = ReportKind(kind)
    except ValueError:
        kinds = ", ".join(k.value for k in ReportKind)
        raise InvalidInput(f"unknown report {kind!r}: one of {kinds}") from None
    first, last = parse_day(start, "from"), parse_day(end, "to")
    if period is not None and (first is not None or last is not None):
        raise InvalidInput("give either a period or days (from, to), not both")
    with db.read() as tx:
        org = orgs.require_org(tx, org_id)
        names = repository.feature_names(tx.conn)
        began = repository.first_activity(tx.conn, org.id)
        now = tx.now
    zone = ZoneInfo(org.timezone)
    today = now.astimezone(zone).date()
    if period is not None:
        first, last = period_range(period, today)
    first_day = None if began is None else _aware(began).astimezone(zone).date()
    first, last = resolve_range(first, last, today, first_day, span_days_max)
    return Report(db, kind, org.id, org.timezone, first, last, now, names)
