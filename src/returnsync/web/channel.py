"""The KCC channel endpoints Khaos Control calls (HTTP Basic auth on every one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from returnsync.services import channel, intake
from returnsync.web.deps import context, khaos_tenant

router = APIRouter(prefix="/khaos/{tenant_id}", tags=["khaos channel"])

PUSH_KINDS = ("stock", "stock-status", "order-status")


@router.get("/config")
def endpoint_config(tenant_id: str, request: Request) -> JSONResponse:
    """The EndpointConfig document KCC caches daily."""
    khaos_tenant(request, tenant_id)
    return JSONResponse(channel.endpoint_config(context(request), tenant_id))


@router.get("/orders")
def sales_orders(tenant_id: str, request: Request) -> JSONResponse:
    """OrderDownload is required by KCC; returnsync sends no orders (empty import)."""
    khaos_tenant(request, tenant_id)
    return JSONResponse({"Orders": [], "ApiVersion": 1000})


@router.get("/returns")
def customer_returns(
    tenant_id: str,
    request: Request,
    sirion_continuation: Annotated[str | None, Header()] = None,
    specific_ids: Annotated[str | None, Header(alias="SpecificIDs")] = None,
) -> JSONResponse:
    """A page of CustomerReturnImport after the continuation (or the named AssociatedRefs)."""
    khaos_tenant(request, tenant_id)
    ids = [s.strip().strip('"') for s in specific_ids.split(",")] if specific_ids else None
    doc, cursor = channel.returns_page(context(request), tenant_id, sirion_continuation, ids)
    return JSONResponse(doc, headers={"Sirion-Continuation": cursor})


async def _push(tenant_id: str, kind: str, request: Request) -> JSONResponse:
    khaos_tenant(request, tenant_id)
    body = await request.body()
    receipt = await run_in_threadpool(
        intake.accept_khaos_push, context(request), tenant_id, kind, body
    )
    # KCC re-sends anything answered non-200; content we cannot read is kept, so say 200.
    return JSONResponse({"status": receipt.message}, status_code=200)


@router.post("/stock")
async def stock_upload(tenant_id: str, request: Request) -> JSONResponse:
    """StockItems push: the catalogue (StockID, StockCode, OtherRef, Barcodes)."""
    return await _push(tenant_id, "stock", request)


@router.post("/stock-status")
async def stock_status_upload(tenant_id: str, request: Request) -> JSONResponse:
    """StockStatuses push: Available per (StockID, SiteID), 0..100 per request."""
    return await _push(tenant_id, "stock-status", request)


@router.post("/order-status")
async def order_status_upload(tenant_id: str, request: Request) -> JSONResponse:
    """OrderStatuses push: credit notes arrive here (assumption K-9)."""
    return await _push(tenant_id, "order-status", request)
