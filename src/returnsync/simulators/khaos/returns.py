"""Customer returns and return reasons (reference §2.4, §5.2).

A return reason's `ProcessingType` decides what happens to the stock when the
return is processed: `ReturnToStock` puts the quantity back into `Available` at the
return's site, `StockMissing` ("Stock Missing/Write off") moves nothing. The full
list of processing types is not public, so the type is an open string; any type
other than `ReturnToStock` moves no stock.

A return goes `New` -> `Processed` -> `Issued` (its credit note issued), or
`New` -> `Deleted` (GUESS, §5.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decimal import Decimal

RETURN_TO_STOCK = "ReturnToStock"
STOCK_MISSING = "StockMissing"

NEW = "New"
PROCESSED = "Processed"
ISSUED = "Issued"
DELETED = "Deleted"


@dataclass
class ReturnReason:
    """A customer return reason set up by the Khaos administrator."""

    ID: str
    Description: str
    ProcessingType: str

    def wire(self) -> dict[str, Any]:
        """JSON view."""
        return {
            "ID": self.ID,
            "Description": self.Description,
            "ProcessingType": self.ProcessingType,
        }


@dataclass
class CustomerReturnItem:
    """A returned line, resolved to a stock item and a source order line."""

    StockID: str
    StockCode: str
    SKU: str
    Quantity: Decimal
    ReasonID: str
    SiteID: int
    SOrderID: str
    SOrderCode: str
    OrderItemID: str
    ExtendedDescription: list[str] = field(default_factory=list)
    ProcessingType: str = ""

    def wire(self) -> dict[str, Any]:
        """State view."""
        return {
            "StockID": self.StockID,
            "StockCode": self.StockCode,
            "SKU": self.SKU,
            "Quantity": self.Quantity,
            "ReasonID": self.ReasonID,
            "ProcessingType": self.ProcessingType,
            "SiteID": self.SiteID,
            "SOrderID": self.SOrderID,
            "SOrderCode": self.SOrderCode,
            "OrderItemID": self.OrderItemID,
            "ExtendedDescription": list(self.ExtendedDescription),
        }


@dataclass
class ExchangeItem:
    """An item to send back out in exchange (recorded; no outbound order is simulated)."""

    StockID: str
    SKU: str
    Quantity: Decimal
    ExtendedDescription: list[str] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        """State view."""
        return {
            "StockID": self.StockID,
            "SKU": self.SKU,
            "Quantity": self.Quantity,
            "ExtendedDescription": list(self.ExtendedDescription),
        }


@dataclass
class CustomerReturn:
    """A customer return imported from the channel."""

    CustomerReturnID: str
    CustomerReturnCode: str
    AssociatedRef: str
    URN: str
    CreatedDate: str
    ProcessReturn: bool
    items: list[CustomerReturnItem]
    exchange_items: list[ExchangeItem]
    imported_at: str
    Notes: str = ""
    State: str = NEW
    credit_note: str = ""
    history: list[dict[str, str]] = field(default_factory=list)

    def move_to(self, state: str, at: str) -> None:
        """Change state and remember when."""
        self.State = state
        self.history.append({"State": state, "at": at})

    def wire(self) -> dict[str, Any]:
        """State view."""
        return {
            "CustomerReturnID": self.CustomerReturnID,
            "CustomerReturnCode": self.CustomerReturnCode,
            "AssociatedRef": self.AssociatedRef,
            "URN": self.URN,
            "CreatedDate": self.CreatedDate,
            "State": self.State,
            "ProcessReturn": self.ProcessReturn,
            "Notes": self.Notes,
            "items": [item.wire() for item in self.items],
            "exchange_items": [item.wire() for item in self.exchange_items],
            "credit_note": self.credit_note,
            "imported_at": self.imported_at,
            "history": [dict(entry) for entry in self.history],
        }
