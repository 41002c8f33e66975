"""The schema, in SQLAlchemy Core. Every row carries its tenant.

Alembic migrations (storage/migrations/) create exactly these tables; a test checks
that the migrated database matches this metadata.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: returnsync stores timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Always hand back an aware UTC datetime."""
        del dialect
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

MONEY = Numeric(14, 2, asdecimal=True)
ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrement needs INTEGER
TS = UtcDateTime()

inbox = Table(
    "inbox",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("source", String(32), nullable=False),  # zigzag_webhook | zigzag_poll | kcc_* ...
    Column("dedupe_key", String(200), nullable=False),
    Column("received_at", TS, nullable=False),
    Column("payload", Text, nullable=False),  # the raw body, exactly as received
    Column("status", String(16), nullable=False, server_default="pending"),
    # pending: stored, not processed | processed | quarantined: bad content, see exceptions
    Column("processed_at", TS),
    Column("error", Text),
    UniqueConstraint("tenant", "source", "dedupe_key", name="uq_inbox_dedupe"),
    # A tenant's pending pushes of one kind, oldest first: a Khaos push job applies them all
    # in order (0004). Partial: processed messages, the bulk of the table, are not in it.
    Index(
        "ix_inbox_pending",
        "tenant",
        "source",
        "id",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
)

returns = Table(
    "returns",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("return_ref", String(64), primary_key=True),
    Column("order_ref", String(64), nullable=False),
    Column("associated_ref", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("warehouse", String(32), nullable=False),
    Column("state", String(24), nullable=False),
    Column("zigzag_status", String(32), nullable=False),
    Column("zigzag_updated_at", TS, nullable=False),
    Column("seen_by_webhook", Integer, nullable=False, server_default="0"),
    Column("seen_by_poll", Integer, nullable=False, server_default="0"),
    Column("snapshot", JSON, nullable=False),  # the latest ZigZag Return JSON
    Column("payment_ref", String(64)),
    Column("credit_note", String(32)),
    Column("refund_ref", String(64)),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_returns_state", "tenant", "state"),
    Index("ix_returns_assoc", "tenant", "associated_ref", unique=True),
)

return_lines = Table(
    "return_lines",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("return_ref", String(64), primary_key=True),
    Column("line_id", String(80), primary_key=True),
    Column("item_id", String(64), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("disposition", String(24), nullable=False),
    Column("condition", String(24), nullable=False, server_default=""),
    Column("unit_price", MONEY, nullable=False),
    Column("stock_id", String(64)),
    Column("stock_code", String(64)),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("kind", String(48), nullable=False),
    Column("serial_key", String(160), nullable=False),  # jobs with one key never run at once
    Column("dedupe_key", String(200)),  # at most one *pending* job per dedupe key
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    # pending: waiting for run_after | running: leased by a worker | succeeded | failed:
    # will be retried | dead: gave up, visible and replayable
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False, server_default="12"),
    Column("run_after", TS, nullable=False),
    Column("lease_until", TS),
    Column("locked_by", String(64)),
    Column("last_error", Text),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    # The claim reads these in ORDER BY run_after, id order and stops after a few rows: with
    # `id` in the index that is an index scan whatever the queue length (0003).
    Index("ix_jobs_claim", "status", "run_after", "id"),
    Index("ix_jobs_serial", "serial_key", "status"),  # a return's queued jobs (migration 0002)
    Index("ix_jobs_kind_claim", "kind", "status", "run_after", "id"),  # priority kinds (0003)
    Index(
        "uq_jobs_pending_dedupe",
        "dedupe_key",
        unique=True,
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
)

serial_locks = Table(
    "serial_locks",
    metadata,
    Column("serial_key", String(160), primary_key=True),
    Column("job_id", ID, nullable=False),
    Column("lease_until", TS, nullable=False),
)

effects = Table(
    "effects",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("effect_key", String(200), primary_key=True),  # deterministic, see engine.effects
    Column("kind", String(32), nullable=False),
    Column("return_ref", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # started | done
    Column("remote_ref", String(80)),
    Column("detail", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

exceptions = Table(
    "exceptions",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("return_ref", String(64), nullable=False, server_default=""),
    Column("subject", String(120), nullable=False, server_default=""),
    Column("owner", String(16), nullable=False),
    Column("status", String(12), nullable=False),  # open | resolved
    Column("message", Text, nullable=False),
    Column("detail", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("resolved_at", TS),
    Index("ix_exceptions_open", "tenant", "status", "kind"),
)

findings = Table(
    "findings",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("return_ref", String(64), nullable=False, server_default=""),
    Column("line_id", String(80), nullable=False, server_default=""),
    Column("severity", String(12), nullable=False),
    Column("owner", String(16), nullable=False),
    Column("amount", MONEY),
    Column("currency", String(3)),
    Column("evidence", JSON, nullable=False),
    Column("suggested_action", Text, nullable=False, server_default=""),
    Column("status", String(12), nullable=False),  # open | closed
    Column("first_seen", TS, nullable=False),
    Column("last_seen", TS, nullable=False),
    Column("closed_at", TS),
    UniqueConstraint("tenant", "kind", "return_ref", "line_id", name="uq_findings_key"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("at", TS, nullable=False),
    Column("actor", String(64), nullable=False),  # a person's name, or system:<component>
    Column("action", String(64), nullable=False),
    Column("return_ref", String(64), nullable=False, server_default=""),
    Column("detail", JSON, nullable=False),
    Index("ix_audit_return", "tenant", "return_ref"),
)

stock_items = Table(
    "stock_items",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("stock_id", String(64), primary_key=True),
    Column("stock_code", String(64), nullable=False),
    Column("other_ref", String(64), nullable=False, server_default=""),
    Column("barcodes", JSON, nullable=False),
    Column("description", String(250), nullable=False, server_default=""),
    Column("updated_at", TS, nullable=False),
)

stock_levels = Table(
    "stock_levels",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("stock_id", String(64), primary_key=True),
    Column("site_id", Integer, primary_key=True),
    Column("stock_code", String(64), nullable=False),
    Column("available", Numeric(14, 3), nullable=False),
    Column("updated_at", TS, nullable=False),
    # The inbox id of the push that set it: an older push applied later (a dead job revived)
    # never overwrites a newer level (migration 0005).
    Column("source_push", ID),
)

sku_map = Table(
    "sku_map",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("sku", String(64), primary_key=True),  # trimmed, case-folded
    Column("stock_id", String(64), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
)

credit_notes = Table(
    "credit_notes",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("code", String(32), primary_key=True),
    Column("associated_ref", String(64), nullable=False),
    Column("net", MONEY, nullable=False),
    Column("tax", MONEY, nullable=False),
    Column("gross", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("lines", JSON, nullable=False),
    Column("observed_at", TS, nullable=False),
    Index("ix_credit_notes_assoc", "tenant", "associated_ref"),
)

staged_returns = Table(
    "staged_returns",
    metadata,
    Column("seq", ID, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("associated_ref", String(64), nullable=False),
    Column("return_ref", String(64), nullable=False),
    Column("document", JSON, nullable=False),  # the CustomerReturn exactly as KCC will read it
    Column("staged_at", TS, nullable=False),
    Column("pulled_at", TS),
    UniqueConstraint("tenant", "associated_ref", name="uq_staged_assoc"),
    # Returns KCC has never read: always offered, whatever the cursor (migration 0002).
    Index(
        "ix_staged_unpulled",
        "tenant",
        "seq",
        sqlite_where=text("pulled_at IS NULL"),
        postgresql_where=text("pulled_at IS NULL"),
    ),
)

cursors = Table(
    "cursors",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("updated_at", TS, nullable=False),
)
