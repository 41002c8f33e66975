"""Accept-persist-ack: inbound messages are stored (with the jobs they cause) before any 2xx.

ZigZag re-sends failed deliveries daily for a week (even 400s) and Khaos re-sends any push
answered non-200, so content we cannot use is stored and quarantined as an exception, not
refused. Only an unauthenticated request is refused (401), and then nothing is stored.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from returnsync.adapters.zigzag import mapping as zz_mapping
from returnsync.adapters.zigzag import webhooks as zz_webhooks
from returnsync.services.context import serial_key
from returnsync.storage import audit, exceptions, inbox, jobbatch, jobqueue, returns, tables

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from sqlalchemy.engine import Connection

    from returnsync.adapters.zigzag import schemas as zz_schemas
    from returnsync.services.context import Context

MAX_BODY_BYTES = 1_000_000  # a ZigZag return snapshot is a few KB; 1 MB is generous
TOO_DEEP = "JSON nested too deeply to parse"
MAX_PUSH_DEPTH = 64  # a KCC push nests about 5 levels


def _length(column: Any) -> int:
    return int(column.type.length)


# Envelope ids land in columns of bounded length (PostgreSQL enforces them): eventId is the
# inbox dedupe key, eventType part of the audit action, returnId the return's key.
_ID_LIMITS = {
    "eventId": _length(tables.inbox.c.dedupe_key),
    "eventType": _length(tables.audit_log.c.action) - len("webhook:"),
    "returnId": _length(tables.returns.c.return_ref),
}


@dataclass(frozen=True, slots=True)
class Receipt:
    """What to answer the sender."""

    status: int
    message: str
    inbox_id: int | None = None


@dataclass(frozen=True, slots=True)
class ZigZagEvent:
    """An authenticated webhook whose envelope parsed and belongs to the tenant: to be stored."""

    tenant: str
    envelope: zz_schemas.WebhookEnvelope
    text: str  # the body as the inbox keeps it
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Quarantine:
    """An authenticated message whose content we cannot use: to be stored and quarantined."""

    tenant: str
    source: str
    text: str
    reason: str


def accept_zigzag_webhook(
    ctx: Context, tenant_id: str, headers: Mapping[str, str], body: bytes
) -> Receipt:
    """Authenticate, store raw, dedupe on eventId, enqueue the sync of the return; then ack.

    One message, one transaction: the behaviour `accept_zigzag_many` (group commit) matches.
    """
    prepared = prepare_zigzag_webhook(ctx, tenant_id, headers, body)
    if isinstance(prepared, Receipt):
        return prepared
    if isinstance(prepared, Quarantine):
        return quarantine(ctx, prepared)
    return store_zigzag_event(ctx, prepared)


def prepare_zigzag_webhook(
    ctx: Context, tenant_id: str, headers: Mapping[str, str], body: bytes
) -> Receipt | Quarantine | ZigZagEvent:
    """Everything before the database: authenticate and parse (no I/O).

    A Receipt is the answer to a refused request (nothing to store); a Quarantine is bad
    content from an authenticated sender; a ZigZagEvent is ready for `store_zigzag_event`
    or `accept_zigzag_many`.
    """
    tenant = ctx.tenants.get(tenant_id)
    if tenant is None:
        return Receipt(404, "unknown tenant")
    if not zz_webhooks.verify_api_key(headers, tenant.zigzag.webhook_key.get_secret_value()):
        return Receipt(401, "missing or wrong X-ZigZag-Api-Key")
    return parse_zigzag_webhook(ctx, tenant_id, body)


def parse_zigzag_webhook(ctx: Context, tenant_id: str, body: bytes) -> Quarantine | ZigZagEvent:
    """Read an authenticated webhook body: an event to store, or content to quarantine.

    Also used to replay a quarantined message once the cause is fixed.
    """
    tenant = ctx.tenant(tenant_id)
    now = ctx.clock.now()
    text = _stored_text(body)
    problem = _unreadable(body)
    if problem is not None:
        return Quarantine(tenant_id, "zigzag_webhook", text, problem)
    try:
        envelope = zz_mapping.parse_envelope(body)
    except (ValueError, OverflowError) as exc:
        # InvalidPayloadError is a ValueError; json.loads raises a bare ValueError for an integer
        # of over 4300 digits, and a zoned time at the edge of datetime's range overflows in UTC.
        return Quarantine(tenant_id, "zigzag_webhook", text, str(exc))
    except RecursionError:
        return Quarantine(tenant_id, "zigzag_webhook", text, TOO_DEEP)
    problem = _unstorable_ids(envelope)
    if envelope.retailerCode != tenant.zigzag.retailer_code:
        problem = f"retailerCode {envelope.retailerCode!r} is not this tenant's"
    if problem is not None:
        return Quarantine(tenant_id, "zigzag_webhook", text, problem)
    return ZigZagEvent(tenant_id, envelope, text, now)


DUPLICATE = Receipt(200, "duplicate delivery, already stored")


def store_zigzag_event(ctx: Context, event: ZigZagEvent) -> Receipt:
    """Store one event in its own transaction: inbox row, audit entry, `sync_return` job."""
    with ctx.db.begin() as conn:
        (receipt,) = store_zigzag_many(ctx, conn, [event])
    return receipt


def accept_zigzag_many(ctx: Context, events: Sequence[ZigZagEvent]) -> list[Receipt]:
    """Store events in ONE transaction with multi-row inserts (group commit); their receipts.

    The rows and receipts are those of `store_zigzag_event` called for each event in order:
    an eventId already stored, or earlier in `events`, is a duplicate (no audit, no job).
    Raises when the transaction fails; then nothing of the batch is stored.
    """
    if not events:
        return []
    with ctx.db.begin() as conn:
        return store_zigzag_many(ctx, conn, events)


def store_zigzag_many(
    ctx: Context, conn: Connection, events: Sequence[ZigZagEvent]
) -> list[Receipt]:
    """`accept_zigzag_many` inside the caller's transaction (which must commit before any
    receipt is answered).

    The sync of a return already past ZigZag's part (`returns.past_zigzag`) is queued to run
    `settled_sync_delay_seconds` later: it only records what ZigZag says, so live returns go
    first, and the events of a burst (ZigZag echoing our own updates) fold into one fetch.
    """
    ids = inbox.store_many(
        conn,
        [
            inbox.NewMessage(
                tenant=e.tenant,
                source="zigzag_webhook",
                dedupe_key=e.envelope.eventId,
                payload=e.text,
                received_at=e.received_at,
            )
            for e in events
        ],
    )
    stored = [(e, i) for e, i in zip(events, ids, strict=True) if i is not None]
    if stored:
        audit.record_many(conn, [_audit_entry(e) for e, _ in stored])
        delay = timedelta(seconds=ctx.settings.settled_sync_delay_seconds)
        settled = _past_zigzag(conn, [e for e, _ in stored]) if delay else set()
        jobbatch.enqueue_many(
            conn,
            [
                _sync_job(e, i, wait=delay if (e.tenant, e.envelope.returnId) in settled else None)
                for e, i in stored
            ],
        )
    return [DUPLICATE if i is None else Receipt(200, "stored", i) for i in ids]


def _audit_entry(event: ZigZagEvent) -> audit.Entry:
    envelope = event.envelope
    return audit.Entry(
        tenant=event.tenant,
        actor="zigzag",
        action=f"webhook:{envelope.eventType}",
        return_ref=envelope.returnId,
        now=event.received_at,
        detail={"event_id": envelope.eventId, "occurred_at": str(envelope.occurredAt)},
    )


def _past_zigzag(conn: Connection, events: Sequence[ZigZagEvent]) -> set[tuple[str, str]]:
    """(tenant, return_ref) of the events' returns past ZigZag's part: one query a tenant."""
    refs: dict[str, set[str]] = {}
    for event in events:
        refs.setdefault(event.tenant, set()).add(event.envelope.returnId)
    return {
        (tenant, ref)
        for tenant, its_refs in refs.items()
        for ref in returns.past_zigzag(conn, tenant, its_refs)
    }


def _sync_job(event: ZigZagEvent, message_id: int, *, wait: timedelta | None) -> jobbatch.NewJob:
    return jobbatch.NewJob(
        tenant=event.tenant,
        kind="sync_return",
        serial_key=serial_key(event.tenant, event.envelope.returnId),
        payload={
            "return_ref": event.envelope.returnId,
            "trigger": "webhook",
            "inbox_id": message_id,
        },
        now=event.received_at,
        run_after=None if wait is None else event.received_at + wait,
    )


def accept_khaos_push(ctx: Context, tenant_id: str, kind: str, body: bytes) -> Receipt:
    """Store a KCC push (StockItems, StockStatuses, OrderStatuses) and enqueue its processing.

    The caller has checked Basic auth. Pushes carry no id and may legitimately repeat the same
    content later (a level going 5 -> 6 -> 5), so each is stored; processing is idempotent.
    """
    now = ctx.clock.now()
    text = _stored_text(body)
    source = f"kcc_{kind}"
    problem = _unreadable(body)
    if problem is not None:
        return quarantine(ctx, Quarantine(tenant_id, source, text, problem))
    try:
        document = json.loads(body.decode("utf-8"))  # what the worker will parse: the stored text
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return quarantine(ctx, Quarantine(tenant_id, source, text, f"not JSON: {exc}"))
    except RecursionError:
        return quarantine(ctx, Quarantine(tenant_id, source, text, TOO_DEEP))
    if _depth(document) > MAX_PUSH_DEPTH:
        # Parsing near the recursion limit succeeds or not with the caller's stack depth: keep
        # far from it, so that what is stored here is what the worker can parse.
        reason = f"nested over {MAX_PUSH_DEPTH} levels"
        return quarantine(ctx, Quarantine(tenant_id, source, text, reason))
    with ctx.db.begin() as conn:
        message_id = inbox.store(
            conn,
            tenant=tenant_id,
            source=source,
            dedupe_key=f"{now.isoformat()}:{uuid.uuid4().hex}",
            payload=text,
            now=now,
        )
        assert message_id is not None  # noqa: S101 - the key is fresh: never a duplicate
        enqueue_khaos_push(conn, tenant_id, kind, message_id, now=now)
    return Receipt(200, "stored", message_id)


def enqueue_khaos_push(
    conn: Connection, tenant_id: str, kind: str, message_id: int, *, now: datetime
) -> None:
    """Queue the processing of a stored KCC push (one kind of push at a time per tenant)."""
    jobqueue.enqueue(
        conn,
        tenant=tenant_id,
        kind="khaos_push",
        serial_key=f"khaos:{tenant_id}:{kind}",
        payload={"inbox_id": message_id, "kind": kind},
        now=now,
    )


def _stored_text(body: bytes) -> str:
    """The body as the inbox keeps it: UTF-8 text of at most MAX_BODY_BYTES, bytes that are not
    UTF-8 and NULs (which PostgreSQL text cannot hold) as U+FFFD. Exact for any readable body."""
    return body[:MAX_BODY_BYTES].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _depth(document: Any) -> int:
    """How deeply a parsed JSON document nests (a scalar is 1), without recursion."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return deepest


