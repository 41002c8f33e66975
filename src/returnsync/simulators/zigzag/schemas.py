"""Request bodies the simulator accepts, as pydantic models, and the body parser.

Vendor bodies ignore unknown members (as a lenient .NET API would); admin
bodies forbid them, so a typo in a test fails loudly. Bodies are parsed by
`parse_body` inside the route, after authentication, so a bad token is a 401
even when the body is also bad; a bad body is a 400 in ZigZag's error shape.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from returnsync.simulators.zigzag.errors import bad_request, from_validation
from returnsync.simulators.zigzag.model import Condition, Disposition

if TYPE_CHECKING:
    from fastapi import Request

#: `NonReturnableProducts` accepts at most this many items per call (published limit).
MAX_NON_RETURNABLE_PER_CALL = 40
MAX_AVAILABLE_QUANTITY = 2_147_483_647  # the stock feed's documented range

NonEmpty = Annotated[str, Field(min_length=1)]
Amount = Annotated[str, Field(pattern=r"^\d+(\.\d{1,2})?$")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Price = Annotated[Decimal, Field(ge=0, decimal_places=2)]
Units = Annotated[int, Field(ge=1)]

#: MessageKey values of non-returnable products (published, typo included).
MessageKey = Literal[
    "PleaseContactOurCustomerService",
    "ThisItemCanNotBeReturned",
    "PleaseContactUsToCreateReturn",
    "ProductIsNonReturnable",
    "PleaseContactOurCustomerServiceTeam",
    "ProductIsNonRetunable",
    "GiftCardCannotBeReturned",
    "ThisProductIsNotReturnable",
]
ReturnOption = Literal["Refund", "Exchange", "StoreCredit", "GiftCard"]

M = TypeVar("M", bound=BaseModel)


class VendorBody(BaseModel):
    """A vendor request body: unknown members are ignored."""

    model_config = ConfigDict(extra="ignore")


class AdminBody(BaseModel):
    """An admin request body: unknown members are refused."""

    model_config = ConfigDict(extra="forbid")


# -- vendor ---------------------------------------------------------------------------


class TokenRequest(VendorBody):
    """`POST /token` (Z-2)."""

    username: str
    password: str


class RefundRequest(VendorBody):
    """`PUT /Return/api/v1/Returns/{returnId}/Refund` (Z-5); `amount` must be a 2-dp string."""

    retailerCode: NonEmpty
    amount: Amount
    currency: Currency
    refundReference: NonEmpty
    creditNoteNumber: str | None = None


class ExchangeStocksRequest(VendorBody):
    """`PUT .../ExchangeStocks/Update`; items are validated one by one."""

    retailerCode: NonEmpty
    exchangeStocks: list[dict[str, Any]]


class ExchangeStock(VendorBody):
    """One `exchangeStocks[]` item."""

    sku: NonEmpty
    warehouseDcCode: NonEmpty
    availableQuantity: Annotated[int, Field(strict=True, ge=0, le=MAX_AVAILABLE_QUANTITY)]


class NonReturnableRequest(VendorBody):
    """`PUT .../NonReturnableProducts`; at most 40 items, validated one by one."""

    retailerCode: NonEmpty
    nonReturnableProducts: list[dict[str, Any]]


class NonReturnableProduct(VendorBody):
    """One `nonReturnableProducts[]` item; the country member is accepted as either spelling."""

    sku: NonEmpty
    countryIso2: Annotated[
        str | None,
        Field(pattern=r"^[A-Z]{2}$", validation_alias=AliasChoices("countryIso2", "countryIso")),
    ] = None
    messageKey: MessageKey | None = None
    isReturnable: bool = False


# -- admin ----------------------------------------------------------------------------


class RetailerIn(AdminBody):
    """`POST /_sim/retailers`."""

    retailerCode: NonEmpty
    username: NonEmpty
    password: NonEmpty
    currency: Currency = "GBP"


class SubscriptionIn(AdminBody):
    """`POST /_sim/subscriptions`."""

    retailerCode: NonEmpty
    url: Annotated[str, Field(pattern=r"^https?://")]
    apiKey: NonEmpty


class CustomerIn(AdminBody):
    """The customer of an order."""

    email: NonEmpty
    firstName: str
    lastName: str


class OrderLineIn(AdminBody):
    """One order line; `dcWarehouse` overrides the order's (multi-warehouse orders)."""

    sku: NonEmpty
    quantity: Units
    unitPrice: Price
    dcWarehouse: str | None = None


class OrderIn(AdminBody):
    """One dispatched order; `currency` defaults to the retailer's."""

    orderNumber: NonEmpty
    currency: Currency | None = None
    customer: CustomerIn
    dcWarehouse: NonEmpty
    lines: Annotated[list[OrderLineIn], Field(min_length=1)]


class OrdersIn(AdminBody):
    """`POST /_sim/orders` (the dispatched-order feed)."""

    retailerCode: NonEmpty
    orders: list[OrderIn]


class ReturnItemIn(AdminBody):
    """One line of a return to create."""

    sku: NonEmpty
    quantity: Units
    returnReasonId: int | None = None
    returnReason: str | None = None
    returnOption: ReturnOption = "Refund"


class ReturnIn(AdminBody):
    """`POST /_sim/returns`."""

    retailerCode: NonEmpty
    orderNumber: NonEmpty
    items: Annotated[list[ReturnItemIn], Field(min_length=1)]
    returnId: NonEmpty | None = None


class ReceivedItemIn(AdminBody):
    """Units of one item counted at the DC."""

    returnItemId: NonEmpty
    receivedQuantity: Annotated[int, Field(ge=0)]


class ReceiveIn(AdminBody):
    """`POST /_sim/returns/{id}/receive`; without `items` every item is received in full."""

    items: list[ReceivedItemIn] | None = None


class InspectionIn(AdminBody):
    """One inspected unit group."""

    quantity: Units
    condition: Condition
    disposition: Disposition
    notes: str = ""


class InspectedItemIn(AdminBody):
    """The unit groups of one item."""

    returnItemId: NonEmpty
    inspections: list[InspectionIn]


class InspectIn(AdminBody):
    """`POST /_sim/returns/{id}/inspect`."""

    items: list[InspectedItemIn]


class ScenarioIn(AdminBody):
    """`POST /_sim/scenario`."""

    retailerCode: NonEmpty
    count: Annotated[int, Field(ge=1, le=100_000)]
    seed: int | None = None
    mix: dict[str, Any] | None = None


class AdvanceClockIn(AdminBody):
    """`POST /_sim/advance_clock`."""

    seconds: Annotated[float, Field(ge=0)]


async def parse_body(request: Request, model: type[M]) -> M:
    """The request body as `model`; 400 in ZigZag's shape for bad JSON or bad members."""
    raw = await request.body()
    return validate(model, raw or b"null")


def validate(model: type[M], raw: bytes | dict[str, Any], prefix: str = "") -> M:
    """Validate JSON bytes or a decoded object; 400 naming the offending fields."""
    try:
        if isinstance(raw, bytes):
            return model.model_validate_json(raw)
        return model.model_validate(raw)
    except ValidationError as exc:
        raise bad_request("invalid request body", from_validation(exc, prefix)) from exc
