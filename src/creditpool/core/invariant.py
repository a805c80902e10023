"""Checks that must hold in every build, also under ``python -O`` (which strips assert)."""

from __future__ import annotations

from collections.abc import Callable


class InvariantBroken(AssertionError):
    """A rule of the ledger that can only break through a programming error."""


def invariant(condition: bool, message: str | Callable[[], str]) -> None:
    """Raise InvariantBroken with ``message`` unless ``condition``. A message that shows
    values is a function, called only when the check fails: these checks run on every
    change, and formatting a model's repr every time cost ~10 us of a ~800 us consume."""
    if not condition:
        raise InvariantBroken(message if isinstance(message, str) else message())
