"""Credit notes: sales documents of ORDER_TYPE 2 (K-8, K-9, K-10).

Processing a return raises a credit note whose lines are priced from the original
sales order lines (unit net and unit tax unrounded, K-10) and issues it. An
operator can also raise a manual credit note that no return asked for (a goodwill
credit), which is what reconciliation must notice.

Credit notes reach the channel as an `OrderStatuses` push (K-9): a
`SalesOrderStatus` whose `OrderCode` is the credit note code, `Status` `Complete`,
plus `OrderType {"ID": "2", "Name": "Credit Note"}`, `Totals` and `Lines`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from returnsync.simulators.khaos.vat import Amounts, credit_document_tax, credit_line

if TYPE_CHECKING:
    from returnsync.simulators.khaos.catalogue import Catalogue
    from returnsync.simulators.khaos.returns import CustomerReturn
    from returnsync.simulators.khaos.sales import SalesOrder, SalesOrderItem

ORDER_TYPE_CREDIT_NOTE = {"ID": "2", "Name": "Credit Note"}


@dataclass
class CreditNoteLine:
    """One credited line."""

    SKU: str
    StockID: str
    Quantity: Decimal
    Net: Decimal
    Tax: Decimal
    OrderItemID: str = ""
    ExtendedDescription: list[str] = field(default_factory=list)

    @property
    def gross(self) -> Decimal:
        """Net plus VAT."""
        return self.Net + self.Tax

    def wire(self) -> dict[str, Any]:
        """The K-9 line (also the state view)."""
        line: dict[str, Any] = {
            "SKU": self.SKU,
            "StockID": self.StockID,
            "Quantity": self.Quantity,
            "Net": self.Net,
            "Tax": self.Tax,
            "Gross": self.gross,
            "ExtendedDescription": list(self.ExtendedDescription),
        }
        if self.OrderItemID:
            line["OrderItemID"] = self.OrderItemID
        return line


@dataclass
class CreditNote:
    """A credit note and its totals."""

    OrderID: str
    code: str
    AssociatedRef: str
    URN: str
    currency: str
    lines: list[CreditNoteLine]
    net: Decimal
    tax: Decimal
    created_at: str
    return_code: str = ""
    source_orders: list[str] = field(default_factory=list)
    manual: bool = False
    Issued: bool = False
    issued_at: str = ""

    @property
    def gross(self) -> Decimal:
        """Net plus VAT."""
        return self.net + self.tax

    def issue(self, at: str) -> None:
        """Mark the credit note issued."""
        self.Issued = True
        self.issued_at = at

    def wire(self) -> dict[str, Any]:
        """State view."""
        return {
            "OrderID": self.OrderID,
            "code": self.code,
            "ORDER_TYPE": 2,
            "AssociatedRef": self.AssociatedRef,
            "return_code": self.return_code,
            "URN": self.URN,
            "source_orders": list(self.source_orders),
            "net": self.net,
            "tax": self.tax,
            "gross": self.gross,
            "currency": self.currency,
            "lines": [line.wire() for line in self.lines],
            "manual": self.manual,
            "Issued": self.Issued,
            "IssueDate": self.issued_at,
            "issued_at": self.issued_at,
            "created_at": self.created_at,
        }

    def order_status(self, channel_id: str) -> dict[str, Any]:
        """The `SalesOrderStatus` that tells the channel about this credit note (K-9)."""
        return {
            "OrderCode": self.code,
            "OrderID": self.OrderID,
            "Status": "Complete",
            "AssociatedRef": self.AssociatedRef,
            "ChannelID": channel_id,
            "Shipments": [],
            "OrderType": dict(ORDER_TYPE_CREDIT_NOTE),
            "Totals": {
                "Net": self.net,
                "Tax": self.tax,
                "Gross": self.gross,
                "Currency": self.currency,
            },
            "Lines": [line.wire() for line in self.lines],
        }


def credit_return(
    customer_return: CustomerReturn,
    *,
    orders: dict[str, SalesOrder],
    catalogue: Catalogue,
    rounding: str,
) -> tuple[list[CreditNoteLine], Amounts]:
    """Price a return's credit from its source order lines, and record it on them.

    Returns the lines and the document totals. Under `per_line` rounding the totals
    are the sums of the lines; under `per_invoice` the VAT is rounded once per
    source order and capped by that order's VAT.
    """
    lines: list[CreditNoteLine] = []
    unrounded_tax: dict[str, list[Decimal]] = defaultdict(list)
    for item in customer_return.items:
        order = orders[item.SOrderID]
        order_line = _order_line(order, item.OrderItemID)
        amounts = credit_line(
            unit_net=order_line.UnitNet,
            unit_tax=order_line.UnitTax,
            line_quantity=order_line.Quantity,
            quantity=item.Quantity,
            credited=order_line.credited,
        )
        order_line.credited = order_line.credited.plus(item.Quantity, amounts)
        unrounded_tax[order.SOrderID].append(order_line.UnitTax * item.Quantity)
        stock = catalogue.items.get(item.StockID)
        lines.append(
            CreditNoteLine(
                SKU=stock.StockCode if stock else item.StockCode,
                StockID=item.StockID,
                Quantity=item.Quantity,
                Net=amounts.net,
                Tax=amounts.tax,
                OrderItemID=item.OrderItemID,
                ExtendedDescription=list(item.ExtendedDescription),
            )
        )
    net = sum((line.Net for line in lines), Decimal(0))
    if rounding != "per_invoice":
        return lines, Amounts(net, sum((line.Tax for line in lines), Decimal(0)))
    tax = Decimal(0)
    for order_id, parts in unrounded_tax.items():
        order = orders[order_id]
        order_tax = credit_document_tax(
            unrounded=parts,
            original_tax=order.tax("per_invoice"),
            credited_tax=order.credited_tax,
            completes=order.fully_credited,
        )
        order.credited_tax += order_tax
        tax += order_tax
    return lines, Amounts(net, tax)


def _order_line(order: SalesOrder, order_item_id: str) -> SalesOrderItem:
    line = order.item(order_item_id)
    if line is None:
        raise LookupError(f"{order.SOrderCode} has no item {order_item_id}")
    return line
