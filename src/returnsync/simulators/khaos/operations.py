"""What happens inside Khaos outside the channel: set-up and operator actions.

None of these has a public API (reference §1.4, §1.6; SIMULATORS.md), so the
simulator offers them under `/_sim/`: loading the catalogue and the web orders KCC
imported earlier, adjusting stock, renaming a Stock Code under the same StockID,
raising a manual credit note, deleting a return, changing a return reason's
processing type. Each fires the pushes real KCC would: `StockStatuses` after a
level change, `StockItems` after an item change, `OrderStatuses` for a credit note.
All functions run under the simulator's state lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from returnsync.simulators.khaos.adjustments import Adjustment
from returnsync.simulators.khaos.catalogue import Catalogue, CatalogueError, StockItem
from returnsync.simulators.khaos.credit_notes import CreditNote, CreditNoteLine
from returnsync.simulators.khaos.errors import OperationError
from returnsync.simulators.khaos.returns import DELETED, NEW
from returnsync.simulators.khaos.sales import SalesOrder, SalesOrderItem

if TYPE_CHECKING:
    from returnsync.simulators.khaos.company import Company
    from returnsync.simulators.khaos.returns import CustomerReturn

OPERATOR = "operator"
MAX_RENAME_SUFFIX = 9999


@dataclass(frozen=True)
class LevelSpec:
    """A stock level to load."""

    StockID: str
    SiteID: int
    Available: Decimal
    OnOrder: Decimal = Decimal(0)


@dataclass(frozen=True)
class OrderLineSpec:
    """A line of a web order KCC imported (SKU is the Stock Code)."""

    SKU: str
    Quantity: Decimal
    UnitNet: Decimal
    UnitTax: Decimal


@dataclass(frozen=True)
class OrderSpec:
    """A web order KCC imported."""

    AssociatedRef: str
    URN: str
    items: list[OrderLineSpec]
    SiteID: int | None = None


@dataclass(frozen=True)
class CreditLineSpec:
    """A line of a manual credit note (amounts as the operator typed them)."""

    Net: Decimal
    Tax: Decimal
    Quantity: Decimal = Decimal(1)
    StockID: str = ""
    SKU: str = ""
    ExtendedDescription: list[str] = field(default_factory=list)


def load_catalogue(company: Company, items: list[StockItem], levels: list[LevelSpec]) -> None:
    """Add or replace stock items and set levels; push StockItems and StockStatuses."""
    trial = Catalogue(case_sensitive_codes=company.catalogue.case_sensitive)
    trial.items = dict(company.catalogue.items)
    for item in items:
        try:
            trial.put(item)
        except CatalogueError as exc:
            raise OperationError(str(exc), status=409) from None
    for spec in levels:
        if spec.StockID not in trial.items:
            raise OperationError(f"unknown StockID {spec.StockID!r}", status=404)
        _known_site(company, spec.SiteID)
    company.catalogue.items = trial.items
    for spec in levels:
        level = company.catalogue.level(spec.StockID, spec.SiteID)
        level.Available = spec.Available
        level.OnOrder = spec.OnOrder
    company.push_stock_items(item.StockID for item in items)
    company.push_stock_statuses((spec.StockID, spec.SiteID) for spec in levels)


def add_sales_orders(company: Company, orders: list[OrderSpec]) -> list[SalesOrder]:
    """Record web orders KCC imported earlier (no stock moves: they shipped long ago).

    An unknown URN becomes a customer, as an order import with `CreateNew: IfNoMatch`.
    """
    refs = {order.AssociatedRef for order in company.sales_orders.values()}
    for spec in orders:
        if spec.AssociatedRef in refs:
            raise OperationError(
                f"order AssociatedRef {spec.AssociatedRef!r} already imported", status=409
            )
        refs.add(spec.AssociatedRef)
        if spec.SiteID is not None:
            _known_site(company, spec.SiteID)
        for line in spec.items:
            if company.catalogue.by_code(line.SKU) is None:
                raise OperationError(f"no stock item with Stock Code {line.SKU!r}", status=404)
    created = []
    for spec in orders:
        company.customers.setdefault(spec.URN.strip(), None)
        order = SalesOrder(
            SOrderID=company.ids.document_id(),
            SOrderCode=company.ids.sales_order_code(),
            AssociatedRef=spec.AssociatedRef,
            URN=spec.URN.strip(),
            SiteID=spec.SiteID if spec.SiteID is not None else company.default_site_id,
            Items=[_order_item(company, line) for line in spec.items],
        )
        company.sales_orders[order.SOrderID] = order
        created.append(order)
    return created


def _order_item(company: Company, line: OrderLineSpec) -> SalesOrderItem:
    stock = company.catalogue.by_code(line.SKU)
    if stock is None:  # checked by the caller
        raise OperationError(f"no stock item with Stock Code {line.SKU!r}", status=404)
    return SalesOrderItem(
        OrderItemID=company.ids.order_item_id(),
        StockID=stock.StockID,
        SKU=stock.StockCode,
        Quantity=line.Quantity,
        UnitNet=line.UnitNet,
        UnitTax=line.UnitTax,
    )


def adjust_stock(
    company: Company,
    *,
    stock_id: str,
    site_id: int,
    adjust_by: Decimal,
    reason_code: str,
    note: str = "",
    user: str = OPERATOR,
) -> Adjustment:
    """An operator's stock adjustment (adjust *by*); pushes StockStatuses."""
    stock = _known_stock(company, stock_id)
    _known_site(company, site_id)
    level = company.catalogue.level(stock_id, site_id)
    level.Available += adjust_by
    adjustment = Adjustment(
        GroupID=company.ids.adjustment_group(),
        StockID=stock_id,
        StockCode=stock.StockCode,
        SiteID=site_id,
        AdjustBy=adjust_by,
        ReasonCode=reason_code,
        Note=note,
        Date=company.now(),
        User=user,
        Source="Adjustment",
    )
    company.adjustments.append(adjustment)
    company.push_stock_statuses([(stock_id, site_id)])
    return adjustment


