"""The holds of an organization by when they end: a past balance reads the holds that may
have held credits then (ending after that instant) as an index range, instead of every hold
the organization ever made (``repositories.holds.held_at``).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_holds_org_expires"


def upgrade() -> None:
    op.create_index(INDEX, "holds", ["org_id", "expires_at"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="holds")
