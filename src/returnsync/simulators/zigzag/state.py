"""Everything the ZigZag simulator holds, behind one lock, and the lifecycle that emits events.

`ZigZagState` is the ground truth tests believe. It owns the `Catalog`
(retailers, users, orders) and shares its lock with it. Every lifecycle
change (create, approve, label, receive, inspection complete, refund, close,
cancel) happens under the lock and emits exactly one event envelope (Z-9)
carrying a full snapshot of the return at that moment, handed to the
`publish` callback in the order the changes happened. Event ids come from an RNG seeded by the
simulator's seed, so a replayed run produces the same ids.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from returnsync.simulators.zigzag.catalog import Catalog
from returnsync.simulators.zigzag.errors import FieldError, bad_request, conflict, not_found
from returnsync.simulators.zigzag.model import (
    EVENT_FOR_STATUS,
    RETURN_REASONS,
    VOID_STATUSES,
    Inspection,
    RefundRecord,
    Return,
    ReturnItem,
    ReturnStatus,
    StatusChange,
    iso,
    whole_seconds,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    from returnsync.simulators.runtime import SimClock
    from returnsync.simulators.zigzag.commands import (
        NewInspection,
        NewReturnItem,
        RefundOutcome,
    )
    from returnsync.simulators.zigzag.model import Order, OrderLine

    EventSink = Callable[[dict[str, Any]], None]


class ZigZagState:
    """Returns and their lifecycle, plus the `catalog`; thread-safe (one re-entrant lock).

    Methods raise `ZigZagError` (400/404/409) and change nothing when they do.
    """

    def __init__(self, *, clock: SimClock, seed: int, publish: EventSink) -> None:
        self._clock = clock
        self._seed = seed
        self._publish = publish
        self._lock = threading.RLock()
        self._clear()

    def _clear(self) -> None:
        self.catalog = Catalog(lock=self._lock)
        self._returns: dict[str, Return] = {}
        self._return_orders: dict[tuple[str, str], int] = {}
        self._next_return = 1
        self._next_return_order = 1
        self._event_ids = random.Random(f"{self._seed}:event-ids")

    def reset(self) -> None:
        """Forget everything and re-seed, as if just constructed."""
        with self._lock:
            self._clear()

    def _now(self) -> datetime:
        return whole_seconds(self._clock.now())

    def returnable(self, retailer_code: str, order_number: str) -> dict[str, int]:
        """Per SKU of the order: quantity ordered minus quantity on live returns."""
        with self._lock:
            order = self.catalog.order(retailer_code, order_number)
            taken: dict[str, int] = defaultdict(int)
            for ret in self._returns.values():
                if (
                    ret.retailer_code == retailer_code
                    and ret.order_number == order_number
                    and ret.status not in VOID_STATUSES
                ):
                    for item in ret.items:
                        taken[item.sku] += item.quantity
            return {line.sku: line.quantity - taken[line.sku] for line in order.lines}

    # -- the return lifecycle ----------------------------------------------------------

    def create_return(
        self,
        retailer_code: str,
        order_number: str,
        items: Sequence[NewReturnItem],
        *,
        return_id: str | None = None,
    ) -> dict[str, Any]:
        """Open a return (PendingApproval, emits ReturnCreated) and answer its JSON.

        400 when a SKU is not on the order, the quantity exceeds what is still
        returnable, or the items go to different DCs (one return per DC); 404
        for an unknown retailer or order; 409 for a taken `return_id`.
        """
        with self._lock:
            order = self.catalog.order(retailer_code, order_number)
            if return_id is not None and return_id in self._returns:
                raise conflict(f"return {return_id!r} already exists")
            self._check_items(order, items)
            return_id = return_id or self._new_return_id()
            now = self._now()
            ret = Return(
                return_id=return_id,
                return_order_id=self._return_order_id(retailer_code, order_number),
                retailer_code=retailer_code,
                order_number=order_number,
                dc_warehouse=self._dc_of(order, items),
                status=ReturnStatus.PENDING_APPROVAL,
                currency=order.currency,
                created_at=now,
                updated_at=now,
                customer=order.customer,
                items=[
                    _return_item(order.lines_by_sku[item.sku], return_id, n, item)
                    for n, item in enumerate(items, start=1)
                ],
                status_history=[StatusChange(status=ReturnStatus.PENDING_APPROVAL, at=now)],
            )
            self._returns[return_id] = ret
            self._emit(ret, now)
            return ret.to_json()

    def _check_items(self, order: Order, items: Sequence[NewReturnItem]) -> None:
        errors: list[FieldError] = []
        left = self.returnable(order.retailer_code, order.order_number)
        for n, item in enumerate(items):
            if order.line(item.sku) is None:
                errors.append(FieldError(field=f"items[{n}].sku", message="not on the order"))
                continue
            left[item.sku] -= item.quantity
            if left[item.sku] < 0:
                errors.append(
                    FieldError(
                        field=f"items[{n}].quantity",
                        message="more than ordered minus already returned",
                    )
                )
            if item.return_reason is None and item.return_reason_id not in (None, *RETURN_REASONS):
                errors.append(
                    FieldError(field=f"items[{n}].returnReasonId", message="unknown reason")
                )
        if not items:
            errors.append(FieldError(field="items", message="at least one item"))
        if errors:
            raise bad_request("invalid return", errors)
        if len({self._line_dc(order, item.sku) for item in items}) > 1:
            raise bad_request(
                "items go to different DCs; create one return per DC",
                [FieldError(field="items", message="mixed dcWarehouse")],
            )

    @staticmethod
    def _line_dc(order: Order, sku: str) -> str:
        line = order.line(sku)
        return line.dc_warehouse if line else order.dc_warehouse

    def _dc_of(self, order: Order, items: Sequence[NewReturnItem]) -> str:
        return self._line_dc(order, items[0].sku)

    def _new_return_id(self) -> str:
        while True:
            candidate = f"R{self._next_return:06d}"
            self._next_return += 1
            if candidate not in self._returns:
                return candidate

    def _return_order_id(self, retailer_code: str, order_number: str) -> int:
        key = (retailer_code, order_number)
        if key not in self._return_orders:
            self._return_orders[key] = self._next_return_order
            self._next_return_order += 1
        return self._return_orders[key]

    def approve(self, return_id: str) -> dict[str, Any]:
        """PendingApproval -> Approved (ReturnApproved); 409 from any other status."""
        return self._advance(return_id, ReturnStatus.APPROVED)

    def create_label(self, return_id: str) -> dict[str, Any]:
        """Approved -> LabelCreated (ReturnLabelCreated); 409 from any other status."""
        return self._advance(return_id, ReturnStatus.LABEL_CREATED)

    def cancel(self, return_id: str) -> dict[str, Any]:
        """Any pre-receipt status -> Cancelled (ReturnCancelled); 409 otherwise."""
        return self._advance(return_id, ReturnStatus.CANCELLED)

    def _advance(self, return_id: str, status: ReturnStatus) -> dict[str, Any]:
        with self._lock:
            ret = self._get(return_id)
            self._require_move(ret, status)
            self._move(ret, status)
            return ret.to_json()

    def receive(self, return_id: str, counts: Mapping[str, int] | None) -> dict[str, Any]:
        """The DC counted the parcel: set `receivedQuantity`, -> Received (ReturnReceived).

        `counts` maps returnItemId to units received; items not named received
        none. None receives every item in full. 400 for an unknown item or a
        count outside 0..quantity; 409 unless the return is between approval and receipt.
        """
        with self._lock:
            ret = self._get(return_id)
            self._require_move(ret, ReturnStatus.RECEIVED)
            if counts is None:
                counts = {item.return_item_id: item.quantity for item in ret.items}
            errors: list[FieldError] = []
            for item_id, count in counts.items():
                item = ret.item(item_id)
                if item is None:
                    errors.append(FieldError(field=f"items[{item_id}]", message="unknown item"))
                elif not 0 <= count <= item.quantity:
                    errors.append(
                        FieldError(
                            field=f"items[{item_id}].receivedQuantity",
                            message=f"must be between 0 and {item.quantity}",
                        )
                    )
            if errors:
                raise bad_request("invalid receipt", errors)
            for item in ret.items:
                item.received_quantity = counts.get(item.return_item_id, 0)
            self._move(ret, ReturnStatus.RECEIVED)
            return ret.to_json()

    def inspect(
        self, return_id: str, groups: Mapping[str, Sequence[NewInspection]]
    ) -> dict[str, Any]:
        """Record inspected unit groups; once every received unit is inspected, -> Processed.

        Only a Received return can be inspected (409). 400 for an unknown item or
        when an item's inspected units would exceed its `receivedQuantity`. A
        partial inspection updates `updatedAt` but emits no event; completion emits
        ReturnItemsInspected.
        """
        with self._lock:
            ret = self._get(return_id)
            if ret.status is not ReturnStatus.RECEIVED:
                raise conflict(f"return {return_id} is {ret.status.value}, not Received")
            errors: list[FieldError] = []
            accepted: list[tuple[ReturnItem, Sequence[NewInspection]]] = []
            for item_id, new in groups.items():
                item = ret.item(item_id)
                if item is None:
                    errors.append(FieldError(field=f"items[{item_id}]", message="unknown item"))
                elif item.inspected_quantity + sum(g.quantity for g in new) > (
                    item.received_quantity
                ):
                    errors.append(
                        FieldError(
                            field=f"items[{item_id}].inspections",
                            message=f"more units than received ({item.received_quantity})",
                        )
                    )
                else:
                    accepted.append((item, new))
            if errors:
                raise bad_request("invalid inspection", errors)
            now = self._now()
            for item, new in accepted:
                item.inspections.extend(
                    Inspection(
                        quantity=g.quantity,
                        condition=g.condition,
                        disposition=g.disposition,
                        inspected_at=now,
                        notes=g.notes,
                    )
                    for g in new
                )
            ret.updated_at = now
            if ret.fully_inspected:
                self._move(ret, ReturnStatus.PROCESSED)
            return ret.to_json()

    def record_refund(
        self, retailer_code: str, return_id: str, refund: RefundOutcome
    ) -> dict[str, Any]:
        """Z-5: Processed -> Refunded -> Closed, emitting ReturnRefunded then ReturnClosed.

        The same `refundReference` again answers the return unchanged. 409 for a
        different reference on a refunded return, or a return not yet Processed;
        400 for a currency other than the return's; 404 for an unknown return.
        """
        with self._lock:
            ret = self._owned(retailer_code, return_id)
            if ret.refund is not None:
                if ret.refund.refund_reference == refund.refund_reference:
                    return ret.to_json()
                raise conflict(
                    f"return {return_id} was refunded with reference "
                    f"{ret.refund.refund_reference!r}"
                )
            if ret.status is not ReturnStatus.PROCESSED:
                raise conflict(f"return {return_id} is {ret.status.value}, not Processed")
            if refund.currency != ret.currency:
                raise bad_request(
                    "currency differs from the return's",
                    [FieldError(field="currency", message=f"expected {ret.currency}")],
                )
            now = self._now()
            ret.refund = RefundRecord(
                amount=refund.amount,
                currency=refund.currency,
                refund_reference=refund.refund_reference,
                credit_note_number=refund.credit_note_number,
                refunded_at=now,
            )
            self._move(ret, ReturnStatus.REFUNDED, now)
            self._move(ret, ReturnStatus.CLOSED, now)
            return ret.to_json()

    def _get(self, return_id: str) -> Return:
        ret = self._returns.get(return_id)
        if ret is None:
            raise not_found(f"return {return_id!r} not found")
        return ret

    def _owned(self, retailer_code: str, return_id: str) -> Return:
        ret = self._returns.get(return_id)
        if ret is None or ret.retailer_code != retailer_code:
            raise not_found(f"return {return_id!r} not found for retailer {retailer_code!r}")
        return ret

    @staticmethod
    def _require_move(ret: Return, status: ReturnStatus) -> None:
        if not ret.can_move_to(status):
            raise conflict(
                f"return {ret.return_id} is {ret.status.value}; cannot become {status.value}"
            )

    def _move(self, ret: Return, status: ReturnStatus, at: datetime | None = None) -> None:
        at = at or self._now()
        ret.move_to(status, at)
        self._emit(ret, at)

    def _emit(self, ret: Return, at: datetime) -> None:
        event_type = EVENT_FOR_STATUS.get(ret.status)
        if event_type is None:
            return
        event_id = uuid.UUID(int=self._event_ids.getrandbits(128), version=4)
        self._publish(
            {
                "eventId": str(event_id),
                "eventType": event_type.value,
                "occurredAt": iso(at),
                "retailerCode": ret.retailer_code,
                "returnId": ret.return_id,
                "orderNumber": ret.order_number,
                "data": ret.to_json(),
            }
        )

    # -- vendor reads ---------------------------------------------------------------------------

    def list_returns(
        self, retailer_code: str, *, updated_from: datetime | None, page: int, page_size: int
    ) -> dict[str, Any]:
        """Z-3: returns with `updatedAt >= updated_from`, by (updatedAt, returnId), one page."""
        with self._lock:
            matching = sorted(
                (
                    r
                    for r in self._returns.values()
                    if r.retailer_code == retailer_code
                    and (updated_from is None or r.updated_at >= updated_from)
                ),
                key=lambda r: (r.updated_at, r.return_id),
            )
            start = (page - 1) * page_size
            return {
                "items": [r.to_json() for r in matching[start : start + page_size]],
                "page": page,
                "pageSize": page_size,
                "totalCount": len(matching),
            }

    def get_return(self, retailer_code: str, return_id: str) -> dict[str, Any]:
        """Z-4: one return of this retailer; 404 when unknown."""
        with self._lock:
            return self._owned(retailer_code, return_id).to_json()

    def return_json(self, return_id: str) -> dict[str, Any]:
        """One return by id, any retailer; 404 when unknown."""
        with self._lock:
            return self._get(return_id).to_json()

    def snapshot(self) -> dict[str, Any]:
        """Retailers, orders and returns (full Z-6 objects), for `GET /_sim/state`."""
        with self._lock:
            returns = [r.to_json() for r in self._returns.values()]
            return self.catalog.snapshot() | {"returns": returns}


def _return_item(line: OrderLine, return_id: str, n: int, item: NewReturnItem) -> ReturnItem:
    reason_id = item.return_reason_id or 1
    return ReturnItem(
        return_item_id=f"{return_id}-{n}",
        sku=item.sku,
        quantity=item.quantity,
        unit_price=line.unit_price,
        return_reason_id=reason_id,
        return_reason=item.return_reason or RETURN_REASONS[reason_id],
        return_option=item.return_option,
    )
