"""Checks that must hold in every build, also under ``python -O`` (which strips assert)."""

from __future__ import annotations


class InvariantBroken(AssertionError):
    """A rule of the ledger that can only break through a programming error."""


def invariant(condition: bool, message: str) -> None:
    if not condition:
        raise InvariantBroken(message)
