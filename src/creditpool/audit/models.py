"""The audit trail's public model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from creditpool.models import Model


class AuditRecord(Model):
    """One change of the audit trail: ``action`` (e.g. ``org.updated``) by ``by`` (None: a
    library call that named no one) at ``at``, with what it changed in ``details``."""

    id: int
    at: datetime
    org_id: str | None
    by: str | None
    action: str
    details: dict[str, Any]
