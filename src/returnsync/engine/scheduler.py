"""Periodic work: the ZigZag polling sweep and the reconciliation monitor, per tenant."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from returnsync.services import monitor, sweep

if TYPE_CHECKING:
    from returnsync.services.context import Context

log = logging.getLogger(__name__)


class Scheduler:
    """Runs the polling sweep every `interval` seconds and the reconciliation monitor every
    `monitor_interval` seconds (0: never), for every tenant, until stopped. Each has its own
    thread: a full monitor pass reads every credited return's payment from the gateway and
    takes minutes on a large backlog, which must not hold back the sweep."""

    def __init__(self, ctx: Context, *, interval: float, monitor_interval: float = 0.0) -> None:
        self.ctx = ctx
        self.interval = interval
        self.monitor_interval = monitor_interval
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._sweeps, daemon=True, name="scheduler")]
        if monitor_interval:
            self._threads.append(
                threading.Thread(target=self._monitors, daemon=True, name="monitor")
            )

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

    def reconcile(self, *, full: bool | None = None) -> list[monitor.MonitorRun]:
        """One monitor run for every tenant (`full`: see `monitor.run`)."""
        runs = []
        for tenant_id in self.ctx.tenants:
            try:
                runs.append(monitor.run(self.ctx, tenant_id, full=full))
            except Exception:
                log.warning(
                    "reconciliation failed for %s; next run retries", tenant_id, exc_info=True
                )
        return runs

    def _sweeps(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def _monitors(self) -> None:
        while not self._stop.wait(self.monitor_interval):
            self.reconcile()

    def start(self) -> None:
        """Start the background threads."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the background threads (a monitor run in progress finishes first, up to 10 s)."""
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=10)
