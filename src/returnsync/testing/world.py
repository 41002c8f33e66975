"""The simulated outside world of one scenario: time, the database file, ZigZag, Khaos
Control and the payment gateway, all in memory and all driven by the scenario's RNG.

Each fake keeps the authoritative ledger of its system (what ZigZag recorded, which credit
notes Khaos raised, which refunds the gateway paid) so the invariants are checked against
the outside world's truth, never against our own tables alone. The fakes call our services
exactly where the real systems call us (ZigZag webhooks, Khaos pulls and pushes) and answer
our adapters' Protocols (`ReturnsPlatform`, `RefundGateway`) where we call them.

Faults are BUGGIFY points (`returnsync.testing.faults`) named `<system>.<call>.<what>`:
`transient` (refused before anything happened), `lost_response` (applied, then the answer
was lost: OutcomeUnknownError), `after_apply` (applied, then *our* process died before it
could record the result; emulates a crash point in our code right after the remote call).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from returnsync.domain.errors import OverCreditError
from returnsync.domain.vat import CreditedSoFar, InvoicedLine, credit_for
from returnsync.errors import (
    NotFoundError,
    OutcomeUnknownError,
    RejectedByRemoteError,
    TransientConnectorError,
)
from returnsync.ports import ReturnSnapshot
from returnsync.services import channel
from returnsync.storage.db import Database
from returnsync.testing import faults

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Iterator

    from sqlalchemy.engine import Connection

    from returnsync.adapters.payments.fake import FakeGateway
    from returnsync.domain.money import Money
    from returnsync.ports import GatewayRefund, Payment
    from returnsync.services.context import Context

MS = timedelta(milliseconds=1)


def iso(when: datetime) -> str:
    """ZigZag's wire time: ISO 8601 UTC with milliseconds and 'Z'."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class SimClock:
    """Virtual time (ports.Clock): moves only when the simulation advances it."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        """The current virtual time, UTC."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move forward by `seconds`, to the millisecond."""
        self._now += timedelta(milliseconds=round(seconds * 1000))

    def advance_to(self, when: datetime) -> None:
        """Move forward to `when` (never backwards)."""
        self._now = max(self._now, when)


