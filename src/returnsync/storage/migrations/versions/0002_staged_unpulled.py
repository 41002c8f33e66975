"""Index the staged returns KCC has never read (they are offered whatever the cursor).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    """Add `ix_staged_unpulled` (0001 builds from the current tables, so it may exist)."""
    op.create_index(
        "ix_staged_unpulled",
        "staged_returns",
        ["tenant", "seq"],
        sqlite_where=sa.text("pulled_at IS NULL"),
        postgresql_where=sa.text("pulled_at IS NULL"),
        if_not_exists=True,
    )


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_staged_unpulled", table_name="staged_returns", if_exists=True)
