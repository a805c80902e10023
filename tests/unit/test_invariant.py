"""invariant() is a real check: it raises in every build, also under ``python -O``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from creditpool.core.invariant import InvariantBroken, invariant


def test_invariant_passes_silently_when_the_condition_holds() -> None:
    invariant(True, "never shown")


def test_invariant_raises_with_its_message_when_broken() -> None:
    with pytest.raises(InvariantBroken, match="remaining out of bounds"):
        invariant(False, "remaining out of bounds")


def test_invariant_broken_is_an_assertion_error_not_an_expected_failure() -> None:
    from creditpool.core.errors import CreditPoolError

    assert issubclass(InvariantBroken, AssertionError)
    assert not issubclass(InvariantBroken, CreditPoolError)


def test_invariant_still_raises_under_python_optimize() -> None:
    script = (
        "import sys\n"
        "assert False, 'asserts are stripped'\n"
        "from creditpool.core.invariant import InvariantBroken, invariant\n"
        "try:\n"
        "    invariant(False, 'broken')\n"
        "except InvariantBroken:\n"
        "    print('raised', sys.flags.optimize)\n"
    )
    done = subprocess.run(
        [sys.executable, "-O", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "raised 1"


def test_a_message_that_shows_values_is_made_only_when_the_rule_breaks() -> None:
    made: list[int] = []

    def message() -> str:
        made.append(1)
        return f"made {len(made)}"

    invariant(True, message)
    assert made == []
    with pytest.raises(InvariantBroken, match=r"^made 1$"):
        invariant(1 > 2, message)
