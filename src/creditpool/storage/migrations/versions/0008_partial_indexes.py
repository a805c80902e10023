"""Partial indexes where most rows have nothing to index: a consumption's team (NULL when its
user is in no team) and an event's dedupe key (NULL but for once-only events). A row with
NULL there no longer writes an index entry: one b-tree page less per consumption each
(bench/RESULTS.md, "Library consume (issue 14, item 2)").

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEAM = "ix_consumptions_org_team"
DEDUPE = "ix_events_dedupe"


def upgrade() -> None:
    op.drop_index(TEAM, table_name="consumptions")
    has_team = sa.text("team_id IS NOT NULL")
    op.create_index(
        TEAM,
        "consumptions",
        ["org_id", "team_id", "created_at"],
        sqlite_where=has_team,
        postgresql_where=has_team,
    )
    op.drop_index(DEDUPE, table_name="events")
    once_only = sa.text("dedupe IS NOT NULL")
    op.create_index(
        DEDUPE,
        "events",
        ["org_id", "dedupe"],
        unique=True,
        sqlite_where=once_only,
        postgresql_where=once_only,
    )


def downgrade() -> None:
    op.drop_index(DEDUPE, table_name="events")
    op.create_index(DEDUPE, "events", ["org_id", "dedupe"], unique=True)
    op.drop_index(TEAM, table_name="consumptions")
    op.create_index(TEAM, "consumptions", ["org_id", "team_id", "created_at"])
