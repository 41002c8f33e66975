"""Everything the ZigZag simulator holds, behind one lock, and the lifecycle that emits events.

`ZigZagState` is the ground truth tests believe. Every lifecycle change (create,
approve, label, receive, inspection complete, refund, close, cancel) happens
under the lock and emits exactly one event envelope (Z-9) carrying a full
snapshot of the return at that moment, handed to the `publish` callback in
the order the changes happened. Event ids come from an RNG seeded by the
simulator's seed, so a replayed run produces the same ids.
"""

from __future__ import annotations

import hmac
import random
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from returnsync.simulators.zigzag.errors import (
    FieldError,
    ZigZagError,
    bad_request,
    conflict,
    not_found,
)
from returnsync.simulators.zigzag.model import (
    EVENT_FOR_STATUS,
    RETURN_REASONS,
    VOID_STATUSES,
    Condition,
    Disposition,
    Inspection,
    Order,
    OrderLine,
    RefundRecord,
    Retailer,
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
    from decimal import Decimal

    from returnsync.simulators.runtime import SimClock

    EventSink = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, kw_only=True)
class NewReturnItem:
    """One line of a return being created (admin API or scenario)."""

    sku: str
    quantity: int
    return_reason_id: int | None = None
    return_reason: str | None = None
    return_option: str = "Refund"


@dataclass(frozen=True, kw_only=True)
class NewInspection:
    """One unit group being inspected."""

    quantity: int
    condition: Condition
    disposition: Disposition
    notes: str = ""


@dataclass(frozen=True, kw_only=True)
class RefundOutcome:
    """The body of `PUT .../Refund` (Z-5), validated."""

    amount: Decimal
    currency: str
    refund_reference: str
    credit_note_number: str | None


@dataclass(frozen=True, kw_only=True)
class StockRow:
    """One `exchangeStocks[]` item that passed shape validation; `index` is its position."""

    index: int
    sku: str
    warehouse_dc_code: str
    available_quantity: int


class ZigZagState:
    """Retailers, their orders and returns; thread-safe (one re-entrant lock).

    Methods raise `ZigZagError` (400/403/404/409) and change nothing when they do.
    """

    def __init__(self, *, clock: SimClock, seed: int, publish: EventSink) -> None:
        self._clock = clock
        self._seed = seed
        self._publish = publish
        self._lock = threading.RLock()
        self._clear()

    def _clear(self) -> None:
        self._retailers: dict[str, Retailer] = {}
        self._users: dict[str, str] = {}
        self._orders: dict[tuple[str, str], Order] = {}
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

    # -- retailers and their API users ---------------------------------------------

    def add_retailer(
        self, *, retailer_code: str, username: str, password: str, currency: str
    ) -> Retailer:
        """Create a retailer and its API user; 409 if either already exists."""
        with self._lock:
            if retailer_code in self._retailers:
                raise conflict(f"retailer {retailer_code!r} already exists")
            if username in self._users:
                raise conflict(f"username {username!r} is already in use")
            retailer = Retailer(
                retailer_code=retailer_code,
                username=username,
                password=password,
                currency=currency,
            )
            self._retailers[retailer_code] = retailer
            self._users[username] = retailer_code
            return retailer

    def authenticate(self, username: str, password: str) -> str | None:
        """The retailerCode of the user whose password this is, or None."""
        with self._lock:
            code = self._users.get(username)
            if code is None:
                return None
            expected = self._retailers[code].password
        if hmac.compare_digest(expected.encode(), password.encode()):
            return code
        return None

    def retailer_of(self, username: str) -> str | None:
        """The retailerCode a username is bound to, or None if no such user."""
        with self._lock:
            return self._users.get(username)

    def retailer(self, retailer_code: str) -> Retailer:
        """The retailer; 404 if unknown."""
        with self._lock:
            retailer = self._retailers.get(retailer_code)
            if retailer is None:
                raise not_found(f"retailer {retailer_code!r} not found")
            return retailer

    # -- the dispatched-order feed ---------------------------------------------------

    def add_orders(self, retailer_code: str, orders: Sequence[Order]) -> int:
        """Register dispatched orders; returns how many were new.

        Re-sending an identical order is a no-op; the same order number with
        different content is a 409 and nothing in the batch is stored.
        """
        with self._lock:
            self.retailer(retailer_code)
            fresh: list[Order] = []
            for order in orders:
                known = self._orders.get((retailer_code, order.order_number))
                if known is None:
                    fresh.append(order)
                elif known != order:
                    raise conflict(f"order {order.order_number!r} exists with other content")
            for order in fresh:
                self._orders[retailer_code, order.order_number] = order
            return len(fresh)

    def orders(self, retailer_code: str) -> list[Order]:
        """The retailer's orders in registration order."""
        with self._lock:
            return [o for (code, _), o in self._orders.items() if code == retailer_code]

    def returnable(self, retailer_code: str, order_number: str) -> dict[str, int]:
        """Per SKU of the order: quantity ordered minus quantity on live returns."""
        with self._lock:
            order = self._order(retailer_code, order_number)
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

    def _order(self, retailer_code: str, order_number: str) -> Order:
        order = self._orders.get((retailer_code, order_number))
        if order is None:
            raise not_found(f"order {order_number!r} not found for retailer {retailer_code!r}")
        return order

    def known_skus(self, retailer_code: str) -> set[str]:
        """SKUs of the retailer's catalogue (every SKU on a registered order)."""
        with self._lock:
            return {line.sku for order in self.orders(retailer_code) for line in order.lines}

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
            self.retailer(retailer_code)
            order = self._order(retailer_code, order_number)
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

    # -- vendor reads and the two published PUTs ---------------------------------------------

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

    def update_exchange_stocks(
        self, retailer_code: str, rows: Sequence[StockRow]
    ) -> list[FieldError]:
        """Overwrite available quantities; rows with an unknown SKU are skipped and reported."""
        with self._lock:
            retailer = self.retailer(retailer_code)
            known = self.known_skus(retailer_code)
            errors: list[FieldError] = []
            for row in rows:
                if row.sku not in known:
                    errors.append(
                        FieldError(
                            field=f"exchangeStocks[{row.index}].sku",
                            message=f"unknown sku {row.sku!r}",
                        )
                    )
                    continue
                retailer.exchange_stocks[row.sku, row.warehouse_dc_code] = row.available_quantity
            return errors

    def set_non_returnable(self, retailer_code: str, items: Sequence[dict[str, Any]]) -> None:
        """Store non-returnable products, keyed by (sku, countryIso2 or all countries)."""
        with self._lock:
            retailer = self.retailer(retailer_code)
            for item in items:
                retailer.non_returnable[item["sku"], item.get("countryIso2")] = dict(item)

    # -- admin views --------------------------------------------------------------------------

    def return_json(self, return_id: str) -> dict[str, Any]:
        """One return by id, any retailer; 404 when unknown."""
        with self._lock:
            return self._get(return_id).to_json()

    def snapshot(self) -> dict[str, Any]:
        """Retailers, orders and returns (full Z-6 objects), for `GET /_sim/state`."""
        with self._lock:
            return {
                "retailers": [r.to_json() for r in self._retailers.values()],
                "orders": [o.to_json() for o in self._orders.values()],
                "returns": [r.to_json() for r in self._returns.values()],
            }


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


def require_same_retailer(caller_code: str, requested_code: str) -> None:
    """403 when an API user asks about a retailer other than its own."""
    if caller_code != requested_code:
        raise ZigZagError(403, f"user is not authorised for retailer {requested_code!r}")
