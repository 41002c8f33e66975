"""ZigZag's webhook delivery: in order, at least once, retried daily for 7 days (Z-9..Z-12).

One thread POSTs events to the retailer's subscribed URL in the order they
were published, with the header `X-ZigZag-Api-Key` (Z-10) and a 5 s timeout.
A 2xx answer delivers the event. A failure in ZigZag's list (400, 401, 403,
405, 408, 500, 502, or no response at all) waits for the daily sweep, which
re-sends every such failure younger than `retry_days` (the same `eventId` and
body) and abandons older ones; any other status (404, 409, 422, 429, 503, 504)
is final unless `retry_unlisted_5xx` makes 503/504 retryable (Z-11).

The sweep runs every `day_seconds` of simulated time, so a fast `SimClock` or
`/_sim/advance_clock` brings it in real seconds. Chaos (`WebhookFaults`) is
decided per event when it is published, from an RNG seeded by the simulator's
seed, so a run replays. Events are never discarded under load: the queue is
unbounded and drains as fast as the receiver answers. Delivery is one thread
for all retailers, so a receiver that hangs delays everyone by up to the
timeout per attempt (ordering is worth more here than throughput).
"""

from __future__ import annotations

import heapq
import json
import random
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import httpx

from returnsync.simulators.zigzag.model import iso

if TYPE_CHECKING:
    from returnsync.simulators.runtime import SimClock

#: Statuses ZigZag re-sends (its documented list); no response at all is retried too.
RETRIED_STATUSES = frozenset({400, 401, 403, 405, 408, 500, 502})
#: 5xx statuses missing from ZigZag's list; retried only with `retry_unlisted_5xx`.
UNLISTED_5XX = frozenset({503, 504})
DELIVERY_TIMEOUT_SECONDS = 5.0  # per POST, connect to last byte
API_KEY_HEADER = "X-ZigZag-Api-Key"
USER_AGENT = "ZigZag-Webhooks (returnsync simulator)"
#: Real seconds a held-back (`reorder`) event waits for a successor before going anyway.
REORDER_RELEASE_SECONDS = 0.2
#: Real seconds the idle thread sleeps at most, so a clock moved behind its back is noticed.
IDLE_POLL_SECONDS = 0.25


@dataclass
class WebhookFaults:
    """Chaos on webhook delivery; each a probability per event, 0..1.

    - `duplicate`: the event is POSTed twice in a row (same eventId).
    - `reorder`: the event is held back and sent after the next event (any return).
    - `late`: the event's first attempt waits one simulated day.
    - `drop`: the first attempt counts as "no response" without being sent, so
      only the daily retry (or the retailer's polling) brings it.
    """

    duplicate: float = 0.0
    reorder: float = 0.0
    late: float = 0.0
    drop: float = 0.0

    @classmethod
    def keys(cls) -> frozenset[str]:
        """The names `POST /_sim/faults` accepts for webhook chaos."""
        return frozenset(f.name for f in fields(cls))

    def update(self, values: dict[str, Any]) -> None:
        """Apply a patch; ValueError (and no change) for an unknown key or a rate outside 0..1."""
        parsed: dict[str, float] = {}
        for key, value in values.items():
            if key not in self.keys():
                raise ValueError(f"unknown webhook fault {key!r}")
            rate = float(value)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{key} must be between 0 and 1")
            parsed[key] = rate
        for key, rate in parsed.items():
            setattr(self, key, rate)

    def as_dict(self) -> dict[str, float]:
        """JSON-friendly view."""
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Which failures are re-sent, and for how long (Z-11, Z-12)."""

    day_seconds: float = 86400.0
    retry_days: int = 7
    retry_unlisted_5xx: bool = False

    @property
    def day(self) -> timedelta:
        """One simulated day."""
        return timedelta(seconds=self.day_seconds)

    @property
    def window(self) -> timedelta:
        """Failures at least this old are abandoned at the next sweep."""
        return self.day * self.retry_days

    def retryable(self, status: int | None) -> bool:
        """Whether a failed attempt with this status (None: no response) is re-sent."""
        if status is None or status in RETRIED_STATUSES:
            return True
        return self.retry_unlisted_5xx and status in UNLISTED_5XX


@dataclass(frozen=True, kw_only=True)
class Subscription:
    """A retailer's webhook endpoint and the key ZigZag presents to it."""

    retailer_code: str
    url: str
    api_key: str

    def to_json(self) -> dict[str, Any]:
        """Admin view."""
        return {"retailerCode": self.retailer_code, "url": self.url, "apiKey": self.api_key}


