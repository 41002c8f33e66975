"""Replaying a quarantined inbound message once its cause is fixed (audited).

A message is quarantined when its content could not be used: a ZigZag webhook that did not
parse, a KCC push the database could not hold. Nothing was lost: the raw body is in the
inbox. After the cause is fixed (a new release, a configuration change) a person replays it:

- a ZigZag webhook is read again as if it had just arrived; if it now parses it is stored
  under its eventId and its return is synced (a duplicate of an event already stored is
  only marked processed); if not, it stays quarantined with the new reason;
- a KCC push goes back to `pending` and its processing job is queued again (it quarantines
  itself again if it still cannot be applied).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from returnsync.errors import ConfigError
from returnsync.services import intake
from returnsync.storage import audit, exceptions, inbox

if TYPE_CHECKING:
    from returnsync.services.context import Context

KCC_PREFIX = "kcc_"


@dataclass(frozen=True, slots=True)
class Replayed:
    """What replaying one message did."""

    message_id: int
    outcome: str  # requeued | stored | duplicate | still_quarantined
    detail: str


def replay_quarantined(ctx: Context, message_id: int, *, actor: str) -> Replayed:
    """Replay one quarantined message; ConfigError if there is no such quarantined message."""
    with ctx.db.read() as conn:
        message = inbox.get(conn, message_id)
    if message is None or message.status != "quarantined":
        raise ConfigError(f"no quarantined inbox message with id {message_id}")
    if message.source == "zigzag_webhook":
        result = _replay_webhook(ctx, message)
    elif message.source.startswith(KCC_PREFIX):
        result = _replay_push(ctx, message)
    else:
        raise ConfigError(f"inbox message {message_id} from {message.source!r} cannot be replayed")
    now = ctx.clock.now()
    with ctx.db.begin() as conn:
        audit.record(
            conn,
            tenant=message.tenant,
            actor=actor,
            action="inbox_replayed",
            now=now,
            detail={"inbox_id": message_id, "outcome": result.outcome, "detail": result.detail},
        )
        if result.outcome != "still_quarantined":
            exceptions.resolve(
                conn,
                tenant=message.tenant,
                kind="invalid_payload",
                subject=f"inbox:{message_id}",
                now=now,
            )
    return result


def _replay_webhook(ctx: Context, message: inbox.InboxMessage) -> Replayed:
    parsed = intake.parse_zigzag_webhook(ctx, message.tenant, message.payload.encode())
    now = ctx.clock.now()
    with ctx.db.begin() as conn:
        if isinstance(parsed, intake.Quarantine):
            inbox.mark(conn, message.id, status="quarantined", now=now, error=parsed.reason)
            return Replayed(message.id, "still_quarantined", parsed.reason)
        (receipt,) = intake.store_zigzag_many(ctx, conn, [parsed])
        if receipt.inbox_id is None:
            detail = f"event {parsed.envelope.eventId} was already stored"
            inbox.mark(conn, message.id, status="processed", now=now, error=detail)
            return Replayed(message.id, "duplicate", detail)
        detail = f"stored as inbox message {receipt.inbox_id}"
        inbox.mark(conn, message.id, status="processed", now=now, error=detail)
        return Replayed(message.id, "stored", detail)


def _replay_push(ctx: Context, message: inbox.InboxMessage) -> Replayed:
    kind = message.source.removeprefix(KCC_PREFIX)
    now = ctx.clock.now()
    with ctx.db.begin() as conn:
        inbox.mark(conn, message.id, status="pending", now=now)
        intake.enqueue_khaos_push(conn, message.tenant, kind, message.id, now=now)
    return Replayed(message.id, "requeued", f"{kind} push queued for processing again")
