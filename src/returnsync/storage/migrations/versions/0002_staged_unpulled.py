"""Indexes: staged returns KCC never read (offered whatever the cursor), a return's jobs, and
jobs by kind (Khaos pushes are claimed first).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    """Add the indexes (`if_not_exists`: databases created before 0001 was frozen have them)."""
    op.create_index(
        "ix_staged_unpulled",
        "staged_returns",
        ["tenant", "seq"],
        sqlite_where=sa.text("pulled_at IS NULL"),
        postgresql_where=sa.text("pulled_at IS NULL"),
        if_not_exists=True,
    )
    op.create_index("ix_jobs_serial", "jobs", ["serial_key", "status"], if_not_exists=True)
    op.create_index(
        "ix_jobs_kind_claim", "jobs", ["kind", "status", "run_after"], if_not_exists=True
    )


def downgrade() -> None:
    """Drop the indexes."""
    op.drop_index("ix_jobs_kind_claim", table_name="jobs", if_exists=True)
    op.drop_index("ix_jobs_serial", table_name="jobs", if_exists=True)
    op.drop_index("ix_staged_unpulled", table_name="staged_returns", if_exists=True)
