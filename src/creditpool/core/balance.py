"""The balance of a pool at an instant: Total, Left, Used, held and upcoming."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from creditpool.core.grants import GrantRow, GrantState


@dataclass(frozen=True, slots=True)
class BalanceUnits:
    total: int
    left: int
    held: int
    upcoming: int

    @property
    def used(self) -> int:
        """Used = Total - Left - Held (held credits are reserved, not yet used)."""
        return self.total - self.left - self.held


def summarize(
    grants: list[GrantRow], t: datetime, *, left: int | None = None, held: int | None = None
) -> BalanceUnits:
    """Sum the grants at ``t``.

    ``left`` and ``held`` are handed in for a past instant (the grants' ``remaining`` and
    ``held`` only describe the present); when omitted they are the sums over the grants
    active at ``t``.
    """
    total = upcoming = computed_left = computed_held = 0
    for g in grants:
        state = g.state_at(t)
        if state is GrantState.ACTIVE:
            total += g.amount
            computed_left += g.remaining
            computed_held += g.held
        elif state is GrantState.PENDING:
            upcoming += g.amount
    return BalanceUnits(
        total=total,
        left=computed_left if left is None else left,
        held=computed_held if held is None else held,
        upcoming=upcoming,
    )
