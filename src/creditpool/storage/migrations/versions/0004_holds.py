"""Holds: credits reserved on grants, settled into a consumption or released

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import creditpool.storage.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = creditpool.storage.types.UTCDateTime


def upgrade() -> None:
    op.add_column("grants", sa.Column("held", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("consumptions", sa.Column("hold_id", sa.BigInteger(), nullable=True))
    op.add_column("ledger", sa.Column("hold_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "holds",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", Time(timezone=True), nullable=False),
        sa.Column("expires_at", Time(timezone=True), nullable=False),
        sa.Column("closed_at", Time(timezone=True), nullable=True),
        sa.Column("feature", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=True),
        sa.Column("quantity", sa.BigInteger(), nullable=True),
        sa.Column("feature_name", sa.String(length=500), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=True),
        sa.Column("integration", sa.String(length=200), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("consumption_id", sa.BigInteger(), nullable=True),
        sa.Column("released", sa.BigInteger(), nullable=False),
        sa.Column("lost", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_holds_org_id_orgs")),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_holds")),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_holds_org_status", "holds", ["org_id", "status", "expires_at"], unique=False
    )
    op.create_table(
        "hold_allocations",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("hold_id", sa.BigInteger(), nullable=False),
        sa.Column("grant_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("returned", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id", "grant_id"],
            ["grants.org_id", "grants.id"],
            name=op.f("fk_hold_allocations_org_id_grants"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "hold_id"],
            ["holds.org_id", "holds.id"],
            name=op.f("fk_hold_allocations_org_id_holds"),
        ),
        sa.PrimaryKeyConstraint("org_id", "hold_id", "grant_id", name=op.f("pk_hold_allocations")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("hold_allocations")
    op.drop_index("ix_holds_org_status", table_name="holds")
    op.drop_table("holds")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("hold_id")
    with op.batch_alter_table("consumptions") as batch:
        batch.drop_column("hold_id")
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("held")
