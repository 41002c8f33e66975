"""ZigZag's data as the simulator holds it, and its wire shape (docs/assumptions.md Z-6..Z-9).

Attributes are snake_case; `to_json` renders the camelCase wire form. Money is
`Decimal` throughout and leaves as a 2-dp string; times are timezone-aware UTC,
kept to whole seconds (the precision of the Z-6 example) so that what a client
reads back in `updatedAt` is exactly what `updatedFrom` filters on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

CENT = Decimal("0.01")


class ReturnStatus(StrEnum):
    """Return statuses (Z-7)."""

    PENDING_APPROVAL = "PendingApproval"
    """Created by the customer; waiting for the retailer's decision."""
    APPROVED = "Approved"
    """Accepted; the customer may send the goods."""
    REJECTED = "Rejected"
    """Refused by the retailer (terminal)."""
    LABEL_CREATED = "LabelCreated"
    """A carrier label was issued."""
    IN_TRANSIT = "InTransit"
    """The carrier has the parcel."""
    DELIVERED_TO_WAREHOUSE = "DeliveredToWarehouse"
    """The parcel reached the DC, not yet counted."""
    RECEIVED = "Received"
    """The DC counted the units (`receivedQuantity`)."""
    PROCESSED = "Processed"
    """Every received unit has been inspected."""
    REFUNDED = "Refunded"
    """The retailer reported the refund (Z-5)."""
    EXCHANGED = "Exchanged"
    """Settled by an exchange."""
    CLOSED = "Closed"
    """Nothing more will happen (terminal)."""
    CANCELLED = "Cancelled"
    """Withdrawn before receipt (terminal)."""


#: The allowed lifecycle moves; anything else is a 409.
TRANSITIONS: dict[ReturnStatus, frozenset[ReturnStatus]] = {
    ReturnStatus.PENDING_APPROVAL: frozenset(
        {ReturnStatus.APPROVED, ReturnStatus.REJECTED, ReturnStatus.CANCELLED}
    ),
    ReturnStatus.APPROVED: frozenset(
        {ReturnStatus.LABEL_CREATED, ReturnStatus.RECEIVED, ReturnStatus.CANCELLED}
    ),
    ReturnStatus.LABEL_CREATED: frozenset(
        {ReturnStatus.IN_TRANSIT, ReturnStatus.RECEIVED, ReturnStatus.CANCELLED}
    ),
    ReturnStatus.IN_TRANSIT: frozenset(
        {ReturnStatus.DELIVERED_TO_WAREHOUSE, ReturnStatus.RECEIVED, ReturnStatus.CANCELLED}
    ),
    ReturnStatus.DELIVERED_TO_WAREHOUSE: frozenset({ReturnStatus.RECEIVED}),
    ReturnStatus.RECEIVED: frozenset({ReturnStatus.PROCESSED}),
    ReturnStatus.PROCESSED: frozenset({ReturnStatus.REFUNDED, ReturnStatus.EXCHANGED}),
    ReturnStatus.REFUNDED: frozenset({ReturnStatus.CLOSED}),
    ReturnStatus.EXCHANGED: frozenset({ReturnStatus.CLOSED}),
    ReturnStatus.REJECTED: frozenset(),
    ReturnStatus.CLOSED: frozenset(),
    ReturnStatus.CANCELLED: frozenset(),
}

#: Statuses whose items no longer count against the order's returnable quantity.
VOID_STATUSES = frozenset({ReturnStatus.REJECTED, ReturnStatus.CANCELLED})


class EventType(StrEnum):
    """Webhook event types (Z-9)."""

    RETURN_CREATED = "ReturnCreated"
    RETURN_APPROVED = "ReturnApproved"
    RETURN_LABEL_CREATED = "ReturnLabelCreated"
    RETURN_RECEIVED = "ReturnReceived"
    RETURN_ITEMS_INSPECTED = "ReturnItemsInspected"
    RETURN_REFUNDED = "ReturnRefunded"
    RETURN_CLOSED = "ReturnClosed"
    RETURN_CANCELLED = "ReturnCancelled"


#: The event each status change emits; a change to a status not listed emits none.
EVENT_FOR_STATUS: dict[ReturnStatus, EventType] = {
    ReturnStatus.PENDING_APPROVAL: EventType.RETURN_CREATED,
    ReturnStatus.APPROVED: EventType.RETURN_APPROVED,
    ReturnStatus.LABEL_CREATED: EventType.RETURN_LABEL_CREATED,
    ReturnStatus.RECEIVED: EventType.RETURN_RECEIVED,
    ReturnStatus.PROCESSED: EventType.RETURN_ITEMS_INSPECTED,
    ReturnStatus.REFUNDED: EventType.RETURN_REFUNDED,
    ReturnStatus.CLOSED: EventType.RETURN_CLOSED,
    ReturnStatus.CANCELLED: EventType.RETURN_CANCELLED,
}


