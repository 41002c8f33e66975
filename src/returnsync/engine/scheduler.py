"""Periodic work: the ZigZag polling sweep per tenant."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from returnsync.services import sweep

if TYPE_CHECKING:
    from returnsync.services.context import Context

log = logging.getLogger(__name__)


class Scheduler:
    """Runs the polling sweep for every tenant every `interval` seconds until stopped."""

    def __init__(self, ctx: Context, *, interval: float) -> None:
        self.ctx = ctx
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="scheduler")

    def tick(self) -> int:
        """One sweep of every tenant; returns the number of changes queued."""
        queued = 0
        for tenant_id in self.ctx.tenants:
            try:
                queued += sweep.sweep(self.ctx, tenant_id)
            except Exception:
                log.warning(
                    "poll sweep failed for %s; will retry next tick", tenant_id, exc_info=True
                )
        return queued

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def start(self) -> None:
        """Start the background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        self._thread.join(timeout=10)
