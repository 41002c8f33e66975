"""ZigZag's vendor API as the simulator serves it (docs/assumptions.md Z-1..Z-6).

- `POST /token`: JSON `{username, password}` -> `{"token", "expiresIn"}`; 401 on bad credentials.
- `GET /Return/api/v1/Returns`: list, paged, filtered on `updatedAt >= updatedFrom` (Z-3).
- `GET /Return/api/v1/Returns/{returnId}`: one return (Z-4).
- `PUT /Return/api/v1/Returns/{returnId}/Refund`: record the refund outcome (Z-5).
- `PUT /Return/api/v1/ExchangeStocks/Update` and `PUT /Return/api/v1/NonReturnableProducts`:
  the two published PUTs; invalid items are skipped and reported, the rest applied.

Every `/Return/api/v1/` route needs `Authorization: Bearer <token>` (401 when
missing, invalid or expired on the simulated clock) and answers 403 when the
`retailerCode` asked for is not the one the API user is bound to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from returnsync.simulators.zigzag.auth import Claims, unauthorized
from returnsync.simulators.zigzag.commands import RefundOutcome, StockRow
from returnsync.simulators.zigzag.context import SimContext, context
from returnsync.simulators.zigzag.errors import FieldError, ZigZagError, bad_request
from returnsync.simulators.zigzag.schemas import (
    MAX_NON_RETURNABLE_PER_CALL,
    ExchangeStock,
    ExchangeStocksRequest,
    NonReturnableProduct,
    NonReturnableRequest,
    RefundRequest,
    TokenRequest,
    parse_body,
    validate,
)

API_PREFIX = "/Return/api/v1"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500

router = APIRouter()
Ctx = Annotated[SimContext, Depends(context)]


def caller(request: Request, ctx: Ctx) -> Claims:
    """The API user behind the bearer token; 401 when there is no valid token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("missing bearer token")
    claims = ctx.tokens.verify(token.strip())
    if ctx.catalog.retailer_of(claims.username) != claims.retailer_code:
        raise unauthorized("unknown user")
    return claims


Caller = Annotated[Claims, Depends(caller)]


@router.post("/token")
async def issue_token(request: Request, ctx: Ctx) -> dict[str, Any]:
    """Z-2: a JWT for valid API credentials; 401 otherwise."""
    body = await parse_body(request, TokenRequest)
    retailer_code = ctx.catalog.authenticate(body.username, body.password)
    if retailer_code is None:
        raise unauthorized("invalid username or password")
    token = ctx.tokens.issue(username=body.username, retailer_code=retailer_code)
    return {"token": token, "expiresIn": ctx.tokens.ttl_seconds}


@router.get(f"{API_PREFIX}/Returns")
def list_returns(
    *,
    ctx: Ctx,
    claims: Caller,
    retailerCode: Annotated[str, Query(min_length=1)],
    updatedFrom: str | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    pageSize: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    """Z-3: the retailer's returns with `updatedAt >= updatedFrom`, by (updatedAt, returnId)."""
    require_same_retailer(claims.retailer_code, retailerCode)
    return ctx.state.list_returns(
        retailerCode,
        updated_from=_parse_time(updatedFrom, "updatedFrom") if updatedFrom else None,
        page=page,
        page_size=pageSize,
    )


@router.get(f"{API_PREFIX}/Returns/{{returnId}}")
def get_return(
    ctx: Ctx, claims: Caller, returnId: str, retailerCode: Annotated[str, Query(min_length=1)]
) -> dict[str, Any]:
    """Z-4: one return of the retailer; 404 when unknown."""
    require_same_retailer(claims.retailer_code, retailerCode)
    return ctx.state.get_return(retailerCode, returnId)


@router.put(f"{API_PREFIX}/Returns/{{returnId}}/Refund")
async def record_refund(
    request: Request, ctx: Ctx, claims: Caller, returnId: str
) -> dict[str, Any]:
    """Z-5: Processed -> Refunded -> Closed; idempotent on `refundReference`; answers the return."""
    body = await parse_body(request, RefundRequest)
    require_same_retailer(claims.retailer_code, body.retailerCode)
    outcome = RefundOutcome(
        amount=Decimal(body.amount),
        currency=body.currency,
        refund_reference=body.refundReference,
        credit_note_number=body.creditNoteNumber,
    )
    return ctx.state.record_refund(body.retailerCode, returnId, outcome)


@router.put(f"{API_PREFIX}/ExchangeStocks/Update")
async def update_exchange_stocks(request: Request, ctx: Ctx, claims: Caller) -> dict[str, Any]:
    """Overwrite exchange stock levels; unknown SKUs and invalid items are skipped and listed."""
    body = await parse_body(request, ExchangeStocksRequest)
    require_same_retailer(claims.retailer_code, body.retailerCode)
    errors: list[FieldError] = []
    rejected = 0
    rows: list[StockRow] = []
    for index, raw in enumerate(body.exchangeStocks):
        try:
            item = validate(ExchangeStock, raw, prefix=f"exchangeStocks[{index}]")
        except ZigZagError as exc:
            errors.extend(exc.errors)
            rejected += 1
            continue
        rows.append(
            StockRow(
                index=index,
                sku=item.sku,
                warehouse_dc_code=item.warehouseDcCode,
                available_quantity=item.availableQuantity,
            )
        )
    unknown = ctx.catalog.update_exchange_stocks(body.retailerCode, rows)
    return _partial_success(len(body.exchangeStocks), rejected + len(unknown), errors + unknown)


@router.put(f"{API_PREFIX}/NonReturnableProducts")
async def set_non_returnable(request: Request, ctx: Ctx, claims: Caller) -> dict[str, Any]:
    """Store non-returnable products (at most 40 per call: 400 above); invalid items skipped."""
    body = await parse_body(request, NonReturnableRequest)
    require_same_retailer(claims.retailer_code, body.retailerCode)
    if len(body.nonReturnableProducts) > MAX_NON_RETURNABLE_PER_CALL:
        raise bad_request(
            f"at most {MAX_NON_RETURNABLE_PER_CALL} products per call",
            [FieldError(field="nonReturnableProducts", message="too many items")],
        )
    errors: list[FieldError] = []
    accepted: list[dict[str, Any]] = []
    total = len(body.nonReturnableProducts)
    for index, raw in enumerate(body.nonReturnableProducts):
        try:
            item = validate(NonReturnableProduct, raw, prefix=f"nonReturnableProducts[{index}]")
        except ZigZagError as exc:
            errors.extend(exc.errors)
            continue
        accepted.append(item.model_dump())
    ctx.catalog.set_non_returnable(body.retailerCode, accepted)
    return _partial_success(total, total - len(accepted), errors)


def require_same_retailer(caller_code: str, requested_code: str) -> None:
    """403 when an API user asks about a retailer other than its own."""
    if caller_code != requested_code:
        raise ZigZagError(403, f"user is not authorised for retailer {requested_code!r}")


def _partial_success(total: int, rejected: int, errors: list[FieldError]) -> dict[str, Any]:
    """200 body of the published PUTs: what was applied, and why the rest was not."""
    return {
        "message": f"{total - rejected} of {total} items applied",
        "updatedCount": total - rejected,
        "errors": [error.to_json() for error in errors],
    }


def _parse_time(raw: str, name: str) -> datetime:
    """An ISO 8601 time; a time without an offset is taken as UTC; 400 if unreadable."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise bad_request(
            "invalid query", [FieldError(field=name, message="not an ISO 8601 time")]
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
