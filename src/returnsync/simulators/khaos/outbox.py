"""The per-company outbox of pushes, delivered in order per kind (K-13).

KCC re-sends any push not answered 200 ("Error codes will make the API try again"),
so a push stays at the head of its kind's queue until it is answered 200 or has
failed `max_push_attempts` times; retries back off 1 s, 2 s, 4 s ... capped at 60 s
of simulated time. Queues are per kind, so a failing `StockStatuses` push holds back
later stock statuses but not credit notes. Payloads are serialised once, when the
push is raised: a retry re-sends exactly the same bytes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from returnsync.simulators.khaos.wire import dumps

if TYPE_CHECKING:
    from collections.abc import Callable

# Push kind (the JSON root) -> the EndpointConfig element it is POSTed to.
PUSH_ENDPOINTS = {
    "StockItems": "StockUpload",
    "StockStatuses": "StockStatusUpload",
    "OrderStatuses": "OrderStatusUpload",
}
MAX_PER_PUSH = 100


def backoff_seconds(failures: int, cap: float) -> float:
    """Simulated seconds to wait after the `failures`-th failed attempt: 1, 2, 4 ... cap."""
    return float(min(cap, 2 ** max(0, failures - 1)))


@dataclass
class PushJob:
    """One push waiting to be delivered."""

    id: int
    kind: str
    body: bytes
    items: int
    raised_at: str
    attempts: int = 0
    next_due: float = 0.0

    def wire(self) -> dict[str, Any]:
        """State view."""
        return {
            "id": self.id,
            "kind": self.kind,
            "items": self.items,
            "attempts": self.attempts,
            "raised_at": self.raised_at,
        }


class Outbox:
    """Pending pushes of one company, one FIFO per kind."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._queues: dict[str, deque[PushJob]] = {kind: deque() for kind in PUSH_ENDPOINTS}
        self._next_id = 0
        self._wake = wake

    def put(self, kind: str, payload: dict[str, Any], items: int, at: str) -> PushJob:
        """Queue a push (due at once) and wake the delivery worker."""
        self._next_id += 1
        job = PushJob(self._next_id, kind, dumps(payload).encode(), items, at)
        self._queues[kind].append(job)
        self._wake()
        return job

    def heads(self) -> list[PushJob]:
        """The first pending push of each kind."""
        return [queue[0] for queue in self._queues.values() if queue]

    def done(self, job: PushJob) -> None:
        """Remove a delivered (or abandoned) push from the head of its queue."""
        queue = self._queues[job.kind]
        if queue and queue[0] is job:
            queue.popleft()

    def next_due(self) -> float | None:
        """When the earliest head is due (monotonic seconds), if anything is pending."""
        heads = self.heads()
        return min(job.next_due for job in heads) if heads else None

    def clear(self) -> None:
        """Drop everything pending."""
        for queue in self._queues.values():
            queue.clear()

    def wire(self) -> list[dict[str, Any]]:
        """State view of everything pending, in delivery order per kind."""
        return [job.wire() for queue in self._queues.values() for job in queue]
