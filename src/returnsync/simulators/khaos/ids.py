"""Khaos-shaped identifiers, drawn from a seeded generator so that a run replays.

Shapes follow the documented samples: `SOrderID` is a numeric string (`"2075"`),
`SOrderCode` is `SO` plus five digits (`SO02075`), order item IDs are 15-character
base-36-looking strings (`BFDPDC00ZZZW7ZZ`). Return and credit note codes are
`RET%05d` and `CN%05d` (K-8). Credit notes are sales documents (ORDER_TYPE 2), so
they take their `OrderID` from the same sequence as sales orders.
"""

from __future__ import annotations

import random
import string

_BASE36 = string.digits + string.ascii_uppercase


class IdSource:
    """Every identifier one company hands out."""

    def __init__(self, seed: str) -> None:
        self._rng = random.Random(seed)
        self._document = self._rng.randint(1000, 8999)
        self._return_id = self._rng.randint(100, 899)
        self._return_code = 0
        self._credit_code = 0
        self._order_code = self._document
        self._adjust_group = 0
        self._item_ids: set[str] = set()

    def document_id(self) -> str:
        """The next sales document ID (sales orders and credit notes), numeric string."""
        self._document += 1
        return str(self._document)

    def sales_order_code(self) -> str:
        """The next `SOrderCode`."""
        self._order_code += 1
        return f"SO{self._order_code:05d}"

    def order_item_id(self) -> str:
        """A fresh 15-character base-36-looking order item ID."""
        while True:
            candidate = "".join(self._rng.choice(_BASE36) for _ in range(15))
            if candidate not in self._item_ids:
                self._item_ids.add(candidate)
                return candidate

    def customer_return(self) -> tuple[str, str]:
        """The next (`CustomerReturnID`, `CustomerReturnCode`)."""
        self._return_id += 1
        self._return_code += 1
        return str(self._return_id), f"RET{self._return_code:05d}"

    def credit_note_code(self) -> str:
        """The next credit note code."""
        self._credit_code += 1
        return f"CN{self._credit_code:05d}"

    def adjustment_group(self) -> int:
        """The next stock adjustment `GroupID` (one per save)."""
        self._adjust_group += 1
        return self._adjust_group
