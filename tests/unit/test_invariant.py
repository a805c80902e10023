"""``core.invariant``: a rule that only a programming error breaks, checked in every build."""

from __future__ import annotations

import pytest

from creditpool.core.invariant import InvariantBroken, invariant


def test_a_broken_rule_raises_with_its_message_whether_text_or_made_on_failure() -> None:
    with pytest.raises(InvariantBroken, match=r"^plain$"):
        invariant(False, "plain")
    with pytest.raises(InvariantBroken, match=r"^made 42$"):
        invariant(1 > 2, lambda: f"made {42}")


def test_a_message_that_shows_values_is_made_only_when_the_rule_breaks() -> None:
    made: list[int] = []

    def message() -> str:
        made.append(1)
        return "never shown"

    invariant(True, message)
    assert made == []
