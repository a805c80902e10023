"""What each role's key may do: the table in the README and in ``keys create --help``.

A copy of ``creditpool.http.security.PERMISSIONS`` as plain strings, so that the CLI's help
loads no server code; ``tests/unit/test_roles_table.py`` fails when the two disagree, or when
the README's table is not ``markdown_table()`` (print it with
``uv run python -m creditpool.cli.roles``).
"""

from __future__ import annotations

ROLES = ("service", "staff", "admin", "member")

# Every action, in the order of ``security.Action``, with what it lets a key do.
ACTIONS: dict[str, str] = {
    "orgs.create": "create organizations",
    "orgs.list": "list every organization",
    "orgs.read": "read an organization",
    "orgs.update": "rename an organization, change its time zone",
    "orgs.update_thresholds": "set its low-balance alerts",
    "teams.read": "read teams and their usage",
    "teams.write": "create teams",
    "teams.limit": "set a team's monthly limit",
    "members.read": "read members",
    "members.write": "add members, move them between teams",
    "features.read": "read the feature catalog",
    "features.write": "set feature prices",
    "grants.read": "read grants",
    "grants.write": "grant, void and correct credits (expiry changes, adjustments)",
    "consumptions.read": "read everyone's usage history",
    "consumptions.read_own": "read one's own usage history",
    "consume": "consume credits",
    "refund": "refund a consumption",
    "holds.write": "hold, settle and release credits",
    "holds.read": "read holds",
    "balance.read": "read the balance",
    "usage.read": "read usage summaries",
    "ledger.read": "read the ledger",
    "portal.create": "open portal sessions for users",
    "reports.read": "download reports",
    "events.read": "follow live balance changes",
    "events.read_log": "read the event log (what webhooks carry)",
    "webhooks.read": "read webhook endpoints and deliveries",
    "webhooks.write": "manage webhook endpoints",
    "credit_requests.read": "read credit requests",
    "credit_requests.create": "ask for more credits",
    "credit_requests.answer": "grant or dismiss a credit request",
    "keys.read": "list an organization's admin and member keys",
    "keys.write": "create and revoke an organization's admin and member keys",
}

# Which actions each role may take (``PERMISSIONS``), and who holds such a key.
PERMITTED: dict[str, frozenset[str]] = {
    "service": frozenset(ACTIONS) - {"grants.write", "credit_requests.answer"},
    "staff": frozenset(
        {
            "orgs.list", "orgs.read", "teams.read", "members.read", "features.read",
            "grants.read", "grants.write", "consumptions.read", "consumptions.read_own",
            "holds.read", "balance.read", "usage.read", "ledger.read", "reports.read",
            "events.read", "events.read_log", "webhooks.read", "credit_requests.read",
            "credit_requests.answer", "orgs.create", "orgs.update", "orgs.update_thresholds",
            "keys.read", "keys.write", "portal.create", "refund", "features.write",
        }
    ),
    "admin": frozenset(
        {
            "orgs.read", "orgs.update_thresholds", "teams.read", "teams.limit", "members.read",
            "features.read", "grants.read", "consumptions.read", "consumptions.read_own",
            "holds.read", "balance.read", "usage.read", "ledger.read", "reports.read",
            "events.read", "events.read_log", "credit_requests.read", "credit_requests.create",
        }
    ),
    "member": frozenset({"features.read", "balance.read", "consumptions.read_own", "events.read"}),
}  # fmt: skip
HOLDERS = {
    "service": "the vendor's backend (no --org): everything but granting",
    "staff": (
        "the vendor's account team (no --org): reads every organization, grants, refunds,"
        " manages organizations, their keys and feature prices"
    ),
    "admin": "an organization's admin (--org): reads all of it, sets limits and alerts",
    "member": "one user of an organization (--org, --user): their own usage",
}


def markdown_table() -> str:
    """The README's table: one row per action, a column per role."""
    lines = [
        "| A key may | " + " | ".join(ROLES) + " |",
        "|---|" + "---|" * len(ROLES),
    ]
    for action, what in ACTIONS.items():
        marks = " | ".join("yes" if action in PERMITTED[r] else "" for r in ROLES)
        lines.append(f"| {what} (`{action}`) | {marks} |")
    return "\n".join(lines)


def help_text() -> str:
    """For ``keys create --help``: each role, who holds it and what it may do (paragraphs,
    as Typer's help keeps them)."""
    parts = ["What each role may do (see the README's table):"]
    for role in ROLES:
        allowed = ", ".join(a for a in ACTIONS if a in PERMITTED[role])
        parts.append(f"{role}: {HOLDERS[role]}. May: {allowed}.")
    return "\n\n".join(parts)


if __name__ == "__main__":
    print(markdown_table())
