"""ZigZag simulator: a real HTTP server standing in for ZigZag's returns platform.

Vendor API (token, returns list/get, refund outcome, the two published PUTs),
webhooks with ZigZag's retry rules and seeded chaos, and an admin API under
`/_sim/`. The wire contract is docs/assumptions.md Z-1..Z-13. Imports nothing
from returnsync except `returnsync.simulators.runtime`.
"""

from __future__ import annotations

from returnsync.simulators.zigzag.simulator import ZigZagSimulator, main
from returnsync.simulators.zigzag.webhooks import RetryPolicy, WebhookFaults

__all__ = ["RetryPolicy", "WebhookFaults", "ZigZagSimulator", "main"]
