"""Periodic work: the ZigZag polling sweep per tenant."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from returnsync.services import monitor, sweep

if TYPE_CHECKING:
    from returnsync.services.context import Context

log = logging.getLogger(__name__)


class Scheduler:
    """Runs the polling sweep every `interval` seconds and the reconciliation monitor every
    `monitor_interval` seconds, for every tenant, until stopped."""

    def __init__(self, ctx: Context, *, interval: float, monitor_interval: float = 0.0) -> None:
        self.ctx = ctx
        self.interval = interval
        self.monitor_interval = monitor_interval
        self._last_monitor = 0.0
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

    def reconcile(self) -> list[monitor.MonitorRun]:
        """One monitor run for every tenant."""
        runs = []
        for tenant_id in self.ctx.tenants:
            try:
                runs.append(monitor.run(self.ctx, tenant_id))
            except Exception:
                log.warning(
                    "reconciliation failed for %s; next run retries", tenant_id, exc_info=True
                )
        return runs

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()
            now = time.monotonic()
            if self.monitor_interval and now - self._last_monitor >= self.monitor_interval:
                self._last_monitor = now
                self.reconcile()

    def start(self) -> None:
        """Start the background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        self._thread.join(timeout=10)
