"""A realistic small month of data for several retailers, generated from one seed. Pure.

Per retailer: a Khaos catalogue, dispatched web orders (known to ZigZag, to Khaos as sales
orders, and to the gateway as payments), a few SKUs the web store renamed so they no
longer match any Khaos stock code, and one goodwill refund a CX agent paid by hand.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

VAT_RATE = Decimal("0.20")
PRODUCTS = ("TEE", "HOODIE", "JEANS", "JACKET", "SOCKS", "CAP", "SCARF", "DRESS", "SHORTS")
COLOURS = ("BLK", "WHT", "NVY", "RED", "GRN")
SIZES = ("S", "M", "L", "XL")
PRICES = ("9.99", "14.50", "19.99", "24.99", "34.00", "49.95", "64.99", "89.00")
FIRST = ("Ada", "Alan", "Grace", "Tim", "Mary", "Dennis", "Karen", "Linus", "Sophie", "Ken")
LAST = ("Lovelace", "Turing", "Hopper", "Berners-Lee", "Somerville", "Ritchie", "Jones")


@dataclass(frozen=True, slots=True, kw_only=True)
class Product:
    """A stock item: Khaos knows it by `stock_code`; the web store (and ZigZag) by `sku`."""

    stock_id: str
    stock_code: str
    sku: str
    gross: Decimal  # VAT-inclusive unit price

    @property
    def unit_net(self) -> Decimal:
        """Unit net kept unrounded (4 dp), as an ERP holds it."""
        return (self.gross / (1 + VAT_RATE)).quantize(Decimal("0.0001"), ROUND_HALF_UP)

    @property
    def unit_tax(self) -> Decimal:
        """Unit VAT, unrounded."""
        return self.gross - self.unit_net


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """A dispatched web order."""

    number: str
    customer: dict[str, str]
    lines: tuple[tuple[Product, int], ...]

    @property
    def gross(self) -> Decimal:
        """What the customer paid."""
        return sum((p.gross * q for p, q in self.lines), Decimal("0.00"))


@dataclass(kw_only=True)
class RetailerData:
    """Everything one retailer's systems hold at the start of the month."""

    tenant: str
    name: str
    retailer_code: str
    products: list[Product] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    renamed_skus: list[str] = field(default_factory=list)
    goodwill_order: str = ""


def generate(
    *, seed: int, tenants: int = 3, orders_per_tenant: int = 120, renamed: int = 2
) -> list[RetailerData]:
    """Build the month for `tenants` retailers."""
    rng = random.Random(seed)
    names = ("Acme Outdoor", "Northwind Apparel", "Brightside Kids", "Harbour & Co", "Fell Runner")
    out = []
    for n in range(tenants):
        data = RetailerData(
            tenant=f"retailer-{n + 1}",
            name=names[n % len(names)],
            retailer_code=f"GL{100 + n}",
        )
        codes = [f"{p}-{c}-{s}" for p in PRODUCTS for c in COLOURS for s in SIZES]
        rng.shuffle(codes)
        for i, code in enumerate(codes[:40]):
            data.products.append(
                Product(
                    stock_id=str(6000 + 100 * n + i),
                    stock_code=code,
                    sku=code,
                    gross=Decimal(rng.choice(PRICES)),
                )
            )
        # The web store renamed a few SKUs; Khaos still has the old stock codes.
        for i in rng.sample(range(len(data.products)), renamed):
            old = data.products[i]
            data.products[i] = Product(
                stock_id=old.stock_id,
                stock_code=old.stock_code,
                sku=f"{old.stock_code}-V2",
                gross=old.gross,
            )
            data.renamed_skus.append(data.products[i].sku)
        for k in range(orders_per_tenant):
            picks = rng.sample(data.products, rng.choice((1, 1, 1, 2, 2, 3)))
            data.orders.append(
                Order(
                    number=f"{data.retailer_code}-ORD-{10001 + k}",
                    customer={
                        "email": f"customer{k}@example.com",
                        "firstName": rng.choice(FIRST),
                        "lastName": rng.choice(LAST),
                    },
                    lines=tuple((p, rng.choice((1, 1, 2, 3))) for p in picks),
                )
            )
        data.goodwill_order = data.orders[0].number if n == 0 else ""
        out.append(data)
    return out
