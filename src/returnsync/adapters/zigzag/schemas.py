"""ZigZag wire models (docs/assumptions.md Z-2, Z-3, Z-6, Z-8, Z-9), field names as ZigZag's.

Money is a decimal string with 2 dp (Z-6); a JSON number is accepted too but goes through
`str` into Decimal, never through float arithmetic. Times must carry a zone and are held in
UTC. Statuses, conditions, dispositions and event types stay plain strings here (open enums):
the mapping decides what it understands. Unknown fields are kept (`extra="allow"`), because
ZigZag may add fields and we store the raw payload anyway.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator


def _decimal(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a money amount, not a boolean")  # noqa: TRY004 (pydantic wants ValueError)
    if isinstance(value, int | float):
        value = str(value)
    if isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal amount: {value!r}") from exc
        if not amount.is_finite():
            raise ValueError(f"not a finite amount: {value!r}")
        return amount
    return value


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a time without a zone; ZigZag sends UTC with 'Z'")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:59:59-01:00 leaves datetime's range in UTC
        raise ValueError(f"a time out of range once in UTC: {value.isoformat()}") from exc


WireDecimal = Annotated[Decimal, BeforeValidator(_decimal)]
"""A decimal amount from a string (or a number, via str)."""

UtcTime = Annotated[datetime, AfterValidator(_utc)]
"""An ISO 8601 time with a zone, converted to UTC."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Customer(_Wire):
    """Who returned the goods."""

    email: str = ""
    firstName: str = ""
    lastName: str = ""


class Inspection(_Wire):
    """One inspected unit group of an item (Z-8)."""

    quantity: int = Field(ge=0)
    condition: str
    disposition: str
    inspectedAt: UtcTime | None = None
    notes: str | None = ""


class Item(_Wire):
    """One returned product line. `unitPrice` is gross (VAT inclusive), per unit."""

    returnItemId: str = Field(min_length=1)
    sku: str
    quantity: int = Field(ge=0)
    unitPrice: WireDecimal
    returnReasonId: int | None = None
    returnReason: str | None = ""
    returnOption: str | None = ""
    receivedQuantity: int = Field(default=0, ge=0)
    inspections: list[Inspection] = Field(default_factory=list)

    @property
    def inspected_quantity(self) -> int:
        """Units inspected so far, over all inspection groups."""
        return sum(inspection.quantity for inspection in self.inspections)


class StatusChange(_Wire):
    """One entry of `statusHistory`."""

    status: str
    at: UtcTime


class ReturnHeader(_Wire):
    """The least of a Return we need to file it: id, status and when it changed."""

    returnId: str = Field(min_length=1)
    status: str
    updatedAt: UtcTime


class Return(ReturnHeader):
    """A ZigZag return (Z-6), with its items and their inspections (Z-8)."""

    returnOrderId: int | None = None
    retailerCode: str
    orderNumber: str
    dcWarehouse: str = ""
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    createdAt: UtcTime
    customer: Customer = Field(default_factory=Customer)
    items: list[Item] = Field(default_factory=list)
    statusHistory: list[StatusChange] = Field(default_factory=list)
    refund: dict[str, Any] | None = None


class ReturnsPage(_Wire):
    """One page of `GET /Return/api/v1/Returns` (Z-3); items are kept raw for the snapshot."""

    items: list[dict[str, Any]]
    page: int = Field(ge=1)
    pageSize: int = Field(ge=1)
    totalCount: int = Field(ge=0)


class Token(_Wire):
    """The answer of `POST /token` (Z-2). `expiresIn` is in seconds."""

    token: str = Field(min_length=1)
    expiresIn: int | None = Field(default=None, gt=0)


class WebhookEnvelope(_Wire):
    """A webhook delivery (Z-9). `data` is the full Return snapshot at `occurredAt`."""

    eventId: str = Field(min_length=1)
    eventType: str = Field(min_length=1)
    occurredAt: UtcTime
    retailerCode: str
    returnId: str
    orderNumber: str
    data: Return

    @model_validator(mode="after")
    def _same_return(self) -> WebhookEnvelope:
        if self.data.returnId != self.returnId:
            raise ValueError(f"returnId {self.returnId!r} but data.returnId {self.data.returnId!r}")
        if self.data.retailerCode != self.retailerCode:
            raise ValueError(
                f"retailerCode {self.retailerCode!r} but data.retailerCode "
                f"{self.data.retailerCode!r}"
            )
        return self
