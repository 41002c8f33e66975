"""POST /webhooks/zigzag/{tenant}: authenticate, store raw, dedupe, acknowledge. Nothing else."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from returnsync.services import intake
from returnsync.web.deps import context

router = APIRouter(tags=["webhooks"])


@router.post("/webhooks/zigzag/{tenant_id}")
async def zigzag_webhook(tenant_id: str, request: Request) -> JSONResponse:
    """Store a ZigZag event durably before answering 2xx; bad content is quarantined (202).

    401 for a missing or wrong key and for an unknown tenant (nothing is stored).
    """
    body = await request.body()
    receipt = await run_in_threadpool(
        intake.accept_zigzag_webhook, context(request), tenant_id, dict(request.headers), body
    )
    status = 401 if receipt.status == 404 else receipt.status
    return JSONResponse(
        {"status": receipt.message, "inbox_id": receipt.inbox_id}, status_code=status
    )
