"""Staff corrections (expiry changes, partial voids, adjustments), the feature price
history, members' display names

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import creditpool.storage.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = creditpool.storage.types.UTCDateTime
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("members", sa.Column("display_name", sa.String(length=200), nullable=True))
    op.add_column("ledger", sa.Column("correction_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "corrections",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", Time(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("grant_id", sa.BigInteger(), nullable=True),
        sa.Column("credits", sa.BigInteger(), nullable=True),
        sa.Column("expires_before", Time(timezone=True), nullable=True),
        sa.Column("expires_after", Time(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_corrections_org_id_orgs")),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_corrections")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_corrections_org_grant", "corrections", ["org_id", "grant_id"])
    op.create_table(
        "adjustment_allocations",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("correction_id", sa.BigInteger(), nullable=False),
        sa.Column("grant_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id", "correction_id"],
            ["corrections.org_id", "corrections.id"],
            name=op.f("fk_adjustment_allocations_org_id_corrections"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "grant_id"],
            ["grants.org_id", "grants.id"],
            name=op.f("fk_adjustment_allocations_org_id_grants"),
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "correction_id", "grant_id", name=op.f("pk_adjustment_allocations")
        ),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_adjustment_allocations_grant", "adjustment_allocations", ["org_id", "grant_id"]
    )
    prices = op.create_table(
        "feature_prices",
        sa.Column("id", RowId, nullable=False),
        sa.Column("feature", sa.String(length=64), nullable=False),
        sa.Column("since", Time(timezone=True), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("rate", sa.BigInteger(), nullable=False),
        sa.Column("per_unit", sa.Boolean(), nullable=False),
        sa.Column("unit", sa.String(length=64), nullable=True),
        sa.Column("changed_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["feature"], ["features.key"], name=op.f("fk_feature_prices_feature_features")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_prices")),
    )
    op.create_index("ix_feature_prices_feature_since", "feature_prices", ["feature", "since"])
    assert prices is not None
    # The price in force today is the first of each feature's history.
    op.execute(
        "INSERT INTO feature_prices (feature, since, name, rate, per_unit, unit, changed_by)"
        " SELECT key, updated_at, name, rate, per_unit, unit, NULL FROM features"
    )


def downgrade() -> None:
    op.drop_table("feature_prices")
    op.drop_table("adjustment_allocations")
    op.drop_table("corrections")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("correction_id")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("display_name")
