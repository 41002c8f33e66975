"""Initial schema: inbox, returns, jobs, effects ledger, exceptions, findings, audit, catalogue.

Frozen DDL (rendered by Alembic from the tables as they stood at this revision, without the
indexes 0002 adds): a later change to `storage/tables.py` needs its own revision, and a
fresh database replays exactly what an upgraded one went through.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from returnsync.storage.tables import UtcDateTime

revision = "0001"
down_revision = None


def upgrade() -> None:
    """Create every table of the 0001 schema."""
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("return_ref", sa.String(length=64), server_default="", nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_return", "audit_log", ["tenant", "return_ref"], unique=False)
    op.create_table(
        "credit_notes",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("associated_ref", sa.String(length=64), nullable=False),
        sa.Column("net", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("tax", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("gross", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("observed_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "code"),
    )
    op.create_index(
        "ix_credit_notes_assoc", "credit_notes", ["tenant", "associated_ref"], unique=False
    )
    op.create_table(
        "cursors",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "name"),
    )
    op.create_table(
        "effects",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("effect_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("return_ref", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("remote_ref", sa.String(length=80), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "effect_key"),
    )
    op.create_table(
        "exceptions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("return_ref", sa.String(length=64), server_default="", nullable=False),
        sa.Column("subject", sa.String(length=120), server_default="", nullable=False),
        sa.Column("owner", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_exceptions_open", "exceptions", ["tenant", "status", "kind"], unique=False)
    op.create_table(
        "findings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("return_ref", sa.String(length=64), server_default="", nullable=False),
        sa.Column("line_id", sa.String(length=80), server_default="", nullable=False),
        sa.Column("severity", sa.String(length=12), nullable=False),
        sa.Column("owner", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("suggested_action", sa.Text(), server_default="", nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("first_seen", UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", UtcDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "kind", "return_ref", "line_id", name="uq_findings_key"),
    )
    op.create_table(
        "inbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("received_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("processed_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "source", "dedupe_key", name="uq_inbox_dedupe"),
    )
    op.create_table(
        "jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("serial_key", sa.String(length=160), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="12", nullable=False),
        sa.Column("run_after", UtcDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", UtcDateTime(timezone=True), nullable=True),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_jobs_claim", "jobs", ["status", "run_after"], unique=False)
    op.create_index(
        "uq_jobs_pending_dedupe",
        "jobs",
        ["dedupe_key"],
        unique=True,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "return_lines",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("return_ref", sa.String(length=64), nullable=False),
        sa.Column("line_id", sa.String(length=80), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("disposition", sa.String(length=24), nullable=False),
        sa.Column("condition", sa.String(length=24), server_default="", nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("stock_id", sa.String(length=64), nullable=True),
        sa.Column("stock_code", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("tenant", "return_ref", "line_id"),
    )
    op.create_table(
        "returns",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("return_ref", sa.String(length=64), nullable=False),
        sa.Column("order_ref", sa.String(length=64), nullable=False),
        sa.Column("associated_ref", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("warehouse", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("zigzag_status", sa.String(length=32), nullable=False),
        sa.Column("zigzag_updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("seen_by_webhook", sa.Integer(), server_default="0", nullable=False),
        sa.Column("seen_by_poll", sa.Integer(), server_default="0", nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("payment_ref", sa.String(length=64), nullable=True),
        sa.Column("credit_note", sa.String(length=32), nullable=True),
        sa.Column("refund_ref", sa.String(length=64), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "return_ref"),
    )
    op.create_index("ix_returns_assoc", "returns", ["tenant", "associated_ref"], unique=True)
    op.create_index("ix_returns_state", "returns", ["tenant", "state"], unique=False)
    op.create_table(
        "serial_locks",
        sa.Column("serial_key", sa.String(length=160), nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("lease_until", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("serial_key"),
    )
    op.create_table(
        "sku_map",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("stock_id", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "sku"),
    )
    op.create_table(
        "staged_returns",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("associated_ref", sa.String(length=64), nullable=False),
        sa.Column("return_ref", sa.String(length=64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("staged_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("pulled_at", UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("tenant", "associated_ref", name="uq_staged_assoc"),
    )
    op.create_table(
        "stock_items",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("stock_id", sa.String(length=64), nullable=False),
        sa.Column("stock_code", sa.String(length=64), nullable=False),
        sa.Column("other_ref", sa.String(length=64), server_default="", nullable=False),
        sa.Column("barcodes", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=250), server_default="", nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "stock_id"),
    )
    op.create_table(
        "stock_levels",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("stock_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("stock_code", sa.String(length=64), nullable=False),
        sa.Column("available", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "stock_id", "site_id"),
    )


def downgrade() -> None:
    """Drop every table."""
    op.drop_table("stock_levels")
    op.drop_table("stock_items")
    op.drop_table("staged_returns")
    op.drop_table("sku_map")
    op.drop_table("serial_locks")
    op.drop_table("returns")
    op.drop_table("return_lines")
    op.drop_table("jobs")
    op.drop_table("inbox")
    op.drop_table("findings")
    op.drop_table("exceptions")
    op.drop_table("effects")
    op.drop_table("cursors")
    op.drop_table("credit_notes")
    op.drop_table("audit_log")