class Condition(StrEnum):
    """Graded condition of a unit group (Z-8)."""

    A_NEW = "A_NEW"
    B_GOOD = "B_GOOD"
    C_FAIR = "C_FAIR"
    D_POOR = "D_POOR"
    DAMAGED = "DAMAGED"
    INCORRECT_ITEM = "INCORRECT_ITEM"
    MISSING = "MISSING"
    JUNK = "JUNK"


class Disposition(StrEnum):
    """Where a unit group goes after inspection (Z-8)."""

    RESALEABLE = "RESALEABLE"
    RESALE_HOLD = "RESALE_HOLD"
    QUARANTINE = "QUARANTINE"
    RETURN_TO_VENDOR = "RETURN_TO_VENDOR"
    WRITE_OFF = "WRITE_OFF"
    MISSING = "MISSING"


#: `returnOption` values (reference 4.3; only `Refund` is used by the scenario).
RETURN_OPTIONS = ("Refund", "Exchange", "StoreCredit", "GiftCard")

#: The simulator's return-reason table (`returnReasonId` -> `returnReason`).
RETURN_REASONS: dict[int, str] = {
    1: "Changed my mind",
    2: "Too big",
    3: "Too small",
    4: "Faulty",
    5: "Not as described",
    6: "Arrived too late",
    7: "Wrong item sent",
}


