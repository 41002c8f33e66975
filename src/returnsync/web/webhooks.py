"""POST /webhooks/zigzag/{tenant}: authenticate, store raw, dedupe, acknowledge. Nothing else."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from returnsync.services import intake
from returnsync.services.groupcommit import NOT_STORED, GroupCommitter
from returnsync.web.deps import context

if TYPE_CHECKING:
    from returnsync.services.context import Context

router = APIRouter(tags=["webhooks"])
log = logging.getLogger(__name__)

INLINE_PARSE_BYTES = 64 * 1024
"""Bodies up to this size are parsed on the event loop (a return snapshot is a few KB); a
larger one is parsed in the thread pool so that it never holds up the other requests."""


@router.post("/webhooks/zigzag/{tenant_id}")
async def zigzag_webhook(tenant_id: str, request: Request) -> JSONResponse:
    """Store a ZigZag event durably before answering 2xx; bad content is quarantined (202).

    401 for a missing or wrong key and for an unknown tenant (nothing is stored). A valid
    event is stored by the group committer: the 200 is sent once the transaction holding it
    has committed. 503 (ZigZag retries) when it could not be stored.
    """
    body = await request.body()
    ctx = context(request)
    headers = dict(request.headers)  # as before: a repeated header's last value counts
    if len(body) <= INLINE_PARSE_BYTES:
        prepared = intake.prepare_zigzag_webhook(ctx, tenant_id, headers, body)
    else:
        prepared = await run_in_threadpool(
            intake.prepare_zigzag_webhook, ctx, tenant_id, headers, body
        )
    if isinstance(prepared, intake.Receipt):
        receipt = prepared
    elif isinstance(prepared, intake.Quarantine):
        receipt = await run_in_threadpool(_quarantine, ctx, prepared)
    else:
        committer: GroupCommitter = request.app.state.group_committer
        receipt = await committer.store(prepared)
    status = 401 if receipt.status == 404 else receipt.status
    return JSONResponse(
        {"status": receipt.message, "inbox_id": receipt.inbox_id}, status_code=status
    )


def _quarantine(ctx: Context, bad: intake.Quarantine) -> intake.Receipt:
    try:
        return intake.quarantine(ctx, bad)
    except Exception:
        log.warning(
            "quarantined %s message for %s not stored (503)", bad.source, bad.tenant, exc_info=True
        )
        return NOT_STORED
