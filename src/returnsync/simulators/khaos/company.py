"""One Khaos company: one Khaos customer of ours, one tenant of our service.

The company holds Khaos's records under their Khaos names (reference §5.2): sites,
stock items and levels, customers (URNs), sales orders, return reasons, customer
returns, credit notes, stock adjustment history and import notifications. It also
holds its side of the channel: the cached `EndpointConfig`, the
`Sirion-Continuation` to echo, the outbox of pushes and a log of every pull and push
attempt. All access goes through the simulator's state lock.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from returnsync.simulators.khaos.catalogue import Catalogue, Site
from returnsync.simulators.khaos.ids import IdSource
from returnsync.simulators.khaos.outbox import MAX_PER_PUSH, Outbox

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime

    from returnsync.simulators.khaos.adjustments import Adjustment
    from returnsync.simulators.khaos.credit_notes import CreditNote
    from returnsync.simulators.khaos.endpoint_config import EndpointConfig
    from returnsync.simulators.khaos.returns import CustomerReturn, ReturnReason
    from returnsync.simulators.khaos.sales import SalesOrder
    from returnsync.simulators.runtime import SimClock

LOG_LIMIT = 10_000
CONTINUATION_FORMAT = "%Y-%m-%d %H:%M:%SZ"


def _level_key(entry: tuple[tuple[str, int], object]) -> tuple[str, int]:
    return entry[0]


def iso(moment: datetime) -> str:
    """A timestamp for the state view: ISO 8601 UTC, whole seconds, `Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ChannelSettings:
    """How KCC reaches this company's channel (the KCC channel screen)."""

    config_url: str
    username: str
    password: str
    channel_id: str
    initial_continuation: str
    page_size: int = 100


class Company:
    """A Khaos company's records and its channel state."""

    def __init__(
        self,
        *,
        name: str,
        settings: ChannelSettings,
        sites: list[Site],
        default_site_id: int,
        customers: Iterable[str],
        return_reasons: list[ReturnReason],
        currency: str,
        case_sensitive_codes: bool,
        rounding: str,
        seed: int,
        clock: SimClock,
        wake: Callable[[], None],
    ) -> None:
        self.name = name
        self.settings = settings
        self.currency = currency
        self.rounding = rounding
        self.clock = clock
        self.ids = IdSource(f"{seed}:{name}:ids")
        self.rng = random.Random(f"{seed}:{name}:faults")
        self.sites = {site.SiteID: site for site in sites}
        if default_site_id not in self.sites:
            raise ValueError(f"default site {default_site_id} is not one of the sites")
        self.default_site_id = default_site_id
        self.customers: dict[str, None] = dict.fromkeys(urn.strip() for urn in customers)
        self.return_reasons = {reason.ID: reason for reason in return_reasons}
        self.catalogue = Catalogue(case_sensitive_codes=case_sensitive_codes)
        self.sales_orders: dict[str, SalesOrder] = {}
        self.customer_returns: dict[str, CustomerReturn] = {}
        self.credit_notes: list[CreditNote] = []
        self.adjustments: list[Adjustment] = []
        self.notifications: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self.outbox = Outbox(wake)
        self.pushes: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self.pulls: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self.config: EndpointConfig | None = None
        self.config_fetched_at: datetime | None = None
        self.config_stale = True
        self.continuation = settings.initial_continuation
        self.order_continuation = settings.initial_continuation
        self.pending_specific_ids: list[str] = []

    # -- time and logs ---------------------------------------------------------

    def now(self) -> str:
        """The simulated time now, for records."""
        return iso(self.clock.now())

    def notify(self, kind: str, message: str, associated_ref: str = "") -> None:
        """Record a notification (KCC lists channel import problems under Notifications)."""
        self.notifications.append(
            {"at": self.now(), "kind": kind, "AssociatedRef": associated_ref, "message": message}
        )

    # -- lookups ---------------------------------------------------------------

    def return_by_ref(self, associated_ref: str) -> CustomerReturn | None:
        """The return imported with this AssociatedRef (any state)."""
        return next(
            (r for r in self.customer_returns.values() if r.AssociatedRef == associated_ref), None
        )

    def order_by(self, *, field: str, value: str) -> SalesOrder | None:
        """The sales order whose `AssociatedRef`, `SOrderID` or `SOrderCode` is `value`."""
        for order in self.sales_orders.values():
            if getattr(order, field) == value:
                return order
        return None

    def order_by_item(self, order_item_id: str) -> SalesOrder | None:
        """The sales order holding the item with this OrderItemID."""
        for order in self.sales_orders.values():
            if order.item(order_item_id) is not None:
                return order
        return None

    def site_for(self, data_item: dict[str, Any]) -> Site | None:
        """The site a `Site` DataItem names (by ID, or by Name, case-insensitive)."""
        raw_id = str(data_item.get("ID", "")).strip()
        if raw_id:
            return self.sites.get(int(raw_id)) if raw_id.isdigit() else None
        name = str(data_item.get("Name", data_item.get("Code", ""))).strip().casefold()
        return next((s for s in self.sites.values() if s.Name.casefold() == name), None)

    # -- pushes ----------------------------------------------------------------

    def push_stock_statuses(self, keys: Iterable[tuple[str, int]]) -> None:
        """Queue `StockStatuses` for these (StockID, SiteID), at most 100 per push."""
        statuses = []
        for stock_id, site_id in dict.fromkeys(keys):
            item = self.catalogue.items.get(stock_id)
            if item is None:
                continue
            status: dict[str, Any] = {
                "StockCode": item.StockCode,
                "StockID": item.StockID,
                "SiteID": site_id,
            }
            if item.StockControlled:
                level = self.catalogue.level(stock_id, site_id)
                status["Levels"] = {"Available": level.Available, "OnOrder": level.OnOrder}
            statuses.append(status)
        for start in range(0, len(statuses), MAX_PER_PUSH):
            chunk = statuses[start : start + MAX_PER_PUSH]
            self.outbox.put("StockStatuses", {"Statuses": chunk}, len(chunk), self.now())

    def push_stock_items(self, stock_ids: Iterable[str]) -> None:
        """Queue `StockItems` for these items, at most 100 per push."""
        items = [self.catalogue.items[s].wire() for s in dict.fromkeys(stock_ids)]
        for start in range(0, len(items), MAX_PER_PUSH):
            chunk = items[start : start + MAX_PER_PUSH]
            self.outbox.put("StockItems", {"Items": chunk, "Deleted": []}, len(chunk), self.now())

    def push_credit_note(self, credit_note: CreditNote) -> None:
        """Queue the `OrderStatuses` push announcing a credit note (K-9).

        KCC only sends statuses for documents that came from the channel, so a manual
        credit note without an AssociatedRef is never pushed.
        """
        if not credit_note.AssociatedRef:
            return
        status = credit_note.order_status(self.settings.channel_id)
        self.outbox.put("OrderStatuses", {"Statuses": [status]}, 1, self.now())

    # -- state view ------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything the company holds, JSON-ready (Decimals stay Decimals)."""
        catalogue = self.catalogue
        levels = [
            {
                "StockID": stock_id,
                "StockCode": catalogue.items[stock_id].StockCode,
                "SiteID": site_id,
                "Available": level.Available,
                "OnOrder": level.OnOrder,
            }
            for (stock_id, site_id), level in sorted(catalogue.levels.items(), key=_level_key)
            if stock_id in catalogue.items
        ]
        return {
            "name": self.name,
            "channel_id": self.settings.channel_id,
            "currency": self.currency,
            "default_site_id": self.default_site_id,
            "sites": [site.wire() for site in self.sites.values()],
            "customers": list(self.customers),
            "return_reasons": [reason.wire() for reason in self.return_reasons.values()],
            "stock_items": [item.wire() for item in catalogue.items.values()],
            "stock_levels": levels,
            "sales_orders": [order.wire(self.rounding) for order in self.sales_orders.values()],
            "customer_returns": [r.wire() for r in self.customer_returns.values()],
            "credit_notes": [note.wire() for note in self.credit_notes],
            "adjustments": [adjustment.wire() for adjustment in self.adjustments],
            "notifications": list(self.notifications),
            "config": self.config.wire() if self.config else None,
            "config_fetched_at": iso(self.config_fetched_at) if self.config_fetched_at else "",
            "continuation": self.continuation,
            "pulls": list(self.pulls),
            "pushes": list(self.pushes),
            "outbox": self.outbox.wire(),
        }
