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
from typing import TYPE_CHECKING

from returnsync.adapters.errors import InvalidPayloadError
from returnsync.adapters.zigzag import mapping as zz_mapping
from returnsync.adapters.zigzag import webhooks as zz_webhooks
from returnsync.services.context import serial_key
from returnsync.storage import audit, exceptions, inbox, jobqueue

if TYPE_CHECKING:
    from collections.abc import Mapping

    from returnsync.services.context import Context

MAX_BODY_BYTES = 1_000_000  # a ZigZag return snapshot is a few KB; 1 MB is generous


@dataclass(frozen=True, slots=True)
class Receipt:
    """What to answer the sender."""

    status: int
    message: str
    inbox_id: int | None = None


def accept_zigzag_webhook(
    ctx: Context, tenant_id: str, headers: Mapping[str, str], body: bytes
) -> Receipt:
    """Authenticate, store raw, dedupe on eventId, enqueue the sync of the return; then ack."""
    tenant = ctx.tenants.get(tenant_id)
    if tenant is None:
        return Receipt(404, "unknown tenant")
    if not zz_webhooks.verify_api_key(headers, tenant.zigzag.webhook_key.get_secret_value()):
        return Receipt(401, "missing or wrong X-ZigZag-Api-Key")
    now = ctx.clock.now()
    text = body[:MAX_BODY_BYTES].decode("utf-8", errors="replace")
    if len(body) > MAX_BODY_BYTES:
        too_big = f"body of {len(body)} bytes is over {MAX_BODY_BYTES}"
        return _quarantine(ctx, tenant_id, "zigzag_webhook", text, too_big)
    try:
        envelope = zz_mapping.parse_envelope(body)
    except InvalidPayloadError as exc:
        return _quarantine(ctx, tenant_id, "zigzag_webhook", text, str(exc))
    with ctx.db.begin() as conn:
        if envelope.retailerCode != tenant.zigzag.retailer_code:
            return _quarantine(
                ctx,
                tenant_id,
                "zigzag_webhook",
                text,
                f"retailerCode {envelope.retailerCode!r} is not this tenant's",
            )
        message_id = inbox.store(
            conn,
            tenant=tenant_id,
            source="zigzag_webhook",
            dedupe_key=envelope.eventId,
            payload=text,
            now=now,
        )
        if message_id is None:
            return Receipt(200, "duplicate delivery, already stored")
        audit.record(
            conn,
            tenant=tenant_id,
            actor="zigzag",
            action=f"webhook:{envelope.eventType}",
            return_ref=envelope.returnId,
            now=now,
            detail={"event_id": envelope.eventId, "occurred_at": str(envelope.occurredAt)},
        )
        jobqueue.enqueue(
            conn,
            tenant=tenant_id,
            kind="sync_return",
            serial_key=serial_key(tenant_id, envelope.returnId),
            payload={"return_ref": envelope.returnId, "trigger": "webhook", "inbox_id": message_id},
            now=now,
        )
    return Receipt(200, "stored", message_id)


def accept_khaos_push(ctx: Context, tenant_id: str, kind: str, body: bytes) -> Receipt:
    """Store a KCC push (StockItems, StockStatuses, OrderStatuses) and enqueue its processing.

    The caller has checked Basic auth. Pushes carry no id and may legitimately repeat the same
    content later (a level going 5 -> 6 -> 5), so each is stored; processing is idempotent.
    """
    now = ctx.clock.now()
    text = body[:MAX_BODY_BYTES].decode("utf-8", errors="replace")
    source = f"kcc_{kind}"
    if len(body) > MAX_BODY_BYTES:
        too_big = f"body of {len(body)} bytes is over {MAX_BODY_BYTES}"
        return _quarantine(ctx, tenant_id, source, text, too_big)
    try:
        json.loads(body)
    except ValueError as exc:
        return _quarantine(ctx, tenant_id, source, text, f"not JSON: {exc}")
    with ctx.db.begin() as conn:
        message_id = inbox.store(
            conn,
            tenant=tenant_id,
            source=source,
            dedupe_key=f"{now.isoformat()}:{uuid.uuid4().hex}",
            payload=text,
            now=now,
        )
        jobqueue.enqueue(
            conn,
            tenant=tenant_id,
            kind="khaos_push",
            serial_key=f"khaos:{tenant_id}:{kind}",
            payload={"inbox_id": message_id, "kind": kind},
            now=now,
        )
    return Receipt(200, "stored", message_id)


def _quarantine(ctx: Context, tenant_id: str, source: str, text: str, reason: str) -> Receipt:
    """Keep bad content (so nothing is lost) and open an exception; answer 202 so no retry storm."""
    now = ctx.clock.now()
    digest = hashlib.sha256(text.encode()).hexdigest()
    with ctx.db.begin() as conn:
        message_id = inbox.store(
            conn, tenant=tenant_id, source=source, dedupe_key=f"bad:{digest}", payload=text, now=now
        )
        if message_id is None:
            return Receipt(202, "already quarantined")
        inbox.mark(conn, message_id, status="quarantined", now=now, error=reason)
        exceptions.raise_open(
            conn,
            tenant=tenant_id,
            kind="invalid_payload",
            owner="integration",
            message=f"{source} message {message_id} could not be read: {reason}",
            subject=f"inbox:{message_id}",
            detail={"inbox_id": message_id, "source": source},
            now=now,
        )
    return Receipt(202, f"stored and quarantined: {reason}", message_id)
