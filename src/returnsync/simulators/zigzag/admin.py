"""The simulator's own admin API under `/_sim/` (not ZigZag's; never faulted).

- `GET  /_sim/state`: everything held (returns, orders, events, deliveries, faults ...).
- `GET  /_sim/webhooks`: delivery queue depths; `idle` once nothing is due now.
- `POST /_sim/faults`: patch request faults (`FaultSpec` keys) and webhook chaos
  (`duplicate`, `reorder`, `late`, `drop`); 400 on an unknown key.
- `POST /_sim/reset`: back to the state at construction.
- `POST /_sim/retailers`: a retailer and its API user.
- `POST /_sim/subscriptions`: a retailer's webhook URL and `X-ZigZag-Api-Key` value.
- `POST /_sim/orders`: the dispatched-order feed.
- `POST /_sim/returns`, `GET /_sim/returns/{id}`, and the lifecycle actions
  `POST /_sim/returns/{id}/approve|label|receive|inspect|cancel`.
- `POST /_sim/scenario`: generate returns and drive each to Processed.
- `POST /_sim/advance_clock`: move the simulated clock forward (runs a due retry sweep).
- `GET  /_sim/events/{eventId}`: one event's full envelope, as POSTed.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from returnsync.simulators.zigzag import scenario
from returnsync.simulators.zigzag.commands import NewInspection, NewReturnItem
from returnsync.simulators.zigzag.context import SimContext, context
from returnsync.simulators.zigzag.errors import FieldError, bad_request, not_found
from returnsync.simulators.zigzag.model import Customer, Order, OrderLine, iso
from returnsync.simulators.zigzag.schemas import (
    AdvanceClockIn,
    InspectIn,
    OrderIn,
    OrdersIn,
    ReceiveIn,
    RetailerIn,
    ReturnIn,
    ScenarioIn,
    SubscriptionIn,
    parse_body,
)
from returnsync.simulators.zigzag.webhooks import Subscription

router = APIRouter(prefix="/_sim")
Ctx = Annotated[SimContext, Depends(context)]


@router.get("/state")
def state(ctx: Ctx) -> dict[str, Any]:
    """A JSON snapshot of everything the simulator holds."""
    return ctx.snapshot()


@router.get("/webhooks")
def webhook_stats(ctx: Ctx) -> dict[str, Any]:
    """Delivery queue depths and event counts by state (a cheap way to wait for a drain)."""
    return ctx.webhooks.stats()


@router.post("/faults")
async def faults(request: Request, ctx: Ctx) -> dict[str, Any]:
    """Patch fault settings (flat keys of FaultSpec and WebhookFaults); answers them all."""
    try:
        values = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise bad_request("invalid JSON", [FieldError(field=None, message=str(exc))]) from exc
    if not isinstance(values, dict):
        raise bad_request("expected a JSON object of fault settings")
    try:
        return ctx.patch_faults(values)
    except (TypeError, ValueError) as exc:
        raise bad_request(str(exc), [FieldError(field=None, message=str(exc))]) from exc


@router.post("/reset")
def reset(ctx: Ctx) -> dict[str, Any]:
    """Forget all data, restore the configured faults, re-seed."""
    ctx.reset()
    return {"reset": True}


@router.post("/retailers", status_code=201)
async def add_retailer(request: Request, ctx: Ctx) -> dict[str, Any]:
    """Create a retailer and its API user (409 if either exists)."""
    body = await parse_body(request, RetailerIn)
    retailer = ctx.catalog.add_retailer(
        retailer_code=body.retailerCode,
        username=body.username,
        password=body.password,
        currency=body.currency,
    )
    return retailer.to_json()


@router.post("/subscriptions")
async def subscribe(request: Request, ctx: Ctx) -> dict[str, Any]:
    """Register (or replace) the retailer's webhook endpoint; 404 for an unknown retailer."""
    body = await parse_body(request, SubscriptionIn)
    ctx.catalog.retailer(body.retailerCode)
    subscription = Subscription(retailer_code=body.retailerCode, url=body.url, api_key=body.apiKey)
    ctx.webhooks.subscribe(subscription)
    return subscription.to_json()


@router.post("/orders")
async def add_orders(request: Request, ctx: Ctx) -> dict[str, Any]:
    """Register dispatched orders (identical re-sends are no-ops; 409 on conflicting content)."""
    body = await parse_body(request, OrdersIn)
    currency = ctx.catalog.retailer(body.retailerCode).currency
    _check_unique(body.orders)
    orders = [_order(body.retailerCode, currency, order) for order in body.orders]
    added = ctx.catalog.add_orders(body.retailerCode, orders)
    return {"added": added, "orders": len(ctx.catalog.orders(body.retailerCode))}