def money(value: Decimal) -> str:
    """A 2-dp decimal string, rounding half up: `Decimal("24.5")` -> `"24.50"`."""
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with `Z`, whole seconds: `2026-10-06T14:03:11Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def whole_seconds(moment: datetime) -> datetime:
    """`moment` in UTC without its fraction of a second."""
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True, kw_only=True)
class Customer:
    """The customer of an order, copied onto its returns."""

    email: str
    first_name: str
    last_name: str

    def to_json(self) -> dict[str, Any]:
        """Wire shape."""
        return {"email": self.email, "firstName": self.first_name, "lastName": self.last_name}


@dataclass(frozen=True, kw_only=True)
class OrderLine:
    """One SKU of a dispatched order; `dc_warehouse` is the DC a return of it goes to."""

    sku: str
    quantity: int
    unit_price: Decimal
    dc_warehouse: str

    def to_json(self) -> dict[str, Any]:
        """Wire shape (admin API)."""
        return {
            "sku": self.sku,
            "quantity": self.quantity,
            "unitPrice": money(self.unit_price),
            "dcWarehouse": self.dc_warehouse,
        }


@dataclass(frozen=True, kw_only=True)
class Order:
    """A dispatched order from the retailer's order feed; `order_number` is unique per retailer."""

    retailer_code: str
    order_number: str
    currency: str
    customer: Customer
    dc_warehouse: str
    lines: tuple[OrderLine, ...]

    @property
    def lines_by_sku(self) -> dict[str, OrderLine]:
        """Lines keyed by SKU (an order has one line per SKU)."""
        return {line.sku: line for line in self.lines}

    def line(self, sku: str) -> OrderLine | None:
        """The line for `sku`, if the order has one."""
        return self.lines_by_sku.get(sku)

    def to_json(self) -> dict[str, Any]:
        """Wire shape (admin API)."""
        return {
            "retailerCode": self.retailer_code,
            "orderNumber": self.order_number,
            "currency": self.currency,
            "customer": self.customer.to_json(),
            "dcWarehouse": self.dc_warehouse,
            "lines": [line.to_json() for line in self.lines],
        }


@dataclass(frozen=True, kw_only=True)
class Inspection:
    """A group of units of one item inspected alike (Z-8)."""

    quantity: int
    condition: Condition
    disposition: Disposition
    inspected_at: datetime
    notes: str = ""

    def to_json(self) -> dict[str, Any]:
        """Wire shape."""
        return {
            "quantity": self.quantity,
            "condition": self.condition.value,
            "disposition": self.disposition.value,
            "inspectedAt": iso(self.inspected_at),
            "notes": self.notes,
        }


@dataclass(kw_only=True)
class ReturnItem:
    """One returned SKU. `received_quantity` is 0 until the DC counts the parcel."""

    return_item_id: str
    sku: str
    quantity: int
    unit_price: Decimal
    return_reason_id: int
    return_reason: str
    return_option: str = "Refund"
    received_quantity: int = 0
    inspections: list[Inspection] = field(default_factory=list)

    @property
    def inspected_quantity(self) -> int:
        """Units inspected so far."""
        return sum(group.quantity for group in self.inspections)

    def to_json(self) -> dict[str, Any]:
        """Wire shape."""
        return {
            "returnItemId": self.return_item_id,
            "sku": self.sku,
            "quantity": self.quantity,
            "unitPrice": money(self.unit_price),
            "returnReasonId": self.return_reason_id,
            "returnReason": self.return_reason,
            "returnOption": self.return_option,
            "receivedQuantity": self.received_quantity,
            "inspections": [group.to_json() for group in self.inspections],
        }


@dataclass(frozen=True, kw_only=True)
class StatusChange:
    """One entry of `statusHistory`."""

    status: ReturnStatus
    at: datetime

    def to_json(self) -> dict[str, Any]:
        """Wire shape."""
        return {"status": self.status.value, "at": iso(self.at)}


@dataclass(frozen=True, kw_only=True)
class RefundRecord:
    """The refund outcome the retailer reported (Z-5)."""

    amount: Decimal
    currency: str
    refund_reference: str
    credit_note_number: str | None
    refunded_at: datetime

    def to_json(self) -> dict[str, Any]:
        """Wire shape (the `refund` member of a Return)."""
        return {
            "amount": money(self.amount),
            "currency": self.currency,
            "refundReference": self.refund_reference,
            "creditNoteNumber": self.credit_note_number,
            "refundedAt": iso(self.refunded_at),
        }


@dataclass(kw_only=True)
class Return:
    """A ZigZag return: one order, one destination DC, several items (Z-6)."""

    return_id: str
    return_order_id: int
    retailer_code: str
    order_number: str
    dc_warehouse: str
    status: ReturnStatus
    currency: str
    created_at: datetime
    updated_at: datetime
    customer: Customer
    items: list[ReturnItem]
    status_history: list[StatusChange] = field(default_factory=list)
    refund: RefundRecord | None = None

    def item(self, return_item_id: str) -> ReturnItem | None:
        """The item with this id, if any."""
        return next((i for i in self.items if i.return_item_id == return_item_id), None)

    def can_move_to(self, status: ReturnStatus) -> bool:
        """Whether the transition table allows `status` next."""
        return status in TRANSITIONS[self.status]

    def move_to(self, status: ReturnStatus, at: datetime) -> None:
        """Change status and record it; the caller checked `can_move_to`."""
        self.status = status
        self.updated_at = at
        self.status_history.append(StatusChange(status=status, at=at))

    @property
    def fully_inspected(self) -> bool:
        """Every received unit of every item is inspected."""
        return all(item.inspected_quantity == item.received_quantity for item in self.items)

    def to_json(self) -> dict[str, Any]:
        """The Return object exactly as Z-6 shows it."""
        return {
            "returnId": self.return_id,
            "returnOrderId": self.return_order_id,
            "retailerCode": self.retailer_code,
            "orderNumber": self.order_number,
            "dcWarehouse": self.dc_warehouse,
            "status": self.status.value,
            "currency": self.currency,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "customer": self.customer.to_json(),
            "items": [item.to_json() for item in self.items],
            "statusHistory": [change.to_json() for change in self.status_history],
            "refund": self.refund.to_json() if self.refund else None,
        }


@dataclass(kw_only=True)
class Retailer:
    """A ZigZag retailer account, its one API user, and the data it pushed to us."""

    retailer_code: str
    username: str
    password: str
    currency: str
    #: (sku, warehouseDcCode) -> availableQuantity, overwritten by each PUT.
    exchange_stocks: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (sku, country or None for all countries) -> the stored item.
    non_returnable: dict[tuple[str, str | None], dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Admin view (the password is not echoed)."""
        return {
            "retailerCode": self.retailer_code,
            "username": self.username,
            "currency": self.currency,
            "exchangeStocks": [
                {"sku": sku, "warehouseDcCode": dc, "availableQuantity": qty}
                for (sku, dc), qty in sorted(self.exchange_stocks.items())
            ],
            "nonReturnableProducts": [
                self.non_returnable[key]
                for key in sorted(self.non_returnable, key=lambda k: (k[0], k[1] or ""))
            ],
        }
