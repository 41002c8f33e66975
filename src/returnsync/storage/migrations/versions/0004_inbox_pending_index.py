"""A partial index on the inbox's pending messages: (tenant, source, id) WHERE pending.

A Khaos push job applies every pending push of its tenant and kind, oldest first, in one
transaction (stock levels are absolute: an older push applied after a newer one would put
old levels back). The index finds them without reading the processed messages, which are
nearly all of the table.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    """Add ix_inbox_pending."""
    op.create_index(
        "ix_inbox_pending",
        "inbox",
        ["tenant", "source", "id"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    """Drop ix_inbox_pending."""
    op.drop_index("ix_inbox_pending", table_name="inbox")