class DeliveryState(StrEnum):
    """Where one event stands with its receiver."""

    PENDING = "pending"
    """Queued for its first attempt."""
    LATE = "late"
    """Held back one simulated day (chaos `late`)."""
    HELD = "held"
    """Held back until the next event has gone (chaos `reorder`)."""
    DELIVERED = "delivered"
    """An attempt was answered 2xx."""
    RETRYING = "retrying"
    """Failed in a retried way; waiting for the daily sweep."""
    RETRY_QUEUED = "retry_queued"
    """Picked by a sweep; its retry is queued."""
    FAILED = "failed"
    """Failed with a status ZigZag does not retry."""
    ABANDONED = "abandoned"
    """Still failing once older than the retry window."""
    UNSUBSCRIBED = "unsubscribed"
    """The retailer had no endpoint when the event was due."""


@dataclass(frozen=True, kw_only=True)
class Chaos:
    """The chaos drawn for one event at publication."""

    duplicate: bool = False
    reorder: bool = False
    late: bool = False
    drop: bool = False


@dataclass(kw_only=True)
class OutboundEvent:
    """One published event and its delivery bookkeeping; the body never changes."""

    sequence: int
    generation: int
    envelope: dict[str, Any]
    body: bytes
    chaos: Chaos
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    first_failure_at: datetime | None = None
    was_held: bool = False
    held_since: float = 0.0

    @property
    def retailer_code(self) -> str:
        """The retailer whose endpoint receives it."""
        return str(self.envelope["retailerCode"])

    def to_json(self) -> dict[str, Any]:
        """Admin view: the envelope's ids, delivery state, and the envelope itself as POSTed."""
        summary = {k: v for k, v in self.envelope.items() if k != "data"}
        return summary | {
            "sequence": self.sequence,
            "deliveryState": self.state.value,
            "attempts": self.attempts,
            "firstFailureAt": iso(self.first_failure_at) if self.first_failure_at else None,
            "chaos": asdict(self.chaos),
            "envelope": self.envelope,
        }


@dataclass(frozen=True, kw_only=True)
class _Job:
    event: OutboundEvent
    retry: bool
    subscription: Subscription


@dataclass(frozen=True, kw_only=True)
class _Attempt:
    kind: str  # "first", "duplicate" or "retry"
    status: int | None
    error: str | None
    at: datetime


