"""Our side of the Khaos Control Cloud channel: what KCC pulls from us, and what it pushes.

Pulls: the EndpointConfig and `CustomerReturnImport` pages (continuation cursor, assumption
K-2; `SpecificIDs` re-serves named returns). Pushes (stored first by `intake`) are
processed here: the catalogue (which may unblock held returns), stock levels, and credit
notes (which move staged returns to CREDITED and wake their saga).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DataError

from returnsync.adapters.khaos import mapping as kcc
from returnsync.domain.money import Money
from returnsync.domain.states import ReturnState
from returnsync.services import intake, staging
from returnsync.services.context import serial_key
from returnsync.storage import audit, catalogue, exceptions, inbox, jobqueue, khaos, returns

if TYPE_CHECKING:
    from returnsync.services.context import Context
    from returnsync.storage.inbox import InboxMessage

# What a push's content can raise that retrying would never cure: quarantine it instead.
# InvalidPayloadError is a ValueError; OverflowError and DataError are values the database
# cannot hold (a SiteID beyond 64 bits, a string over its column, an amount over NUMERIC);
# RecursionError is nesting deeper than the parser goes.
UNREADABLE = (ValueError, KeyError, TypeError, OverflowError, RecursionError, DataError)

log = logging.getLogger(__name__)

CURSOR_PREFIX = "seq:"
MAX_SEQ = 2**63 - 1  # BIGINT on both databases
# Pending pushes a push job reads at a time; it applies at most this many past its own.
PUSH_BATCH = 100


def endpoint_config(ctx: Context, tenant_id: str) -> dict[str, Any]:
    """The EndpointConfig KCC caches daily (assumption K-1)."""
    tenant = ctx.tenant(tenant_id)
    return kcc.endpoint_config(
        ctx.settings.public_url, tenant_id, tenant.khaos.pull_frequency_minutes
    )


def returns_page(
    ctx: Context, tenant_id: str, continuation: str | None, specific_ids: list[str] | None
) -> tuple[dict[str, Any], str]:
    """One `CustomerReturnImport` page and the continuation to send back with it."""
    tenant = ctx.tenant(tenant_id)
    now = ctx.clock.now()
    with ctx.db.begin() as conn:
        if specific_ids:
            docs = khaos.by_refs(conn, tenant_id, specific_ids)
            return kcc.import_document(docs), continuation or ""
        after = _cursor_seq(conn, tenant_id, continuation)
        page = khaos.page_after(conn, tenant_id, after, tenant.khaos.page_size)
        khaos.mark_pulled(conn, tenant_id, [seq for seq, _ in page], now)
    last = max([after, *(seq for seq, _ in page)])  # never back: late ones sit below it
    return kcc.import_document([doc for _, doc in page]), f"{CURSOR_PREFIX}{last}"


def _cursor_seq(conn: Any, tenant_id: str, continuation: str | None) -> int:
    """The seq to page after; anything unreadable or out of range reads from the start.

    Reading from the start is safe: KCC dedupes on AssociatedRef.
    """
    value = (continuation or "").strip().strip('"')
    if value.startswith(CURSOR_PREFIX):
        try:
            seq = int(value.removeprefix(CURSOR_PREFIX))
        except ValueError:
            return 0
        return seq if 0 <= seq <= MAX_SEQ else 0
    if not value:
        return 0
    try:  # first contact: "2019-12-31 12:00:00Z"
        since = datetime.fromisoformat(value)
        since = (since if since.tzinfo else since.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        return 0
    return khaos.first_seq_after(conn, tenant_id, since)


def process_push(ctx: Context, tenant_id: str, inbox_id: int, kind: str) -> None:
    """Apply stored KCC pushes of one kind for a tenant, oldest first, in one transaction.

    The job of push `inbox_id` applies every pending push of its tenant and kind up to it and
    up to `PUSH_BATCH` - 1 after it: stock levels are absolute, so an older push (its job
    backing off) must not land after a newer one, and a burst of pushes is applied by the
    first job that runs instead of one job at a time (the later jobs find their push done).
    Bad content is quarantined and the rest goes on. Any other failure of this job's own push
    rolls the batch back and the job is retried; of another push, only that push is rolled
    back and left to its own job (so one broken push never holds back the others, credit
    notes above all).
    """
    now = ctx.clock.now()
    source = f"kcc_{kind}"
    with ctx.db.begin() as conn:
        message = inbox.get(conn, inbox_id)
        if message is None or message.status != "pending":
            return  # applied by an earlier job of the batch, or quarantined
        after = 0
        while True:
            batch = inbox.pending(
                conn, tenant=tenant_id, source=source, after=after, limit=PUSH_BATCH
            )
            for pending in batch:
                if pending.id == inbox_id:
                    _apply_message(ctx, conn, tenant_id, kind, pending, now=now)
                    continue
                try:
                    _apply_message(ctx, conn, tenant_id, kind, pending, now=now)
                except Exception as exc:  # its own job retries it and reports it
                    log.warning("khaos %s push %s left to its own job: %r", kind, pending.id, exc)
            if len(batch) < PUSH_BATCH or batch[-1].id >= inbox_id:
                return
            after = batch[-1].id


def _apply_message(
    ctx: Context, conn: Any, tenant_id: str, kind: str, message: InboxMessage, *, now: datetime
) -> None:
    """Apply one push; bad content quarantines it (with an exception for integration)."""
    try:
        with conn.begin_nested():  # a write the database refuses must not end the txn
            _apply_push(ctx, conn, tenant_id, kind, message.payload, now=now, push_id=message.id)
        inbox.mark(conn, message.id, status="processed", now=now)
    except UNREADABLE as exc:
        intake.hold_unreadable(
            conn,
            tenant=tenant_id,
            message_id=message.id,
            what=f"Khaos {kind} push",
            reason=str(exc),
            now=now,
        )


def _apply_push(
    ctx: Context,
    conn: Any,
    tenant_id: str,
    kind: str,
    payload: str,
    *,
    now: datetime,
    push_id: int,
) -> None:
    doc = json.loads(payload)
    if kind == "stock":
        _apply_stock_items(ctx, conn, tenant_id, doc)
    elif kind == "stock-status":
        for level in kcc.stock_levels(doc):
            if level.available is not None:
                catalogue.save_level(
                    conn,
                    tenant=tenant_id,
                    stock_id=level.stock_id,
                    site_id=level.site_id,
                    stock_code=level.stock_code,
                    available=level.available,
                    now=now,
                    push_id=push_id,
                )
    elif kind == "order-status":
        for note in kcc.credit_notes(doc):
            _observe_credit_note(ctx, conn, tenant_id, note)


def _apply_stock_items(ctx: Context, conn: Any, tenant_id: str, doc: dict[str, Any]) -> None:
    items, deleted = kcc.stock_items(doc)
    now = ctx.clock.now()
    renamed = catalogue.renames(conn, tenant_id, items)
    catalogue.save_items(conn, tenant_id, items, now)
    catalogue.delete_items(conn, tenant_id, deleted)
    if renamed:
        _restage_renamed(conn, tenant_id, renamed, now)
    # Only a catalogue change can unblock an unmatched SKU; skip the replay scan when none is
    # open (it reads the whole catalogue, which made bulk catalogue pushes quadratic).
    if exceptions.open_for(conn, tenant_id, "sku_unmatched"):
        staging.replay_held(ctx, conn, tenant_id, actor="system:catalogue")


def _restage_renamed(conn: Any, tenant_id: str, renamed: dict[str, str], now: datetime) -> None:
    """A Khaos operator renamed stock codes: returns staged with an old code are re-offered."""
    for ref in khaos.restage_renamed(conn, tenant_id, renamed):
        audit.record(
            conn,
            tenant=tenant_id,
            actor="system:catalogue",
            action="restaged_after_rename",
            return_ref=ref,
            now=now,
            detail={"renamed": renamed},
        )


def _observe_credit_note(ctx: Context, conn: Any, tenant_id: str, note: kcc.CreditNoteSeen) -> None:
    now = ctx.clock.now()
    tenant = ctx.tenant(tenant_id)
    khaos.save_credit_note(
        conn,
        tenant=tenant_id,
        code=note.code,
        associated_ref=note.associated_ref,
        net=note.net,
        tax=note.tax,
        gross=note.gross,
        currency=note.currency,
        lines=note.lines,
        now=now,
    )
    return_ref = returns.by_associated_ref(conn, tenant_id, note.associated_ref)
    if return_ref is None:
        exceptions.raise_open(
            conn,
            tenant=tenant_id,
            kind="credit_note_without_return",
            owner="finance",
            subject=note.code,
            message=f"credit note {note.code} ({note.associated_ref!r}) matches no return",
            detail={"credit_note": note.code, "gross": str(note.gross)},
            now=now,
        )
        return
    ret = returns.get(conn, tenant_id, return_ref)
    row = returns.row(conn, tenant_id, return_ref) or {}
    if ret is None:
        return
    if row.get("credit_note") and row["credit_note"] != note.code:
        exceptions.raise_open(
            conn,
            tenant=tenant_id,
            kind="duplicate_credit_note",
            owner="finance",
            return_ref=return_ref,
            subject=note.code,
            message=f"second credit note {note.code} for return {return_ref} "
            f"(first: {row['credit_note']}); no second refund will be paid",
            detail={"credit_notes": [row["credit_note"], note.code]},
            now=now,
        )
        return
    expected = ret.expected_refund
    credited = Money(note.gross, note.currency)
    gap = abs(expected.amount - credited.amount)
    tolerance = Decimal(tenant.refund_tolerance) * max(1, len(ret.creditable_lines))
    if gap > tolerance:
        exceptions.raise_open(
            conn,
            tenant=tenant_id,
            kind="amount_mismatch",
            owner="finance",
            return_ref=return_ref,
            subject=note.code,
            message=f"credit note {note.code} is {credited}, ZigZag expects {expected}",
            detail={"credit_note": str(credited.amount), "zigzag": str(expected.amount)},
            now=now,
        )
    audit.record(
        conn,
        tenant=tenant_id,
        actor="khaos",
        action="credit_note_observed",
        return_ref=return_ref,
        now=now,
        detail={"credit_note": note.code, "gross": str(note.gross), "gap": str(gap)},
    )
    if ret.state is ReturnState.STAGED:
        returns.set_state(
            conn,
            tenant_id,
            return_ref,
            ret.moved_to(ReturnState.CREDITED).state,
            now,
            credit_note=note.code,
        )
        jobqueue.enqueue(
            conn,
            tenant=tenant_id,
            kind="advance",
            serial_key=serial_key(tenant_id, return_ref),
            dedupe_key=f"advance:{tenant_id}:{return_ref}",
            payload={"return_ref": return_ref},
            now=now,
        )
