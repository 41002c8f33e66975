"""The parts of one ZigZag simulator, as the routes see them (`request.app.state.zigzag`)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from fastapi import Request  # noqa: TC002 - FastAPI reads `context`'s annotation at runtime

from returnsync.simulators.runtime import FaultLog, FaultSpec
from returnsync.simulators.zigzag.auth import TokenService
from returnsync.simulators.zigzag.model import iso
from returnsync.simulators.zigzag.webhooks import WebhookFaults

if TYPE_CHECKING:
    from returnsync.simulators.runtime import SimClock
    from returnsync.simulators.zigzag.catalog import Catalog
    from returnsync.simulators.zigzag.state import ZigZagState
    from returnsync.simulators.zigzag.webhooks import WebhookEngine


@dataclass(kw_only=True)
class SimContext:
    """State, tokens, webhook engine and fault settings of one simulator.

    `faults` is the very `FaultSpec` the `FaultInjector` reads, so patching it
    takes effect on the next request.
    """

    seed: int
    clock: SimClock
    state: ZigZagState
    tokens: TokenService
    webhooks: WebhookEngine
    faults: FaultSpec
    webhook_faults: WebhookFaults
    fault_log: FaultLog = field(default_factory=FaultLog)
    scenario_rng: random.Random = field(init=False)
    _initial_faults: dict[str, Any] = field(init=False)
    _initial_webhook_faults: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        self.scenario_rng = random.Random(f"{self.seed}:scenario")
        self._initial_faults = self.faults.as_dict()
        self._initial_webhook_faults = self.webhook_faults.as_dict()

    @property
    def catalog(self) -> Catalog:
        """The retailers, users and orders (replaced on reset, so read it each time)."""
        return self.state.catalog

    def faults_json(self) -> dict[str, Any]:
        """Request faults and webhook chaos, flat, as `POST /_sim/faults` takes them."""
        return self.faults.as_dict() | self.webhook_faults.as_dict()

    def patch_faults(self, values: dict[str, Any]) -> dict[str, Any]:
        """Apply a flat patch of `FaultSpec` and `WebhookFaults` keys, all or nothing.

        ValueError for an unknown key or a bad value; answers the new settings.
        """
        webhook_keys = WebhookFaults.keys()
        request_part = {k: v for k, v in values.items() if k not in webhook_keys}
        webhook_part = {k: v for k, v in values.items() if k in webhook_keys}
        trial = FaultSpec(**self.faults.as_dict())
        trial.update(request_part)
        WebhookFaults(**self.webhook_faults.as_dict()).update(webhook_part)
        self.faults.update(request_part)
        self.webhook_faults.update(webhook_part)
        return self.faults_json()

    def reset(self) -> None:
        """Back to the state at construction: no data, faults as configured, fresh seeds."""
        self.state.reset()
        self.webhooks.reset()
        self.faults.update(self._initial_faults)
        self.webhook_faults.update(self._initial_webhook_faults)
        self.scenario_rng = random.Random(f"{self.seed}:scenario")
        self.tokens = TokenService(clock=self.clock, ttl_seconds=self.tokens.ttl_seconds)

    def snapshot(self) -> dict[str, Any]:
        """Everything the simulator holds (`GET /_sim/state`)."""
        data = self.state.snapshot()
        return {
            "clock": {"now": iso(self.clock.now()), "scale": self.clock.scale},
            "retailers": data["retailers"],
            "subscriptions": self.webhooks.subscriptions(),
            "orders": data["orders"],
            "returns": data["returns"],
            "events": self.webhooks.events(),
            "deliveries": self.webhooks.deliveries(),
            "webhooks": self.webhooks.stats(),
            "faults": self.faults_json(),
            "faultLog": dict(self.fault_log.counts),
        }


def context(request: Request) -> SimContext:
    """The simulator serving this request (a FastAPI dependency)."""
    return cast("SimContext", request.app.state.zigzag)
