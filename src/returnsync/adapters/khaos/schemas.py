"""What Khaos Control Cloud pushes to us, our channel (reference §1.1.5, assumption K-9).

Field names are KCC's, verbatim. Numbers become Decimal (a float from `json.loads` goes
through `str`; `loads` below never makes floats at all). IDs KCC sends as numbers or strings
are held as strings. A JSON null is treated as an absent field, so optional fields fall back
to their defaults and required ones are reported missing. Unknown fields are kept.

Quirk handled here: KCC's order-status example uses the key `Status`, its field table
`OrderStatus`; `SalesOrderStatus.Status` accepts both.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from returnsync.adapters.errors import InvalidPayloadError


def loads(body: bytes | str) -> Any:
    """JSON with every non-integer number as Decimal. Raises InvalidPayloadError if not JSON."""
    try:
        return json.loads(body, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPayloadError("KCC push", [f"not JSON: {exc}"]) from exc


def _decimal(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a number, not a boolean")  # noqa: TRY004 (pydantic wants ValueError)
    if isinstance(value, int | float | str):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValueError(f"not a number: {value!r}") from exc
        if not number.is_finite():
            raise ValueError(f"not a finite number: {value!r}")
        return number
    return value


Number = Annotated[Decimal, BeforeValidator(_decimal)]
"""A KCC number (Double) held exactly."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class DataItem(_Wire):
    """KCC's lookup reference: one of ID, Code or Name."""

    ID: str = ""
    Code: str = ""
    Name: str = ""


class BarcodeEntry(_Wire):
    """One barcode of a stock item; `Type` names the barcode type."""

    Barcode: str
    Type: DataItem | None = None


class StockItem(_Wire):
    """A stock item (StockUpload push). StockID never changes; StockCode can."""

    StockID: str = Field(min_length=1)
    StockCode: str = Field(min_length=1)
    OtherRef: str = ""
    StockDescription: str = ""
    Barcodes: list[BarcodeEntry] = Field(default_factory=list)


class StockItems(_Wire):
    """The StockUpload push: items added or changed, and StockIDs deleted."""

    Items: list[StockItem] = Field(default_factory=list)
    Deleted: list[str] = Field(default_factory=list)


class StockLevels(_Wire):
    """Levels at one site. `Available` is stock not yet allocated to orders."""

    Available: Number = Decimal(0)
    OnOrder: Number = Decimal(0)


class StockStatus(_Wire):
    """Stock of one item at one site. `Levels` is absent when the item is not stock controlled."""

    StockCode: str
    StockID: str = Field(min_length=1)
    SiteID: int
    Levels: StockLevels | None = None


class StockStatuses(_Wire):
    """The StockStatusUpload push: 0 to 100 statuses."""

    Statuses: list[StockStatus] = Field(default_factory=list)


class OrderTotals(_Wire):
    """Document totals (K-9: mirrors the SOAP export)."""

    Net: Number
    Tax: Number
    Gross: Number
    Currency: str = Field(min_length=3, max_length=3)


class DocumentLine(_Wire):
    """A line of a credit note in an order-status push (K-9)."""

    SKU: str = ""
    StockID: str = ""
    Quantity: Number
    Net: Number
    Tax: Number
    Gross: Number
    ExtendedDescription: list[str] = Field(default_factory=list)


class SalesOrderStatus(_Wire):
    """The status of one sales document. A credit note has OrderType ID "2" (K-9)."""

    OrderCode: str
    OrderID: str
    Status: str = Field(validation_alias=AliasChoices("Status", "OrderStatus"))
    AssociatedRef: str = ""
    ChannelID: str = ""
    Shipments: list[dict[str, Any]] = Field(default_factory=list)
    CustomData: Any = None
    OrderType: DataItem | None = None
    Totals: OrderTotals | None = None
    Lines: list[DocumentLine] = Field(default_factory=list)

    @property
    def is_credit_note(self) -> bool:
        """Whether KCC marks this document a credit note (ORDER_TYPE 2)."""
        return self.OrderType is not None and self.OrderType.ID.strip() == "2"


class OrderStatuses(_Wire):
    """The OrderStatusUpload push."""

    Statuses: list[SalesOrderStatus] = Field(default_factory=list)