def _unreadable(body: bytes) -> str | None:
    """Why the body cannot be a message we accept, before parsing it; None if it may be."""
    if len(body) > MAX_BODY_BYTES:
        return f"body of {len(body)} bytes is over {MAX_BODY_BYTES}"
    if b"\x00" in body:  # never in UTF-8 JSON; json.loads would read UTF-16/32 bodies
        return "a NUL byte: not UTF-8 JSON"
    return None


def _unstorable_ids(envelope: zz_schemas.WebhookEnvelope) -> str | None:
    """Why the envelope's ids cannot be stored as they are (too long, or a NUL); else None."""
    for name, limit in _ID_LIMITS.items():
        value = getattr(envelope, name)
        if len(value) > limit:
            return f"{name}: longer than {limit} characters"
        if "\x00" in value:
            return f"{name}: contains a NUL character"
    return None


def quarantine(ctx: Context, bad: Quarantine) -> Receipt:
    """Keep bad content (so nothing is lost) and open an exception; answer 202 so no retry storm."""
    tenant_id, source, text, reason = bad.tenant, bad.source, bad.text, bad.reason
    now = ctx.clock.now()
    digest = hashlib.sha256(text.encode()).hexdigest()
    with ctx.db.begin() as conn:
        message_id = inbox.store(
            conn, tenant=tenant_id, source=source, dedupe_key=f"bad:{digest}", payload=text, now=now
        )
        if message_id is None:
            return Receipt(202, "already quarantined")
        hold_unreadable(
            conn,
            tenant=tenant_id,
            message_id=message_id,
            what=f"{source} message",
            reason=reason,
            now=now,
            detail={"source": source},
        )
    return Receipt(202, f"stored and quarantined: {reason}", message_id)


def hold_unreadable(
    conn: Connection,
    *,
    tenant: str,
    message_id: int,
    what: str,
    reason: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Mark a stored message quarantined and open its `invalid_payload` exception
    (integration's; a replay resolves it once the content can be read)."""
    inbox.mark(conn, message_id, status="quarantined", now=now, error=reason[:2000])
    exceptions.raise_open(
        conn,
        tenant=tenant,
        kind="invalid_payload",
        owner="integration",
        message=f"{what} {message_id} could not be read: {reason[:500]}",
        subject=f"inbox:{message_id}",
        detail={"inbox_id": message_id, **(detail or {})},
        now=now,
    )
