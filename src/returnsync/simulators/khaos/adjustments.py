"""Stock adjustment history (reference §2.3).

Khaos lists adjustments under `[ Stock | Stock Adjustments | History ]`; everything
saved together shares a `GroupID`. A line adjusts *by* a quantity (the simulator
never adjusts *to*). Structured reason codes are optional; the suggested ones are
DAMAGED, EXPIRED, FAULTY, OBSOLETE, REFURBISH, SAMPLE and VARIANCE. Stock moved
by processing a customer return is recorded here too, with the return code in
`Note` and no reason code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decimal import Decimal

SUGGESTED_REASON_CODES = (
    "DAMAGED",
    "EXPIRED",
    "FAULTY",
    "OBSOLETE",
    "REFURBISH",
    "SAMPLE",
    "VARIANCE",
)


@dataclass(frozen=True)
class Adjustment:
    """One line of stock adjustment history."""

    GroupID: int
    StockID: str
    StockCode: str
    SiteID: int
    AdjustBy: Decimal
    ReasonCode: str
    Note: str
    Date: str
    User: str
    Source: str

    def wire(self) -> dict[str, Any]:
        """State view."""
        return {
            "GroupID": self.GroupID,
            "StockID": self.StockID,
            "StockCode": self.StockCode,
            "SiteID": self.SiteID,
            "AdjustBy": self.AdjustBy,
            "ReasonCode": self.ReasonCode,
            "Note": self.Note,
            "Date": self.Date,
            "User": self.User,
            "Source": self.Source,
        }
