"""The retailer side of ZigZag: accounts, API users, the order feed and the published PUTs.

`Catalog` shares the lock of the `ZigZagState` that owns it, so a return and
the order it draws on are always read together.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from returnsync.simulators.zigzag.errors import FieldError, conflict, not_found
from returnsync.simulators.zigzag.model import Order, Retailer

if TYPE_CHECKING:
    import threading
    from collections.abc import Sequence

    from returnsync.simulators.zigzag.commands import StockRow


class Catalog:
    """Retailers (each with one API user), their dispatched orders and pushed feeds.

    Thread-safe through the lock it is given. Methods raise `ZigZagError`
    (404/409) and change nothing when they do.
    """

    def __init__(self, *, lock: threading.RLock) -> None:
        self._lock = lock
        self._retailers: dict[str, Retailer] = {}
        self._users: dict[str, str] = {}
        self._orders: dict[tuple[str, str], Order] = {}

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

    def order(self, retailer_code: str, order_number: str) -> Order:
        """One order; 404 if unknown."""
        with self._lock:
            return self._order(retailer_code, order_number)

    def _order(self, retailer_code: str, order_number: str) -> Order:
        order = self._orders.get((retailer_code, order_number))
        if order is None:
            raise not_found(f"order {order_number!r} not found for retailer {retailer_code!r}")
        return order

    def known_skus(self, retailer_code: str) -> set[str]:
        """SKUs of the retailer's catalogue (every SKU on a registered order)."""
        with self._lock:
            return {line.sku for order in self.orders(retailer_code) for line in order.lines}

    # -- the two published PUTs ------------------------------------------------------

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

    def snapshot(self) -> dict[str, Any]:
        """Retailers (without passwords) and orders, for `GET /_sim/state`."""
        with self._lock:
            return {
                "retailers": [r.to_json() for r in self._retailers.values()],
                "orders": [o.to_json() for o in self._orders.values()],
            }
