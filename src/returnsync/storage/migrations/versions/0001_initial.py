"""Initial schema: inbox, returns, jobs, effects ledger, exceptions, findings, audit, catalogue.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from returnsync.storage.tables import metadata

revision = "0001"
down_revision = None


def upgrade() -> None:
    """Create every table of the 0001 schema."""
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    """Drop every table."""
    metadata.drop_all(op.get_bind())
