"""The commands made by ``cli/calls.py`` (``change``, ``listing``) send their arguments to a
``CreditPool`` method by name: each name must be one of the method's parameters, or the
command fails only when it runs."""

from __future__ import annotations

import inspect
from typing import Any

import typer

from creditpool.cli.main import app
from creditpool.pool import CreditPool


def made_commands() -> dict[str, Any]:
    """Each command made by ``cli/calls.py``, by its path (``credit-requests grant``)."""
    found: dict[str, Any] = {}

    def walk(command: object, path: list[str]) -> None:
        callback = getattr(command, "callback", None)
        if hasattr(callback, "sent"):
            found[" ".join(path)] = callback
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def parameters(method: str) -> set[str]:
    found = getattr(CreditPool, method)
    signature = getattr(found, "signature", None) or inspect.signature(found)
    return set(signature.parameters) - {"self"}


def test_every_made_command_sends_only_the_methods_parameters() -> None:
    made = made_commands()
    assert {"grant", "consume", "settle", "credit-requests grant", "history", "orgs list"} <= set(
        made
    )
    for path, command in made.items():
        sent = command.sent
        unknown = set(sent.arguments) - parameters(sent.method)
        assert not unknown, f"{path}: {sent.method} takes no {sorted(unknown)}"


def test_a_ledger_change_sends_every_field_of_its_use_details() -> None:
    consume = made_commands()["consume"].sent
    assert {"user_id", "feature_name", "breakdown", "requests", "metadata"} <= set(
        consume.arguments
    )
    assert "user" not in consume.arguments
    assert made_commands()["grant"].sent.arguments.count("granted_by") == 1
