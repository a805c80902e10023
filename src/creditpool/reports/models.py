"""What a report is: its kind, its columns (with the type of each cell), its formats."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ReportKind(StrEnum):
    USAGE = "usage"
    BALANCE = "balance"
    PURCHASES = "purchases"


class ReportPeriod(StrEnum):
    """A named range of days, in the organization's time zone (the credits page's presets)."""

    THIS_MONTH = "this-month"
    LAST_MONTH = "last-month"
    THIS_YEAR = "this-year"
    ALL_TIME = "all-time"


class ReportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self]


MEDIA_TYPES = {
    ReportFormat.CSV: "text/csv; charset=utf-8",
    ReportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class CellType(StrEnum):
    """How a column's cells are typed: an instant (aware datetime in the organization's
    zone), text, credits (an exact Decimal; units inside the writers) or a count."""

    INSTANT = "instant"
    TEXT = "text"
    CREDITS = "credits"
    COUNT = "count"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: CellType


INSTANT, TEXT, CREDITS, COUNT = CellType.INSTANT, CellType.TEXT, CellType.CREDITS, CellType.COUNT

COLUMNS: dict[ReportKind, tuple[Column, ...]] = {
    ReportKind.USAGE: (
        Column("Usage time", INSTANT),
        Column("Feature type", TEXT),
        Column("Feature name", TEXT),
        Column("Usage action", TEXT),
        Column("Integration", TEXT),
        Column("User ID", TEXT),
        Column("Credits used", CREDITS),
        Column("Usage breakdown", TEXT),
        Column("# of requests", COUNT),
    ),
    ReportKind.BALANCE: (
        Column("Action date", INSTANT),
        Column("Action", TEXT),
        Column("Method", TEXT),
        Column("# of credits", CREDITS),
        Column("Total credits before", CREDITS),
        Column("Total credits after", CREDITS),
    ),
    ReportKind.PURCHASES: (
        Column("Purchase time", INSTANT),
        Column("# of credits", CREDITS),
        Column("Availability start date", INSTANT),
        Column("Expiration date", INSTANT),
        Column("Remaining credits", CREDITS),
    ),
}

TITLES = {
    ReportKind.USAGE: "Credit usage",
    ReportKind.BALANCE: "Credit balance",
    ReportKind.PURCHASES: "Purchase history",
}
