"""Processing a customer return: stock moves, then a credit note is raised and issued.

K-8: with `ProcessReturn: true` this happens on import; otherwise the return waits
in `New` until an operator processes it. Per line, the return reason's processing
type decides the stock movement (`ReturnToStock`: `Available += Quantity` at the
line's site, written to the adjustment history; anything else, e.g.
`StockMissing`: nothing). The credit note is priced from the source order lines
(K-10), issued at once, and announced through `OrderStatuses` (K-9); every level
that moved is announced through `StockStatuses`.

The refusals reuse the exact strings of the SOAP `ProcessReturn` call (§1.4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from returnsync.simulators.khaos.adjustments import Adjustment
from returnsync.simulators.khaos.credit_notes import CreditNote, credit_return
from returnsync.simulators.khaos.errors import OperationError
from returnsync.simulators.khaos.returns import DELETED, ISSUED, NEW, PROCESSED, RETURN_TO_STOCK

if TYPE_CHECKING:
    from returnsync.simulators.khaos.company import Company
    from returnsync.simulators.khaos.returns import CustomerReturn

PROCESS_USER = "Sirion"


def process_return(company: Company, customer_return: CustomerReturn) -> CreditNote | None:
    """Process a `New` return: move stock, raise and issue its credit note, queue pushes.

    A return with nothing returned (exchange items only) is processed without a
    credit note, and None is returned.
    """
    if customer_return.State == DELETED:
        raise OperationError("Return does not exist or has been deleted.", status=404)
    if customer_return.State != NEW:
        raise OperationError("Return has already been processed.", status=409)
    at = company.now()
    moved: list[tuple[str, int]] = []
    group = 0
    for item in customer_return.items:
        reason = company.return_reasons.get(item.ReasonID)
        item.ProcessingType = reason.ProcessingType if reason else ""
        if item.ProcessingType != RETURN_TO_STOCK:
            continue
        level = company.catalogue.level(item.StockID, item.SiteID)
        level.Available += item.Quantity
        group = group or company.ids.adjustment_group()
        description = reason.Description if reason else item.ReasonID
        company.adjustments.append(
            Adjustment(
                GroupID=group,
                StockID=item.StockID,
                StockCode=company.catalogue.items[item.StockID].StockCode,
                SiteID=item.SiteID,
                AdjustBy=item.Quantity,
                ReasonCode="",
                Note=f"Customer return {customer_return.CustomerReturnCode}: {description}",
                Date=at,
                User=PROCESS_USER,
                Source="CustomerReturn",
            )
        )
        moved.append((item.StockID, item.SiteID))
    customer_return.move_to(PROCESSED, at)
    company.push_stock_statuses(moved)
    if not customer_return.items:
        return None
    lines, totals = credit_return(
        customer_return,
        orders=company.sales_orders,
        catalogue=company.catalogue,
        rounding=company.rounding,
    )
    credit_note = CreditNote(
        OrderID=company.ids.document_id(),
        code=company.ids.credit_note_code(),
        AssociatedRef=customer_return.AssociatedRef,
        URN=customer_return.URN,
        currency=company.currency,
        lines=lines,
        net=totals.net,
        tax=totals.tax,
        created_at=at,
        return_code=customer_return.CustomerReturnCode,
        source_orders=list(dict.fromkeys(item.SOrderCode for item in customer_return.items)),
    )
    credit_note.issue(at)
    company.credit_notes.append(credit_note)
    customer_return.credit_note = credit_note.code
    customer_return.move_to(ISSUED, at)
    company.push_credit_note(credit_note)
    return credit_note
