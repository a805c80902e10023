"""The audit trail of changes that write no ledger entry: who did what, and when.

Ledger changes are their own record (the ledger, a grant's ``granted_by``, a correction's
``by``; a feature's price history keeps ``changed_by``). Creating or changing an
organization, creating or revoking an API key, minting a portal link and refunding a
consumption are told here too, one line each on the ``creditpool.audit`` logger with the
fields ``action``, ``by``, ``at`` and what was changed: the server writes them as JSON lines
(``CREDITPOOL_LOG_FORMAT=json``), where the operator's log store keeps them. An idempotent
replay changed nothing and is not told again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

log = logging.getLogger("creditpool.audit")


def record(action: str, *, by: str | None, at: datetime, **fields: Any) -> None:
    """One line: ``action`` (e.g. ``org.updated``) by ``by`` (None: not said) at ``at``."""
    who = by if by is not None else "unknown"
    details = {"action": action, "by": by, "at": at.isoformat(), **fields}
    shown = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
    log.info("%s by %s at %s %s", action, who, at.isoformat(), shown, extra={"fields": details})
