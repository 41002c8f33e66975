"""Sales orders: the web orders KCC imported earlier, which returns refer back to.

A sales order has a numeric-string `SOrderID`, a `SOrderCode` (`SO%05d`), the
channel's order number in `AssociatedRef` (the "Ass. Ref" field), a customer `URN`
and items with an `OrderItemID`. Each item keeps its unit net and unit tax
unrounded (§5.11) and tracks how much has been returned and credited against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from returnsync.simulators.khaos.vat import Amounts, Credited, document_tax, line_amounts


@dataclass
class SalesOrderItem:
    """One sales order line."""

    OrderItemID: str
    StockID: str
    SKU: str
    Quantity: Decimal
    UnitNet: Decimal
    UnitTax: Decimal
    ReturnedQuantity: Decimal = Decimal(0)
    credited: Credited = field(default_factory=Credited)

    @property
    def amounts(self) -> Amounts:
        """The line's net and VAT, rounded per line."""
        return line_amounts(self.UnitNet, self.UnitTax, self.Quantity)

    @property
    def returnable(self) -> Decimal:
        """Sold and not yet returned."""
        return self.Quantity - self.ReturnedQuantity

    def wire(self) -> dict[str, Any]:
        """State view."""
        amounts = self.amounts
        return {
            "OrderItemID": self.OrderItemID,
            "StockID": self.StockID,
            "SKU": self.SKU,
            "Quantity": self.Quantity,
            "UnitNet": self.UnitNet,
            "UnitTax": self.UnitTax,
            "Net": amounts.net,
            "Tax": amounts.tax,
            "Gross": amounts.gross,
            "ReturnedQuantity": self.ReturnedQuantity,
            "CreditedQuantity": self.credited.quantity,
            "CreditedNet": self.credited.net,
            "CreditedTax": self.credited.tax,
        }


@dataclass
class SalesOrder:
    """A sales order (ORDER_TYPE 1)."""

    SOrderID: str
    SOrderCode: str
    AssociatedRef: str
    URN: str
    SiteID: int
    Items: list[SalesOrderItem]
    credited_tax: Decimal = Decimal(0)

    def item(self, order_item_id: str) -> SalesOrderItem | None:
        """The line with this OrderItemID."""
        return next((i for i in self.Items if i.OrderItemID == order_item_id), None)

    def tax(self, rounding: str) -> Decimal:
        """The order's VAT: the sum of rounded lines, or rounded once on the total."""
        if rounding == "per_invoice":
            return document_tax(i.UnitTax * i.Quantity for i in self.Items)
        return sum((i.amounts.tax for i in self.Items), Decimal(0))

    @property
    def fully_credited(self) -> bool:
        """Every unit of every line has been credited."""
        return all(i.credited.quantity == i.Quantity for i in self.Items)

    def wire(self, rounding: str) -> dict[str, Any]:
        """State view."""
        net = sum((i.amounts.net for i in self.Items), Decimal(0))
        tax = self.tax(rounding)
        return {
            "SOrderID": self.SOrderID,
            "SOrderCode": self.SOrderCode,
            "AssociatedRef": self.AssociatedRef,
            "URN": self.URN,
            "SiteID": self.SiteID,
            "ORDER_TYPE": 1,
            "Items": [item.wire() for item in self.Items],
            "Totals": {"Net": net, "Tax": tax, "Gross": net + tax},
        }
