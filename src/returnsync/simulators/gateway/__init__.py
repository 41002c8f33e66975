"""Payment gateway simulator: a Stripe-compatible subset the official SDK can talk to.

    sim = GatewaySimulator(seed=7)
    sim.start()
    client = stripe.StripeClient("sk_test_returnsync", base_addresses={"api": sim.url})
    ...
    sim.stop()

The vendor API (`api.py`) answers the calls of docs/assumptions.md G-1 at Stripe's
paths, with Stripe's idempotency, errors and list objects; the admin API (`admin.py`)
under `/_sim/` seeds payments, makes dashboard refunds and shows the ledger
(`state.py`), which is the ground truth tests count refunds in.
"""

from __future__ import annotations

import random
import string
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI

from returnsync.simulators.gateway import admin, api, envelope
from returnsync.simulators.gateway.state import DEFAULT_API_KEY, GatewaySettings, GatewayState
from returnsync.simulators.runtime import FaultInjector, FaultSpec, ServerThread, SimClock

if TYPE_CHECKING:
    from returnsync.simulators.runtime import ASGIApp

__all__ = ["DEFAULT_API_KEY", "GatewaySettings", "GatewaySimulator", "main"]


class GatewaySimulator:
    """The gateway simulator: its ledger, its ASGI app (fault-injected) and its server."""

    def __init__(
        self, *, seed: int = 0, clock: SimClock | None = None, faults: FaultSpec | None = None
    ) -> None:
        self.clock = clock or SimClock()
        self._faults = faults or FaultSpec()
        self._state = GatewayState(clock=self.clock, seed=seed)
        request_ids = random.Random(f"request-ids:{seed}")
        alphabet = string.ascii_letters + string.digits

        def new_request_id() -> str:
            return "req_" + "".join(request_ids.choices(alphabet, k=14))

        vendor = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        vendor.include_router(admin.router(self))
        vendor.include_router(api.router(self._state))
        self._injector = FaultInjector(vendor, spec=self._faults, seed=seed)
        self.app: ASGIApp = envelope.StripeEnvelope(self._injector, new_request_id)
        self._server: ServerThread | None = None

    @property
    def state(self) -> GatewayState:
        """The ledger (ground truth for tests)."""
        return self._state

    @property
    def faults(self) -> FaultSpec:
        """The live fault spec; changing it takes effect on the next request."""
        return self._faults

    @property
    def settings(self) -> GatewaySettings:
        """Behaviour switches beyond faults (see `GatewaySettings`)."""
        return self._state.settings

    def fault_counts(self) -> dict[str, int]:
        """Faults injected so far, by kind."""
        return dict(self._injector.log.counts)

    def fault_report(self) -> dict[str, Any]:
        """The fault spec (JSON-shaped) and the faults injected so far."""
        spec = self._faults.as_dict()
        spec["latency_ms"] = list(self._faults.latency_ms)
        return {"spec": spec, "injected": self.fault_counts()}

    def state_snapshot(self) -> dict[str, Any]:
        """Everything the gateway holds; the same document as `GET /_sim/state`.

        Keys: `accounts`, `payment_intents`, `refunds`, `idempotency_keys` (the ledger),
        plus `settings` and `faults` (spec and counts injected).
        """
        return {
            **self._state.snapshot(),
            "settings": self._state.settings.as_dict(),
            "faults": self.fault_report(),
        }

    def start(self, port: int = 0) -> ServerThread:
        """Serve on 127.0.0.1 (`port=0`: any free port) in a background thread."""
        if self._server is not None:
            raise RuntimeError("gateway simulator already started")
        self._server = ServerThread(self.app, port=port).start()
        return self._server

    def stop(self) -> None:
        """Stop the background server, if any."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        """Base URL of the running server (pass it as `base_addresses={"api": url}`)."""
        if self._server is None:
            raise RuntimeError("gateway simulator not started")
        return self._server.url


def main(port: int, seed: int = 0, faults: str | None = None) -> None:
    """Serve the gateway simulator on 127.0.0.1:`port` until interrupted."""
    sim = GatewaySimulator(seed=seed, faults=FaultSpec.parse(faults))
    uvicorn.run(sim.app, host="127.0.0.1", port=port, log_level="info", access_log=False)
