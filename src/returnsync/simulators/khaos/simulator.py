"""The Khaos Control Cloud simulator: companies, their channel sessions, the admin server.

KCC is mostly an HTTP *client* of the channel (our service): it pulls returns and
pushes statuses. The simulator therefore runs one `ChannelSession` worker per
company and serves only its own admin API under `/_sim/`.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import asdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from returnsync.simulators.khaos.admin import build_admin_app
from returnsync.simulators.khaos.channel import Cadence, ChannelSession
from returnsync.simulators.khaos.company import CONTINUATION_FORMAT, ChannelSettings, Company
from returnsync.simulators.khaos.errors import OperationError
from returnsync.simulators.khaos.faults import ChannelFaults, split_fault_spec, update_faults
from returnsync.simulators.khaos.vat import ROUNDING_MODES
from returnsync.simulators.khaos.wire import dumps
from returnsync.simulators.runtime import FaultInjector, FaultSpec, ServerThread, SimClock

if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractContextManager

    from returnsync.simulators.khaos.catalogue import Site
    from returnsync.simulators.khaos.returns import ReturnReason


class KhaosSimulator:
    """Khaos Control Cloud playing against one channel per company.

    - `seed` drives identifiers and client-side fault draws (a run replays).
    - `clock` gives the simulated time of records, the first-contact continuation
      and the 24-hour config cache; by default it runs at `60 / minute_seconds`.
    - `faults` are the HTTP faults of the admin server (whose `/_sim/` paths are
      never faulted); client-side faults are `channel_faults` (`POST /_sim/faults`).
    - `minute_seconds` is how many real seconds a KCC minute (the `Frequency` unit)
      lasts; push backoff seconds are scaled alike.
    - `case_sensitive_codes` switches K-12 SKU matching to case-sensitive.
    - `rounding` is `per_line` (K-10) or `per_invoice`.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: SimClock | None = None,
        faults: FaultSpec | None = None,
        minute_seconds: float = 60.0,
        case_sensitive_codes: bool = False,
        rounding: str = "per_line",
    ) -> None:
        if rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding must be one of {ROUNDING_MODES}, got {rounding!r}")
        self.seed = seed
        self.cadence = Cadence(minute_seconds)
        self.clock = clock or SimClock(scale=60.0 / minute_seconds)
        self.faults = faults or FaultSpec()
        self.channel_faults = ChannelFaults()
        self.case_sensitive_codes = case_sensitive_codes
        self.rounding = rounding
        self._initial_faults = (asdict(self.faults), self.channel_faults.as_dict())
        self._lock = threading.RLock()
        self._companies: dict[str, Company] = {}
        self._sessions: dict[str, ChannelSession] = {}
        self._server: ServerThread | None = None
        self._running = False
        self.app = FaultInjector(build_admin_app(self), spec=self.faults, seed=seed)

    # -- lifecycle -------------------------------------------------------------

    def start(self, port: int = 0) -> ServerThread:
        """Start the admin server and a channel worker per company."""
        if self._server is not None:
            return self._server
        self._server = ServerThread(self.app, port=port).start()
        with self._lock:
            self._running = True
            sessions = list(self._sessions.values())
        for session in sessions:
            session.start()
        return self._server

    def stop(self) -> None:
        """Stop the workers and the admin server; the state stays readable."""
        with self._lock:
            self._running = False
            sessions = list(self._sessions.values())
        for session in sessions:
            session.stop()
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        """Base URL of the admin server (after `start`)."""
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return self._server.url

    # -- state -----------------------------------------------------------------

    def locked(self) -> AbstractContextManager[Any]:
        """The state lock (re-entrant): hold it while reading or changing companies."""
        return self._lock

    def state(self) -> dict[str, Any]:
        """Everything held, JSON-ready with Decimals (`GET /_sim/state`)."""
        with self._lock:
            return {
                "companies": {name: c.snapshot() for name, c in self._companies.items()},
                "faults": {
                    "http": _settings(self.faults.as_dict()),
                    "channel": _settings(self.channel_faults.as_dict()),
                },
            }

    def state_snapshot(self) -> dict[str, Any]:
        """The same document as `GET /_sim/state`, as parsed JSON (numbers are floats)."""
        parsed: dict[str, Any] = json.loads(dumps(self.state()))
        return parsed

    def companies(self) -> Iterator[Company]:
        """The companies (call while holding `locked()`)."""
        return iter(list(self._companies.values()))

    def company(self, name: str) -> Company:
        """A company by name (404 when unknown)."""
        with self._lock:
            found = self._companies.get(name)
        if found is None:
            raise OperationError(f"unknown company {name!r}", status=404)
        return found

    def session(self, name: str) -> ChannelSession:
        """A company's channel session (404 when unknown)."""
        with self._lock:
            found = self._sessions.get(name)
        if found is None:
            raise OperationError(f"unknown company {name!r}", status=404)
        return found

    def create_company(
        self,
        *,
        name: str,
        settings: ChannelSettings,
        sites: list[Site],
        default_site_id: int,
        customers: list[str],
        return_reasons: list[ReturnReason],
        currency: str,
    ) -> Company:
        """Add a company and start talking to its channel (fetch the config at once)."""
        with self._lock:
            if name in self._companies:
                raise OperationError(f"company {name!r} already exists", status=409)
            holder: list[ChannelSession] = []
            company = Company(
                name=name,
                settings=settings,
                sites=sites,
                default_site_id=default_site_id,
                customers=customers,
                return_reasons=return_reasons,
                currency=currency,
                case_sensitive_codes=self.case_sensitive_codes,
                rounding=self.rounding,
                seed=self.seed,
                clock=self.clock,
                wake=lambda: holder[0].wake() if holder else None,
            )
            session = ChannelSession(
                company, state_lock=self._lock, faults=self.channel_faults, cadence=self.cadence
            )
            holder.append(session)
            self._companies[name] = company
            self._sessions[name] = session
            running = self._running
        if running:
            session.start()
        return company

    def first_contact(self) -> str:
        """The continuation KCC sends on first contact: the datetime now."""
        return self.clock.now().strftime(CONTINUATION_FORMAT)

    def sync_now(self, company: str | None = None) -> None:
        """Run one pull/push cycle now for one company, or for all of them in name order."""
        if company is not None:
            self.session(company).sync()
            return
        with self._lock:
            sessions = [self._sessions[name] for name in sorted(self._sessions)]
        for session in sessions:
            session.sync()

    def update_faults(self, values: dict[str, Any]) -> None:
        """Apply a `POST /_sim/faults` body (ValueError on unknown keys)."""
        with self._lock:
            update_faults(self.faults, self.channel_faults, values)

    def reset(self) -> None:
        """Forget every company and restore the faults given at construction."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
            self._companies.clear()
            http, channel = self._initial_faults
            for key, value in http.items():
                setattr(self.faults, key, value)
            for key, value in channel.items():
                setattr(self.channel_faults, key, value)
        for session in sessions:
            session.close()


def _settings(values: dict[str, Any]) -> dict[str, Any]:
    """Fault settings for the wire: floats become Decimals (the encoder refuses floats)."""

    def plain(value: Any) -> Any:
        if isinstance(value, float):
            return Decimal(repr(value))
        if isinstance(value, tuple | list):
            return [plain(item) for item in value]
        return value

    return {key: plain(value) for key, value in values.items()}


def main(port: int, seed: int = 0, faults: str | None = None) -> None:
    """Run the simulator until interrupted (`returnsync sim khaos`).

    `faults` may mix admin-server keys (`error_5xx=0.1`) and channel keys
    (`push_duplicate=0.2,push_timeout_seconds=2`).
    """
    http, channel = split_fault_spec(faults)
    simulator = KhaosSimulator(seed=seed, faults=http)
    simulator.channel_faults.update(channel.as_dict())
    simulator.start(port)
    sys.stdout.write(f"Khaos Control Cloud simulator on {simulator.url} (admin under /_sim/)\n")
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
