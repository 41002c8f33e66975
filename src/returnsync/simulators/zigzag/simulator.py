"""`ZigZagSimulator`: the ZigZag stand-in as one object, in-process or as a blocking server."""

from __future__ import annotations

from typing import Any

import uvicorn

from returnsync.simulators.runtime import FaultInjector, FaultSpec, ServerThread, SimClock
from returnsync.simulators.zigzag.app import create_app
from returnsync.simulators.zigzag.auth import TokenService
from returnsync.simulators.zigzag.context import SimContext
from returnsync.simulators.zigzag.state import ZigZagState
from returnsync.simulators.zigzag.webhooks import RetryPolicy, WebhookEngine, WebhookFaults

HOST = "127.0.0.1"  # loopback only: the simulator holds demo credentials


class ZigZagSimulator:
    """A real HTTP server standing in for ZigZag, plus its webhook delivery thread.

    - `app`: the ASGI app, wrapped in `FaultInjector` (paths under `/_sim/` are never faulted).
    - `start(port)` serves on 127.0.0.1 and starts webhook delivery; `stop()` ends both.
    - `state_snapshot()` is `GET /_sim/state`: the ground truth tests believe.

    `seed` drives event ids, webhook chaos, request faults and scenarios.
    `day_seconds` is one simulated day for the daily retry sweep, in simulated
    seconds (with a `SimClock` of scale S the sweep comes every day_seconds / S
    real seconds); failures are retried for `retry_days` days; 503/504 are
    retried only with `retry_unlisted_5xx`. Tokens live `token_ttl_seconds` of
    simulated time.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: SimClock | None = None,
        faults: FaultSpec | None = None,
        day_seconds: float = 86400.0,
        retry_days: int = 7,
        retry_unlisted_5xx: bool = False,
        token_ttl_seconds: int = 1800,
    ) -> None:
        self.clock = clock or SimClock()
        self.faults = faults or FaultSpec()
        self.webhook_faults = WebhookFaults()
        self.webhooks = WebhookEngine(
            clock=self.clock,
            policy=RetryPolicy(
                day_seconds=day_seconds,
                retry_days=retry_days,
                retry_unlisted_5xx=retry_unlisted_5xx,
            ),
            faults=self.webhook_faults,
            seed=seed,
        )
        self.state = ZigZagState(clock=self.clock, seed=seed, publish=self.webhooks.publish)
        self.context = SimContext(
            seed=seed,
            clock=self.clock,
            state=self.state,
            tokens=TokenService(clock=self.clock, ttl_seconds=token_ttl_seconds),
            webhooks=self.webhooks,
            faults=self.faults,
            webhook_faults=self.webhook_faults,
        )
        self.app = FaultInjector(create_app(self.context), spec=self.faults, seed=seed)
        self.context.fault_log = self.app.log
        self._server: ServerThread | None = None

    def start(self, port: int = 0) -> ServerThread:
        """Serve on 127.0.0.1:`port` (0: any free port) and start webhook delivery."""
        if self._server is not None:
            raise RuntimeError("the ZigZag simulator is already running")
        self._server = ServerThread(self.app, port=port, host=HOST).start()
        self.webhooks.start()
        return self._server

    def stop(self) -> None:
        """Stop webhook delivery and the server (idempotent)."""
        self.webhooks.stop()
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        """Base URL of the running server, no trailing slash; RuntimeError if not started."""
        if self._server is None:
            raise RuntimeError("the ZigZag simulator is not running")
        return self._server.url

    def state_snapshot(self) -> dict[str, Any]:
        """Everything the simulator holds; the same JSON as `GET /_sim/state`."""
        return self.context.snapshot()


def main(port: int, seed: int = 0, faults: str | None = None) -> None:
    """Serve the simulator on 127.0.0.1:`port` until interrupted (`returnsync sim zigzag`).

    `faults` is a `FaultSpec` string such as `error_5xx=0.1,latency_ms=5:20`.
    """
    simulator = ZigZagSimulator(seed=seed, faults=FaultSpec.parse(faults))
    simulator.webhooks.start()
    try:
        uvicorn.run(simulator.app, host=HOST, port=port, log_level="info")
    finally:
        simulator.webhooks.stop()
