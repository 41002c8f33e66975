"""Job kind -> use case. The only place that knows the job payload shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from returnsync.services import alerts, channel, saga, sync

if TYPE_CHECKING:
    from returnsync.services.context import Context
    from returnsync.storage.jobqueue import Job


def _sync_return(ctx: Context, job: Job) -> None:
    sync.sync_job(ctx, job)


def _advance(ctx: Context, job: Job) -> None:
    saga.advance(ctx, job.tenant, job.payload["return_ref"])


def _khaos_push(ctx: Context, job: Job) -> None:
    channel.process_push(ctx, job.tenant, int(job.payload["inbox_id"]), job.payload["kind"])


HANDLERS: dict[str, Any] = {
    "sync_return": _sync_return,
    "advance": _advance,
    "khaos_push": _khaos_push,
    alerts.KIND: alerts.send,
}
