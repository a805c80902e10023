"""Small builders for the unit tier: instants on a minute grid and grants in credits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from creditpool.core.grants import GrantRow
from creditpool.core.money import parse_credits

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def at(minutes: float) -> datetime:
    """The instant ``minutes`` after T0."""
    return T0 + timedelta(minutes=minutes)


def units(credits: str) -> int:
    return parse_credits(credits, allow_zero=True)


def grant(
    gid: int,
    amount: str = "10",
    *,
    remaining: str | None = None,
    granted: float = 0,
    available: float | None = None,
    expires: float | None = None,
    voided: float | None = None,
) -> GrantRow:
    """A grant created at ``granted`` minutes, available from ``available`` (default: then)."""
    return GrantRow(
        id=gid,
        amount=units(amount),
        remaining=units(amount if remaining is None else remaining),
        granted_at=at(granted),
        available_from=at(granted if available is None else available),
        expires_at=None if expires is None else at(expires),
        voided_at=None if voided is None else at(voided),
    )


def snapshot(grants: list[GrantRow]) -> list[tuple[int, int, bool, bool]]:
    """What a plan must leave untouched."""
    return [(g.id, g.remaining, g.added_logged, g.expiry_logged) for g in grants]