class SimDatabase(Database):
    """The production SQLite `Database` (same engine, pragmas and BEGIN IMMEDIATE), used
    through one long-lived connection, with fault points around every commit.

    One connection keeps a scenario fast (no connect and pragmas per transaction) and turns
    a nested `db.begin()`, which would wait on SQLite's write lock in production, into an
    immediate error.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(f"sqlite:///{path}")
        self.path = path
        self._conn: Connection | None = None
        self._reader: sqlite3.Connection | None = None

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction; may crash just before its commit or just after it."""
        if self._conn is None:
            self._conn = self.engine.connect()
        with self._conn.begin():
            yield self._conn
            faults.maybe_crash("db.before_commit")
        faults.maybe_crash("db.after_commit")

    def peek(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read committed rows on a separate read-only connection (safe mid-transaction)."""
        if self._reader is None:
            self._reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        return list(self._reader.execute(sql, params).fetchall())

    def close(self) -> None:
        """Close both connections (the engine stays usable)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def restore(self, template: Path) -> None:
        """Start again from a copy of `template`: a new scenario on the same engine, whose
        compiled-statement cache is kept. Pooled connections to the old file are closed."""
        self.close()
        super().dispose()
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(template, self.path)

    def dispose(self) -> None:
        """Close both connections and the engine."""
        self.close()
        super().dispose()


# ZigZag


@dataclass(kw_only=True)
class Inspection:
    """One inspected unit group of a ZigZag item."""

    quantity: int
    condition: str
    disposition: str


@dataclass(kw_only=True)
class ZzItem:
    """One returned product line, with what the warehouse will find."""

    item_id: str
    sku: str
    quantity: int
    unit_price: Decimal
    received: int
    inspections: list[Inspection]


@dataclass(kw_only=True)
class ZzReturn:
    """A ZigZag return: its planned life, and how far along it is."""

    ref: str
    order_ref: str
    items: list[ZzItem]
    created_at: datetime
    plan: list[str]
    status: str = "PendingApproval"
    updated_at: datetime | None = None
    history: list[tuple[str, datetime]] = field(default_factory=list)
    received: bool = False
    inspected_items: int = 0
    refund: dict[str, str] | None = None
    versions: int = 0

    @property
    def processed(self) -> bool:
        """Every received unit inspected (ZigZag `Processed` or later)."""
        return self.status in {"Processed", "Refunded", "Closed"}

    @property
    def creditable(self) -> bool:
        """Whether some inspected unit earns a credit (not MISSING)."""
        return any(
            i.disposition != "MISSING" and i.quantity > 0
            for item in self.items
            for i in item.inspections
        )


STEP_STATUS = {
    "approve": ("Approved", "ReturnApproved"),
    "label": ("LabelCreated", "ReturnLabelCreated"),
    "transit": ("InTransit", None),
    "receive": ("Received", "ReturnReceived"),
    "inspect_partial": ("Received", "ReturnItemsInspected"),
    "process": ("Processed", "ReturnItemsInspected"),
    "cancel": ("Cancelled", "ReturnCancelled"),
    "reject": ("Rejected", None),
    "refund": ("Refunded", "ReturnRefunded"),
    "close": ("Closed", "ReturnClosed"),
}


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """One webhook delivery ZigZag still has to make (Z-9); a retry keeps its eventId."""

    event_id: str
    return_ref: str
    event_type: str
    body: bytes


class SimZigZag:
    """ZigZag for one retailer: the return lifecycles, the Returns API (ports.ReturnsPlatform)
    and an outbox of webhook deliveries that the scheduler delivers (or loses, repeats,
    reorders)."""

    def __init__(self, retailer_code: str, rng: random.Random, clock: SimClock) -> None:
        self.retailer_code = retailer_code
        self.rng = rng
        self.clock = clock
        self.returns: dict[str, ZzReturn] = {}
        self.outbox: list[Delivery] = []
        self.events = 0
        self.refund_conflicts: list[str] = []

    # the world's side

    def add(self, ret: ZzReturn) -> None:
        """A customer books a return (status PendingApproval, event ReturnCreated)."""
        self.returns[ret.ref] = ret
        self._changed(ret, "PendingApproval", "ReturnCreated")

    def movable(self) -> list[str]:
        """Returns with a next step in their life, in booking order."""
        return [ref for ref, ret in self.returns.items() if ret.plan]

    def progress(self, ref: str) -> str:
        """Do the next step of a return's life; returns what happened."""
        ret = self.returns[ref]
        step = ret.plan.pop(0)
        status, event = STEP_STATUS[step]
        if step == "receive":
            ret.received = True
        elif step == "inspect_partial":
            ret.inspected_items = max(1, len(ret.items) - 1)
        elif step == "process":
            ret.inspected_items = len(ret.items)
        self._changed(ret, status, event)
        return f"{ref} {step} -> {status}"

    def _changed(self, ret: ZzReturn, status: str, event: str | None) -> None:
        now = self.clock.now()
        # ZigZag stamps updatedAt when the change is made; it may commit a little later
        # (replication lag). Lag stays under the sweep's 5-minute overlap.
        lag = (
            timedelta(seconds=self.rng.uniform(0, 240))
            if faults.buggify("zigzag.lag")
            else timedelta(0)
        )
        stamped = now - lag
        if ret.updated_at is not None:
            stamped = max(stamped, ret.updated_at + MS)
        ret.status = status
        ret.updated_at = stamped
        ret.history.append((status, stamped))
        ret.versions += 1
        if event is None:
            return
        self.events += 1
        if faults.buggify("zigzag.webhook.lost"):
            return  # never delivered: only the polling sweep can find this change
        envelope = {
            "eventId": f"evt-{self.retailer_code}-{self.events:05d}",
            "eventType": event,
            "occurredAt": iso(stamped),
            "retailerCode": self.retailer_code,
            "returnId": ret.ref,
            "orderNumber": ret.order_ref,
            "data": self.raw(ret),
        }
        self.outbox.append(
            Delivery(
                event_id=str(envelope["eventId"]),
                return_ref=ret.ref,
                event_type=event,
                body=json.dumps(envelope).encode(),
            )
        )

    def raw(self, ret: ZzReturn) -> dict[str, Any]:
        """The Return JSON (Z-6, Z-8) as ZigZag serves it now."""
        stamp = ret.updated_at or ret.created_at
        items = []
        for n, item in enumerate(ret.items):
            inspected = ret.received and n < ret.inspected_items
            items.append(
                {
                    "returnItemId": item.item_id,
                    "sku": item.sku,
                    "quantity": item.quantity,
                    "unitPrice": str(item.unit_price),
                    "returnReasonId": 2,
                    "returnReason": "Too big",
                    "returnOption": "Refund",
                    "receivedQuantity": item.received if ret.received else 0,
                    "inspections": [
                        {
                            "quantity": i.quantity,
                            "condition": i.condition,
                            "disposition": i.disposition,
                            "inspectedAt": iso(stamp),
                            "notes": "",
                        }
                        for i in item.inspections
                    ]
                    if inspected
                    else [],
                }
            )
        return {
            "returnId": ret.ref,
            "returnOrderId": int(ret.ref.lstrip("R") or 0),
            "retailerCode": self.retailer_code,
            "orderNumber": ret.order_ref,
            "dcWarehouse": "GB0064",
            "status": ret.status,
            "currency": "GBP",
            "createdAt": iso(ret.created_at),
            "updatedAt": iso(stamp),
            "customer": {"email": "c@example.com", "firstName": "Ada", "lastName": "Lovelace"},
            "items": items,
            "statusHistory": [{"status": s, "at": iso(at)} for s, at in ret.history],
            "refund": dict(ret.refund) if ret.refund else None,
        }

    def snapshot(self, ret: ZzReturn) -> ReturnSnapshot:
        """The API's view of a return."""
        return ReturnSnapshot(
            return_ref=ret.ref,
            status=ret.status,
            updated_at=ret.updated_at or ret.created_at,
            raw=self.raw(ret),
        )

    # ports.ReturnsPlatform (our adapter's view)

    def get_return(self, return_ref: str) -> ReturnSnapshot:
        """Z-4. May fail transiently; 404 for an unknown return."""
        if faults.buggify("zigzag.get_return.transient"):
            raise TransientConnectorError("ZigZag 503 (simulated)", system="zigzag")
        ret = self.returns.get(return_ref)
        if ret is None:
            raise NotFoundError(f"no return {return_ref!r}", system="zigzag", status=404)
        return self.snapshot(ret)

    def returns_updated_since(self, since: datetime) -> Iterator[ReturnSnapshot]:
        """Z-3: every return whose last change is at or after `since`, oldest first.

        The listing is taken when iteration starts; it may break off half-way (a page fails).
        """
        found = sorted(
            (r for r in self.returns.values() if r.updated_at and r.updated_at >= since),
            key=lambda r: (r.updated_at, r.ref),
        )
        snaps = [self.snapshot(r) for r in found]
        for snap in snaps:
            if faults.buggify("zigzag.list.transient"):
                raise TransientConnectorError("ZigZag 502 on a page (simulated)", system="zigzag")
            yield snap

    def record_refund(
        self, return_ref: str, *, amount: Money, refund_ref: str, credit_note: str
    ) -> None:
        """Z-5: idempotent on refundReference; another reference on a refunded return is 409."""
        faults.maybe_crash("zigzag.record_refund.before_call")
        if faults.buggify("zigzag.record_refund.transient"):
            raise TransientConnectorError("ZigZag 503 (simulated)", system="zigzag")
        ret = self.returns.get(return_ref)
        if ret is None:
            raise NotFoundError(f"no return {return_ref!r}", system="zigzag", status=404)
        if ret.refund is not None:
            if ret.refund["refundReference"] != refund_ref:
                self.refund_conflicts.append(
                    f"{return_ref}: refunded as {ret.refund['refundReference']}, "
                    f"then told {refund_ref}"
                )
                raise RejectedByRemoteError("409 already refunded", system="zigzag", status=409)
        elif ret.status != "Processed":
            self.refund_conflicts.append(f"{return_ref}: refund recorded in status {ret.status}")
            raise RejectedByRemoteError(f"409 return is {ret.status}", system="zigzag", status=409)
        else:
            ret.refund = {
                "amount": str(amount.amount),
                "currency": amount.currency,
                "refundReference": refund_ref,
                "creditNoteNumber": credit_note,
            }
            ret.plan = ["refund", "close"]
            self.progress(return_ref)
        if faults.buggify("zigzag.record_refund.lost_response"):
            raise OutcomeUnknownError(
                "ZigZag timed out after applying (simulated)", system="zigzag"
            )
        faults.maybe_crash("zigzag.record_refund.after_apply")


# Khaos Control


@dataclass(frozen=True, kw_only=True)
class Product:
    """A Khaos stock item; ZigZag knows it by `sku` (same code, maybe other case/spaces)."""

    stock_id: str
    stock_code: str
    sku: str
    price: Decimal  # gross per unit, as the customer paid
    vat_rate: Decimal

    @property
    def unit_net(self) -> Decimal:
        """Unit net as the sales order holds it: unrounded (4 dp)."""
        return (self.price / (1 + self.vat_rate)).quantize(Decimal("0.0001"))


@dataclass(frozen=True, kw_only=True)
class CreditNote:
    """A credit note Khaos raised (its ledger, ground truth)."""

    code: str
    order_id: str
    associated_ref: str
    order_ref: str
    net: Decimal
    tax: Decimal
    lines: list[dict[str, Any]]

    @property
    def gross(self) -> Decimal:
        """Net plus VAT."""
        return self.net + self.tax


@dataclass(kw_only=True)
class Push:
    """One push Khaos still has to make; re-sent until answered 200."""

    kind: str
    body: bytes
    label: str


class SimKhaos:
    """Khaos Control Cloud for one retailer: pulls our staged returns with its continuation,
    dedupes on AssociatedRef, imports and processes them (K-8), raises credit notes with UK VAT
    (K-10) and pushes them to us as OrderStatuses (K-9)."""

    def __init__(
        self,
        tenant_id: str,
        *,
        products: list[Product],
        orders: dict[str, dict[str, int]],
        urn: str,
        reasons: set[str],
        rng: random.Random,
    ) -> None:
        self.tenant_id = tenant_id
        self.products = {p.stock_code.casefold(): p for p in products}
        self.orders = orders  # order_ref -> {stock_code: quantity sold}
        self.urn = urn
        self.reasons = reasons
        self.rng = rng
        self.continuation = "2019-12-31 12:00:00Z"  # K-2 first contact
        self.imported: dict[str, str] = {}  # AssociatedRef -> credit note code
        self.notes: dict[str, CreditNote] = {}
        self.credited: dict[tuple[str, str], CreditedSoFar] = {}
        self.outbox: list[Push] = []
        self.rejections: list[str] = []
        self.served_again = 0
        self.catalogue_codes: set[str] = set()  # stock codes (case-folded) pushed to us

    def catalogue_push(self, products: list[Product]) -> None:
        """Queue a StockUpload push of these items (re-sent until answered 200)."""
        self.catalogue_codes.update(p.stock_code.casefold() for p in products)
        items = [
            {
                "StockID": p.stock_id,
                "StockCode": p.stock_code,
                "OtherRef": "",
                "StockDescription": f"Item {p.stock_code}",
                "Barcodes": [],
            }
            for p in products
        ]
        body = json.dumps({"Items": items, "Deleted": []}).encode()
        label = "stock " + ",".join(p.stock_code for p in products)
        self.outbox.append(Push(kind="stock", body=body, label=label))

    def pull(self, ctx: Context) -> tuple[int, int]:
        """One CReturnDownload: (returns served, new ones imported). A lost answer leaves
        the continuation where it was, so the same page comes again."""
        doc, continuation = channel.returns_page(ctx, self.tenant_id, self.continuation, None)
        if faults.buggify("khaos.pull.lost_response"):
            return -1, 0
        served = doc.get("Returns", [])
        new = 0
        for ret in served:
            ref = ret["AssociatedRef"]
            if ref in self.imported:
                self.served_again += 1
                continue
            if self._import(ret):
                new += 1
        self.continuation = continuation
        return len(served), new

    def _import(self, ret: dict[str, Any]) -> bool:
        ref = str(ret["AssociatedRef"])
        problems = []
        if ret.get("URN") != self.urn:
            problems.append(f"unknown URN {ret.get('URN')!r}")
        lines: list[dict[str, Any]] = []
        pending: list[tuple[tuple[str, str], CreditedSoFar]] = []
        net = tax = Decimal(0)
        for item in ret.get("ReturnedItems", []):
            product = self.products.get(str(item["SKU"]).strip().casefold())
            order_ref = str(item["SourceReturnReference"]["SourceOrder"]["AssociatedRef"])
            if product is None:
                problems.append(f"SKU {item['SKU']!r} not found")
                continue
            if str(item["ReturnReason"]["ID"]) not in self.reasons:
                problems.append(f"unknown ReturnReason {item['ReturnReason']['ID']!r}")
            sold = self.orders.get(order_ref, {}).get(product.stock_code, 0)
            key = (order_ref, product.stock_code)
            done = next((d for k, d in pending if k == key), self.credited.get(key))
            qty = int(item["Quantity"])
            invoiced = InvoicedLine(
                quantity=sold,
                unit_net=product.unit_net,
                unit_tax=product.price - product.unit_net,
                currency="GBP",
            )
            try:
                amounts = credit_for(invoiced, qty, done)
            except OverCreditError as exc:
                problems.append(f"{product.stock_code} on {order_ref}: {exc}")
                continue
            prior = done or CreditedSoFar()
            pending.append(
                (
                    key,
                    CreditedSoFar(
                        quantity=prior.quantity + qty,
                        net=prior.net + amounts.net.amount,
                        tax=prior.tax + amounts.tax.amount,
                    ),
                )
            )
            net += amounts.net.amount
            tax += amounts.tax.amount
            lines.append(
                {
                    "SKU": product.stock_code,
                    "StockID": product.stock_id,
                    "Quantity": qty,
                    "Net": amounts.net.amount,
                    "Tax": amounts.tax.amount,
                    "Gross": amounts.gross.amount,
                    "ExtendedDescription": list(item.get("ExtendedDescription", [])),
                }
            )
        if problems or not lines:
            self.rejections.append(f"{ref}: " + "; ".join(problems or ["no lines"]))
            return False
        self.credited.update(dict(pending))
        code = f"CN{len(self.notes) + 1:05d}"
        order_ref = str(
            ret["ReturnedItems"][0]["SourceReturnReference"]["SourceOrder"]["AssociatedRef"]
        )
        note = CreditNote(
            code=code,
            order_id=str(1000 + len(self.notes)),
            associated_ref=ref,
            order_ref=order_ref,
            net=net,
            tax=tax,
            lines=lines,
        )
        self.imported[ref] = code
        self.notes[code] = note
        self.outbox.append(Push(kind="order-status", body=self._status_doc([note]), label=code))
        return True

    def _status_doc(self, notes: list[CreditNote]) -> bytes:
        statuses: list[dict[str, Any]] = [
            {
                "OrderCode": note.code,
                "OrderID": note.order_id,
                "Status": "Complete",
                "AssociatedRef": note.associated_ref,
                "ChannelID": "",
                "OrderType": {"ID": "2", "Name": "Credit Note"},
                "Totals": {
                    "Net": note.net,
                    "Tax": note.tax,
                    "Gross": note.gross,
                    "Currency": "GBP",
                },
                "Lines": note.lines,
            }
            for note in notes
        ]
        if faults.buggify("khaos.push.sales_order_noise"):
            statuses.insert(
                0,
                {
                    "OrderCode": f"SO{len(self.notes):05d}",
                    "OrderID": "7",
                    "Status": "Dispatched",
                    "AssociatedRef": notes[0].order_ref,
                    "OrderType": {"ID": "1", "Name": "Sales Order"},
                },
            )
        return json.dumps({"Statuses": statuses}, default=_json_number).encode()


def _json_number(value: object) -> float:
    if isinstance(value, Decimal):
        number = float(value)
        if Decimal(repr(number)) != value:
            raise ValueError(f"{value} is not exact as a JSON number")
        return number
    raise TypeError(type(value).__name__)


# Gateway


class SimGateway:
    """The tenant's gateway (ports.RefundGateway): FakeGateway's ledger and promises, plus
    seeded failures. `on_apply` sees each refund the moment the gateway creates it."""

    def __init__(self, fake: FakeGateway, on_apply: Callable[[GatewayRefund], None]) -> None:
        self.fake = fake
        self.on_apply = on_apply

    def find_payment(self, order_ref: str) -> Payment | None:
        """The order's payment; may fail transiently."""
        if faults.buggify("gateway.find_payment.transient"):
            raise TransientConnectorError("gateway 500 (simulated)", system="gateway")
        return self.fake.find_payment(order_ref)

    def refunds_for(self, payment_ref: str) -> list[GatewayRefund]:
        """Every refund on the payment; may fail transiently."""
        if faults.buggify("gateway.refunds_for.transient"):
            raise TransientConnectorError("gateway 500 (simulated)", system="gateway")
        return self.fake.refunds_for(payment_ref)

    def refund(
        self,
        payment_ref: str,
        *,
        amount: Money,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> GatewayRefund:
        """Refund once per key; may fail before applying, lose its answer, or outlive us."""
        faults.maybe_crash("gateway.refund.before_call")
        if faults.buggify("gateway.refund.transient"):
            raise TransientConnectorError("gateway 429 (simulated)", system="gateway")
        before = len(self.fake.refunds)
        paid = self.fake.refund(
            payment_ref, amount=amount, idempotency_key=idempotency_key, metadata=metadata
        )
        if len(self.fake.refunds) > before:
            self.on_apply(paid)
        if faults.buggify("gateway.refund.lost_response"):
            raise OutcomeUnknownError(
                "gateway timed out after applying (simulated)", system="gateway"
            )
        # Emulates `faults.maybe_crash(...)` right after `gateway.refund(...)` returns in
        # services/refunds.py, before `_done` records it.
        faults.maybe_crash("gateway.refund.after_apply")
        return paid