def _check_unique(orders: list[OrderIn]) -> None:
    errors: list[FieldError] = []
    seen: set[str] = set()
    for n, order in enumerate(orders):
        if order.orderNumber in seen:
            errors.append(FieldError(field=f"orders[{n}].orderNumber", message="duplicate"))
        seen.add(order.orderNumber)
        counts: dict[str, int] = defaultdict(int)
        for line in order.lines:
            counts[line.sku] += 1
        errors.extend(
            FieldError(field=f"orders[{n}].lines", message=f"sku {sku!r} on several lines")
            for sku, count in counts.items()
            if count > 1
        )
    if errors:
        raise bad_request("invalid orders", errors)


def _order(retailer_code: str, currency: str, order: OrderIn) -> Order:
    return Order(
        retailer_code=retailer_code,
        order_number=order.orderNumber,
        currency=order.currency or currency,
        customer=Customer(
            email=order.customer.email,
            first_name=order.customer.firstName,
            last_name=order.customer.lastName,
        ),
        dc_warehouse=order.dcWarehouse,
        lines=tuple(
            OrderLine(
                sku=line.sku,
                quantity=line.quantity,
                unit_price=line.unitPrice,
                dc_warehouse=line.dcWarehouse or order.dcWarehouse,
            )
            for line in order.lines
        ),
    )


@router.post("/returns", status_code=201)
async def create_return(request: Request, ctx: Ctx) -> dict[str, Any]:
    """Open a return (PendingApproval, event ReturnCreated); answers the Return."""
    body = await parse_body(request, ReturnIn)
    items = [
        NewReturnItem(
            sku=item.sku,
            quantity=item.quantity,
            return_reason_id=item.returnReasonId,
            return_reason=item.returnReason,
            return_option=item.returnOption,
        )
        for item in body.items
    ]
    return ctx.state.create_return(
        body.retailerCode, body.orderNumber, items, return_id=body.returnId
    )


@router.get("/returns/{return_id}")
def get_return(ctx: Ctx, return_id: str) -> dict[str, Any]:
    """One return by id, whatever the retailer."""
    return ctx.state.return_json(return_id)


@router.post("/returns/{return_id}/approve")
def approve(ctx: Ctx, return_id: str) -> dict[str, Any]:
    """PendingApproval -> Approved (ReturnApproved)."""
    return ctx.state.approve(return_id)


@router.post("/returns/{return_id}/label")
def label(ctx: Ctx, return_id: str) -> dict[str, Any]:
    """Approved -> LabelCreated (ReturnLabelCreated)."""
    return ctx.state.create_label(return_id)


@router.post("/returns/{return_id}/cancel")
def cancel(ctx: Ctx, return_id: str) -> dict[str, Any]:
    """A return not yet received -> Cancelled (ReturnCancelled)."""
    return ctx.state.cancel(return_id)


@router.post("/returns/{return_id}/receive")
async def receive(request: Request, ctx: Ctx, return_id: str) -> dict[str, Any]:
    """Set received quantities (items not named: 0; no `items`: all in full) -> Received."""
    body = await parse_body(request, ReceiveIn) if await request.body() else ReceiveIn()
    counts = (
        None
        if body.items is None
        else {item.returnItemId: item.receivedQuantity for item in body.items}
    )
    return ctx.state.receive(return_id, counts)


@router.post("/returns/{return_id}/inspect")
async def inspect(request: Request, ctx: Ctx, return_id: str) -> dict[str, Any]:
    """Add inspected unit groups; once every received unit is inspected -> Processed."""
    body = await parse_body(request, InspectIn)
    groups: dict[str, list[NewInspection]] = defaultdict(list)
    for item in body.items:
        groups[item.returnItemId].extend(
            NewInspection(
                quantity=group.quantity,
                condition=group.condition,
                disposition=group.disposition,
                notes=group.notes,
            )
            for group in item.inspections
        )
    return ctx.state.inspect(return_id, groups)


@router.post("/scenario")
async def run_scenario(request: Request, ctx: Ctx) -> dict[str, Any]:
    """Generate `count` returns over the retailer's orders, each driven to Processed."""
    body = await parse_body(request, ScenarioIn)
    mix = scenario.ScenarioMix.from_json(body.mix)
    rng = random.Random(body.seed) if body.seed is not None else ctx.scenario_rng
    return_ids = await run_in_threadpool(
        scenario.run, ctx.state, body.retailerCode, count=body.count, rng=rng, mix=mix
    )
    return {"returnIds": return_ids, "mix": mix.to_json()}


@router.post("/advance_clock")
async def advance_clock(request: Request, ctx: Ctx) -> dict[str, Any]:
    """Move the simulated clock forward by `seconds`; a retry sweep now due is queued at once."""
    body = await parse_body(request, AdvanceClockIn)
    ctx.clock.advance(timedelta(seconds=body.seconds))
    ctx.webhooks.tick()
    return {"now": iso(ctx.clock.now())}


@router.get("/events/{event_id}")
def event(ctx: Ctx, event_id: str) -> dict[str, Any]:
    """The full envelope of one event (with its `data` snapshot)."""
    envelope = ctx.webhooks.envelope(event_id)
    if envelope is None:
        raise not_found(f"event {event_id!r} not found")
    return envelope