def rename_stock_code(company: Company, *, stock_id: str, new_code: str) -> StockItem:
    """Change a Stock Code under the same StockID; pushes StockItems."""
    _known_stock(company, stock_id)
    try:
        item = company.catalogue.rename(stock_id, new_code)
    except CatalogueError as exc:
        raise OperationError(str(exc), status=409) from None
    company.push_stock_items([stock_id])
    return item


def rename_random_stock_code(company: Company) -> StockItem | None:
    """The `stock_code_rename` fault: an operator renames a random item (seeded)."""
    if not company.catalogue.items:
        return None
    stock_id = company.rng.choice(sorted(company.catalogue.items))
    item = company.catalogue.items[stock_id]
    for suffix in range(1, MAX_RENAME_SUFFIX):
        tail = f"-R{suffix}"
        candidate = item.StockCode[: 50 - len(tail)] + tail
        if company.catalogue.by_code(candidate) is None:
            return rename_stock_code(company, stock_id=stock_id, new_code=candidate)
    return None


def manual_credit_note(
    company: Company, *, associated_ref: str, urn: str, lines: list[CreditLineSpec]
) -> CreditNote:
    """A credit note no return asked for (goodwill), raised and issued at once.

    Lines carry their own amounts. It is pushed through `OrderStatuses` only when it
    carries an AssociatedRef (KCC sends statuses only for channel documents).
    """
    if not lines:
        raise OperationError("a credit note needs at least one line")
    if urn.strip() not in company.customers:
        raise OperationError(f"URN {urn!r} is not a customer", status=404)
    credit_lines = []
    for spec in lines:
        stock = None
        if spec.StockID:
            stock = _known_stock(company, spec.StockID)
        elif spec.SKU:
            stock = company.catalogue.by_code(spec.SKU)
        credit_lines.append(
            CreditNoteLine(
                SKU=stock.StockCode if stock else spec.SKU,
                StockID=stock.StockID if stock else "",
                Quantity=spec.Quantity,
                Net=spec.Net,
                Tax=spec.Tax,
                ExtendedDescription=list(spec.ExtendedDescription),
            )
        )
    at = company.now()
    credit_note = CreditNote(
        OrderID=company.ids.document_id(),
        code=company.ids.credit_note_code(),
        AssociatedRef=associated_ref,
        URN=urn.strip(),
        currency=company.currency,
        lines=credit_lines,
        net=sum((line.Net for line in credit_lines), Decimal(0)),
        tax=sum((line.Tax for line in credit_lines), Decimal(0)),
        created_at=at,
        manual=True,
    )
    credit_note.issue(at)
    company.credit_notes.append(credit_note)
    company.push_credit_note(credit_note)
    return credit_note


def find_return(company: Company, code: str) -> CustomerReturn:
    """The return with this CustomerReturnCode (SOAP-style error when missing)."""
    found = company.customer_returns.get(code.strip())
    if found is None:
        raise OperationError("Return does not exist or has been deleted.", status=404)
    return found


def delete_return(company: Company, code: str) -> CustomerReturn:
    """Delete a return that has not been processed; its units become returnable again."""
    customer_return = find_return(company, code)
    if customer_return.State == DELETED:
        raise OperationError("Return does not exist or has been deleted.", status=404)
    if customer_return.State != NEW:
        raise OperationError("Return has already been processed.", status=409)
    for item in customer_return.items:
        order = company.sales_orders[item.SOrderID]
        line = order.item(item.OrderItemID)
        if line is not None:
            line.ReturnedQuantity -= item.Quantity
    customer_return.move_to(DELETED, company.now())
    return customer_return


def set_reason_type(company: Company, *, reason_id: str, processing_type: str) -> None:
    """Change a return reason's processing type (affects returns processed later)."""
    reason = company.return_reasons.get(reason_id)
    if reason is None:
        raise OperationError(f"unknown return reason {reason_id!r}", status=404)
    if not processing_type.strip():
        raise OperationError("ProcessingType must not be blank")
    reason.ProcessingType = processing_type.strip()


def _known_stock(company: Company, stock_id: str) -> StockItem:
    try:
        return company.catalogue.get(stock_id)
    except CatalogueError as exc:
        raise OperationError(str(exc), status=404) from None


def _known_site(company: Company, site_id: int) -> None:
    if site_id not in company.sites:
        raise OperationError(f"unknown SiteID {site_id}", status=404)
