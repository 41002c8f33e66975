"""What every simulator shares: a real HTTP server in a thread, a scaled clock, seeded faults.

This module is shared by the three simulators only. Our adapters never import it
(nor anything under `returnsync.simulators`): each side is written from the vendor
documentation on its own.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

import uvicorn

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SimClock:
    """Wall clock running `scale` times faster than real time from `start`.

    A scale of 1440 makes a simulated day last one real minute, so ZigZag's
    "daily retry for 7 days" plays out in seconds.
    """

    def __init__(self, *, start: datetime | None = None, scale: float = 1.0) -> None:
        self._start = start or datetime.now(UTC)
        self._real0 = time.monotonic()
        self.scale = scale
        self._lock = threading.Lock()
        self._offset = timedelta(0)

    def now(self) -> datetime:
        """The simulated time now (timezone-aware UTC)."""
        elapsed = (time.monotonic() - self._real0) * self.scale
        with self._lock:
            return self._start + timedelta(seconds=elapsed) + self._offset

    def advance(self, delta: timedelta) -> None:
        """Jump the simulated clock forward (admin action; never backwards)."""
        with self._lock:
            self._offset += delta

    def real_seconds(self, simulated_seconds: float) -> float:
        """How long `simulated_seconds` of simulated time takes in real seconds."""
        return simulated_seconds / self.scale


@dataclass
class FaultSpec:
    """Fault rates for one simulator (each a probability per request, 0..1).

    - `error_5xx`: answer 500/502/503 without touching state.
    - `timeout`: hang `hang_seconds`, then answer 504 without touching state.
    - `rate_limit_per_second`: above this many requests per second answer 429
      with `Retry-After` (0 disables).
    - `lost_response`: the request is applied, then the response is lost (the
      caller sees a failed request and cannot tell whether it was applied).
    - `latency_ms`: (min, max) uniform extra latency on every request.
    """

    error_5xx: float = 0.0
    timeout: float = 0.0
    lost_response: float = 0.0
    rate_limit_per_second: float = 0.0
    retry_after_seconds: int = 1
    hang_seconds: float = 0.5
    latency_ms: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def parse(cls, spec: str | None) -> FaultSpec:
        """Parse `error_5xx=0.1,timeout=0.05,latency_ms=5:20` (the `--faults` flag)."""
        faults = cls()
        if not spec:
            return faults
        for part in spec.split(","):
            if not part.strip():
                continue
            key, _, raw = part.partition("=")
            key = key.strip()
            if not hasattr(faults, key):
                raise ValueError(f"unknown fault {key!r}; known: {sorted(asdict(faults))}")
            if key == "latency_ms":
                low, _, high = raw.partition(":")
                faults.latency_ms = (float(low), float(high or low))
            elif key == "retry_after_seconds":
                faults.retry_after_seconds = int(raw)
            else:
                setattr(faults, key, float(raw))
        return faults

    def update(self, values: dict[str, Any]) -> None:
        """Apply a JSON patch from `POST /_sim/faults`; unknown keys raise ValueError."""
        for key, value in values.items():
            if not hasattr(self, key):
                raise ValueError(f"unknown fault {key!r}")
            if key == "latency_ms":
                low, high = value
                self.latency_ms = (float(low), float(high))
            elif key == "retry_after_seconds":
                self.retry_after_seconds = int(value)
            else:
                setattr(self, key, float(value))

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return asdict(self)


@dataclass
class FaultLog:
    """Counts of faults injected, for the chaos summary."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str) -> None:
        """Count one injected fault."""
        self.counts[kind] = self.counts.get(kind, 0) + 1


class FaultInjector:
    """ASGI middleware injecting the faults of a `FaultSpec`, drawn from one seeded RNG.

    Paths under `/_sim/` are never faulted: the admin API is the test's ground truth.
    """

    def __init__(self, app: ASGIApp, *, spec: FaultSpec, seed: int = 0) -> None:
        self.app = app
        self.spec = spec
        self.log = FaultLog()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._window_start = time.monotonic()
        self._window_count = 0

    def _draw(self) -> float:
        with self._lock:
            return self._rng.random()

    def _over_rate(self) -> bool:
        limit = self.spec.rate_limit_per_second
        if limit <= 0:
            return False
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= 1.0:
                self._window_start, self._window_count = now, 0
            self._window_count += 1
            return self._window_count > limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, maybe faulting it."""
        if scope["type"] != "http" or str(scope.get("path", "")).startswith("/_sim"):
            await self.app(scope, receive, send)
            return
        spec = self.spec
        low, high = spec.latency_ms
        if high > 0:
            await asyncio.sleep(self._rng.uniform(low, high) / 1000)
        if self._over_rate():
            self.log.add("rate_limited")
            await _respond(
                send, 429, {"error": "rate limited"}, retry_after=spec.retry_after_seconds
            )
            return
        if self._draw() < spec.error_5xx:
            self.log.add("error_5xx")
            status = (500, 502, 503)[int(self._draw() * 3)]
            await _respond(send, status, {"error": "simulated server error"})
            return
        if self._draw() < spec.timeout:
            self.log.add("timeout")
            await asyncio.sleep(spec.hang_seconds)
            await _respond(send, 504, {"error": "simulated timeout"})
            return
        if self._draw() < spec.lost_response:
            self.log.add("lost_response")

            async def swallow(_message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            await asyncio.sleep(spec.hang_seconds)
            await _respond(send, 502, {"error": "simulated lost response"})
            return
        await self.app(scope, receive, send)


async def _respond(send: Send, status: int, body: dict[str, Any], retry_after: int = 0) -> None:
    raw = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    if retry_after:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """Run an ASGI app under uvicorn on 127.0.0.1 in a daemon thread (a real HTTP server)."""

    def __init__(self, app: ASGIApp, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port()
        config = uvicorn.Config(
            app, host=host, port=self.port, log_level="warning", access_log=False, lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name=f"http:{port}")

    @property
    def url(self) -> str:
        """Base URL, no trailing slash."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> Self:
        """Start and wait until the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
