"""Two reads of holds that grew with an organization's history of holds (bench/growth.py,
bench/RESULTS.md "Growth"):

- A past balance read the holds ending after its instant t: every hold made since t, not
  those near t. ``orgs.longest_hold_s`` keeps the longest time to live the organization's
  holds were ever given, so a hold open at t ends in (t, t + longest]: a bounded range of
  ``ix_holds_org_expires``. Filled here from the holds already made. That index now also
  holds the columns the filter and the join read (``created_at``, ``closed_at``, ``id``):
  the range is read from it alone, not each hold's row.
- A page of holds of one status (``holds(status=...)``, newest first) read the organization's
  holds by primary key backward, skipping those of other statuses (SQLite), or all its holds
  of that status, then sorted them. ``ix_holds_org_status_id (org_id, status, id)`` gives
  them in page order.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_holds_org_status_id"
EXPIRES = "ix_holds_org_expires"
COLUMN = "longest_hold_s"


def upgrade() -> None:
    op.add_column("orgs", sa.Column(COLUMN, sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        seconds = "ceil(extract(epoch from (h.expires_at - h.created_at)))"
    else:  # times are ISO 8601 text: whole seconds, rounded up
        seconds = "CAST((julianday(h.expires_at) - julianday(h.created_at)) * 86400 AS INTEGER) + 1"
    op.execute(
        f"UPDATE orgs SET {COLUMN} = (SELECT max({seconds}) FROM holds h WHERE h.org_id = orgs.id)"
    )
    op.create_index(INDEX, "holds", ["org_id", "status", "id"])
    op.drop_index(EXPIRES, table_name="holds")
    op.create_index(EXPIRES, "holds", ["org_id", "expires_at", "created_at", "closed_at", "id"])


def downgrade() -> None:
    op.drop_index(EXPIRES, table_name="holds")
    op.create_index(EXPIRES, "holds", ["org_id", "expires_at"])
    op.drop_index(INDEX, table_name="holds")
    with op.batch_alter_table("orgs") as batch:
        batch.drop_column(COLUMN)
