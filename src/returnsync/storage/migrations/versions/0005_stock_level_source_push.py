"""stock_levels.source_push: the inbox id of the push that set each level.

Stock levels are absolute. Pushes are applied in arrival order, but a dead push job
revived later would put its older levels back; with the push id stored, an older push
never overwrites a level a newer push set. Existing rows keep NULL (any push may set them).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    """Add stock_levels.source_push."""
    with op.batch_alter_table("stock_levels") as batch:
        batch.add_column(
            sa.Column("source_push", sa.BigInteger().with_variant(sa.Integer(), "sqlite"))
        )


def downgrade() -> None:
    """Drop stock_levels.source_push."""
    with op.batch_alter_table("stock_levels") as batch:
        batch.drop_column("source_push")
