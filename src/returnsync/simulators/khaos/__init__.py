"""Khaos Control Cloud simulator: KCC playing against a retailer's channel endpoints.

KCC pulls customer returns from the channel (`CReturnDownload`, echoing
`Sirion-Continuation`, honouring `SpecificIDs`), imports them under Khaos's rules,
processes them into stock movements and credit notes, and pushes `StockStatuses`,
`StockItems` and `OrderStatuses` back, re-sending whatever was not answered 200.
The state (`GET /_sim/state`) is the ground truth for tests. Written from
`shared/reference/khaos-control.md` and `docs/assumptions.md` (K-1..K-13) only.
"""

from __future__ import annotations

from returnsync.simulators.khaos.faults import ChannelFaults
from returnsync.simulators.khaos.simulator import KhaosSimulator, main

__all__ = ["ChannelFaults", "KhaosSimulator", "main"]