class WebhookEngine:
    """Queues published events and delivers them from one background thread.

    Thread-safe: `publish`, `subscribe`, `tick` and the views may be called from
    any thread. `start`/`stop` control the delivery thread; events published
    while it is stopped wait in the queue.
    """

    def __init__(
        self,
        *,
        clock: SimClock,
        policy: RetryPolicy,
        faults: WebhookFaults,
        seed: int,
        timeout: float = DELIVERY_TIMEOUT_SECONDS,
    ) -> None:
        self._clock = clock
        self.policy = policy
        self.faults = faults
        self._seed = seed
        self._timeout = timeout
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._generation = 0
        self._clear()

    def _clear(self) -> None:
        self._generation += 1
        self._subscriptions: dict[str, Subscription] = {}
        self._events: list[OutboundEvent] = []
        self._by_id: dict[str, OutboundEvent] = {}
        self._deliveries: list[dict[str, Any]] = []
        self._ready: deque[tuple[OutboundEvent, bool]] = deque()
        self._late: list[tuple[datetime, int, OutboundEvent]] = []
        self._held: list[OutboundEvent] = []
        self._retrying: dict[int, OutboundEvent] = {}
        self._in_flight = 0
        self._chaos_rng = random.Random(f"{self._seed}:webhook-chaos")
        self._next_sweep = self._clock.now() + self.policy.day

    # -- control ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread (no-op if running)."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, daemon=True, name="zigzag-webhooks")
            self._thread.start()

    def stop(self) -> None:
        """Stop the delivery thread after its current attempt (at most the POST timeout)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=self._timeout * 2 + 1)

    def reset(self) -> None:
        """Forget subscriptions, events and deliveries; re-seed the chaos RNG."""
        with self._cond:
            self._clear()
            self._cond.notify_all()

    def tick(self) -> None:
        """Run due work now (a sweep, late events); call after moving the clock."""
        with self._cond:
            self._promote(self._clock.now())
            self._cond.notify_all()

    # -- inputs ----------------------------------------------------------------------------

    def subscribe(self, subscription: Subscription) -> None:
        """Set (or replace) a retailer's endpoint; pending retries go to the new one."""
        with self._cond:
            self._subscriptions[subscription.retailer_code] = subscription
            self._cond.notify_all()

    def publish(self, envelope: dict[str, Any]) -> None:
        """Queue one event envelope (Z-9) for delivery; never blocks on the network."""
        with self._cond:
            chaos = self._draw_chaos()
            event = OutboundEvent(
                sequence=len(self._events) + 1,
                generation=self._generation,
                envelope=envelope,
                body=json.dumps(envelope, separators=(",", ":")).encode(),
                chaos=chaos,
            )
            self._events.append(event)
            self._by_id[str(envelope["eventId"])] = event
            if chaos.late:
                event.state = DeliveryState.LATE
                due = self._clock.now() + self.policy.day
                heapq.heappush(self._late, (due, event.sequence, event))
            else:
                self._ready.append((event, False))
            self._cond.notify_all()

    def _draw_chaos(self) -> Chaos:
        # Four draws for every event whatever the rates, so changing one rate
        # does not shift the others' outcomes.
        draws = [self._chaos_rng.random() for _ in range(4)]
        faults = self.faults
        return Chaos(
            duplicate=draws[0] < faults.duplicate,
            reorder=draws[1] < faults.reorder,
            late=draws[2] < faults.late,
            drop=draws[3] < faults.drop,
        )

    # -- views -----------------------------------------------------------------------------

    def subscriptions(self) -> list[dict[str, Any]]:
        """Every subscription (admin view)."""
        with self._cond:
            return [s.to_json() for s in self._subscriptions.values()]

    def events(self) -> list[dict[str, Any]]:
        """Every published event, in order, with its delivery state and full envelope."""
        with self._cond:
            return [event.to_json() for event in self._events]

    def envelope(self, event_id: str) -> dict[str, Any] | None:
        """The full envelope of one event, as POSTed."""
        with self._cond:
            event = self._by_id.get(event_id)
            return None if event is None else event.envelope

    def deliveries(self) -> list[dict[str, Any]]:
        """Every attempt, in the order made."""
        with self._cond:
            return list(self._deliveries)

    def stats(self) -> dict[str, Any]:
        """Queue depths and event counts by delivery state; `idle` when nothing is due now."""
        with self._cond:
            by_state = Counter(event.state.value for event in self._events)
            return {
                "ready": len(self._ready),
                "inFlight": self._in_flight,
                "held": len(self._held),
                "late": len(self._late),
                "idle": not self._ready and not self._in_flight and not self._held,
                "events": len(self._events),
                "byState": dict(sorted(by_state.items())),
                "nextSweepAt": iso(self._next_sweep),
            }

    # -- the delivery thread -----------------------------------------------------------------

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout, follow_redirects=False) as client:
            while (job := self._next_job()) is not None:
                self._finish(job, self._attempt(client, job))

    def _next_job(self) -> _Job | None:
        with self._cond:
            while not self._stopping:
                now = self._clock.now()
                self._promote(now)
                job = self._pop_ready()
                if job is not None:
                    self._in_flight += 1
                    return job
                self._cond.wait(self._wait_seconds(now))
            return None

    def _promote(self, now: datetime) -> None:
        if now >= self._next_sweep:
            # The sweep belongs to the latest daily boundary passed (a clock jump
            # of several days runs one sweep); ages are measured at that boundary.
            boundary = self._next_sweep + self.policy.day * (
                (now - self._next_sweep) // self.policy.day
            )
            self._sweep(boundary)
            self._next_sweep = boundary + self.policy.day
        while self._late and self._late[0][0] <= now:
            _, _, event = heapq.heappop(self._late)
            event.state = DeliveryState.PENDING
            self._ready.append((event, False))
        if (
            self._held
            and not self._ready
            and not self._in_flight
            and time.monotonic() - self._held[0].held_since >= REORDER_RELEASE_SECONDS
        ):
            self._release_held()

    def _sweep(self, at: datetime) -> None:
        for sequence in sorted(self._retrying):
            event = self._retrying[sequence]
            if event.state is not DeliveryState.RETRYING:
                continue
            failed_at = event.first_failure_at or at
            if at - failed_at >= self.policy.window:
                event.state = DeliveryState.ABANDONED
                del self._retrying[sequence]
            else:
                event.state = DeliveryState.RETRY_QUEUED
                self._ready.append((event, True))

    def _release_held(self) -> None:
        for event in reversed(self._held):
            event.state = DeliveryState.PENDING
            self._ready.appendleft((event, False))
        self._held.clear()

    def _pop_ready(self) -> _Job | None:
        while self._ready:
            event, retry = self._ready.popleft()
            if not retry and event.chaos.reorder and not event.was_held:
                event.state = DeliveryState.HELD
                event.was_held = True
                event.held_since = time.monotonic()
                self._held.append(event)
                continue
            subscription = self._subscriptions.get(event.retailer_code)
            if subscription is None:
                event.state = DeliveryState.UNSUBSCRIBED
                self._retrying.pop(event.sequence, None)
                continue
            return _Job(event=event, retry=retry, subscription=subscription)
        return None

    def _wait_seconds(self, now: datetime) -> float:
        due = [self._next_sweep] + ([self._late[0][0]] if self._late else [])
        simulated = max(min((d - now).total_seconds() for d in due), 0.0)
        real = self._clock.real_seconds(simulated)
        if self._held:
            real = min(real, REORDER_RELEASE_SECONDS)
        return max(min(real, IDLE_POLL_SECONDS), 0.001)

    def _attempt(self, client: httpx.Client, job: _Job) -> list[_Attempt]:
        if job.retry:
            return [self._post(client, job, "retry")]
        if job.event.chaos.drop:
            dropped = _Attempt(
                kind="first", status=None, error="dropped (simulated)", at=self._clock.now()
            )
            return [dropped]
        attempts = [self._post(client, job, "first")]
        if job.event.chaos.duplicate:
            attempts.append(self._post(client, job, "duplicate"))
        return attempts

    def _post(self, client: httpx.Client, job: _Job, kind: str) -> _Attempt:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            API_KEY_HEADER: job.subscription.api_key,
        }
        status: int | None = None
        error: str | None = None
        try:
            response = client.post(job.subscription.url, content=job.event.body, headers=headers)
        except httpx.TimeoutException:
            error = "timeout"
        except Exception as exc:  # any transport failure is "no response" to ZigZag
            error = f"no response: {type(exc).__name__}"
        else:
            status = response.status_code
        return _Attempt(kind=kind, status=status, error=error, at=self._clock.now())

    def _finish(self, job: _Job, attempts: list[_Attempt]) -> None:
        with self._cond:
            event = job.event
            if event.generation != self._generation:
                return  # the simulator was reset while this attempt was in flight
            self._in_flight -= 1
            for attempt in attempts:
                event.attempts += 1
                self._deliveries.append(
                    {
                        "eventId": event.envelope["eventId"],
                        "eventType": event.envelope["eventType"],
                        "returnId": event.envelope["returnId"],
                        "retailerCode": event.retailer_code,
                        "attempt": event.attempts,
                        "kind": attempt.kind,
                        "status": attempt.status,
                        "error": attempt.error,
                        "at": iso(attempt.at),
                    }
                )
            self._settle(event, attempts)
            if self._held:
                self._release_held()
            self._cond.notify_all()

    def _settle(self, event: OutboundEvent, attempts: list[_Attempt]) -> None:
        first = attempts[0]
        if any(a.status is not None and 200 <= a.status < 300 for a in attempts):
            event.state = DeliveryState.DELIVERED
            self._retrying.pop(event.sequence, None)
        elif self.policy.retryable(first.status):
            event.state = DeliveryState.RETRYING
            event.first_failure_at = event.first_failure_at or first.at
            self._retrying[event.sequence] = event
        else:
            event.state = DeliveryState.FAILED
            self._retrying.pop(event.sequence, None)
