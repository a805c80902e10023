"""The audit trail of changes that write no ledger entry (organizations, keys, portal
links) and of refunds: who, when, what

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import creditpool.storage.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = creditpool.storage.types.UTCDateTime
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", RowId, nullable=False),
        sa.Column("at", Time(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=True),
        sa.Column("by", sa.String(length=200), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_org", "audit_log", ["org_id", "id"])


def downgrade() -> None:
    op.drop_table("audit_log")
