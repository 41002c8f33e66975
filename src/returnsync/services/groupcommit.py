"""Group commit for webhook intake: many deliveries, one transaction, every 2xx still durable.

A request handler authenticates and parses the delivery (`intake.prepare_zigzag_webhook`),
then hands the event to the committer and waits (`await committer.store(event)`, or
`submit(event).result()` from a thread). One writer thread drains the queue: it takes what
is waiting (up to `max_batch`, waiting at most `wait_ms` after the first event for more) and
stores the batch with `intake.store_zigzag_many` in ONE transaction on a connection it keeps.
Only after that commit returns are the waiters answered, so every answer still follows the
durable commit of its own event (docs/decisions/0007-group-commit.md).

If the batch transaction fails, each event of it is stored again in its own transaction
(`intake.store_zigzag_event`), so one bad message never fails the others; an event whose own
write fails gets a 503 receipt (retryable), never an exception.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, NamedTuple

from returnsync.services import intake

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from returnsync.services.context import Context

log = logging.getLogger(__name__)

NOT_STORED = intake.Receipt(503, "not stored, please retry")


_Settled = list[tuple[asyncio.Future[intake.Receipt], intake.Receipt]]


class _Item(NamedTuple):
    event: intake.ZigZagEvent
    waiter: Future[intake.Receipt] | None  # a thread waits (`submit`) ...
    loop: asyncio.AbstractEventLoop | None  # ... or a coroutine on this loop (`store`)
    awaited: asyncio.Future[intake.Receipt] | None


class GroupCommitter:
    """One writer thread storing queued ZigZag events in batches (started on first use)."""

    def __init__(self, ctx: Context, *, max_batch: int = 256, wait_ms: float = 2.0) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.ctx = ctx
        self.max_batch = max_batch
        self.wait = max(0.0, wait_ms) / 1000.0
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()  # None: stop
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._conn: Connection | None = None  # the writer's own, kept between batches
        self.batches = 0  # batch transactions committed (for tests and the benchmark)
        self.events = 0  # events in them
        self.fallbacks = 0  # batches that failed and were stored one by one

    async def store(self, event: intake.ZigZagEvent) -> intake.Receipt:
        """Queue one event and wait until the transaction holding it has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[intake.Receipt] = loop.create_future()
        if not self._put(_Item(event, None, loop, future)):
            return NOT_STORED
        return await future

    def submit(self, event: intake.ZigZagEvent) -> Future[intake.Receipt]:
        """Queue one event; the future resolves to its receipt once its batch has committed."""
        future: Future[intake.Receipt] = Future()
        if not self._put(_Item(event, future, None, None)):
            future.set_result(NOT_STORED)
        return future

    @property
    def closed(self) -> bool:
        """Whether `close` was called (new events are answered 503, nothing stored)."""
        return self._closed

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new events, store every event already queued, stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout)

    def _put(self, item: _Item) -> bool:
        with self._lock:
            if self._closed:
                return False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="group-commit")
                self._thread.start()
            self._queue.put(item)
        return True

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch, stopping = self._gather(first)
                try:
                    receipts = self._commit([item.event for item in batch])
                except Exception:  # never leave a waiter hanging, never let the thread die
                    log.exception("group commit: unexpected failure; %d answered 503", len(batch))
                    receipts = [NOT_STORED] * len(batch)
                try:
                    _answer(batch, receipts)
                except Exception:
                    log.exception("group commit: answering %d waiters failed", len(batch))
                if stopping:
                    return
        finally:
            self._drop_connection()

    def _gather(self, first: _Item) -> tuple[list[_Item], bool]:
        """The batch starting with `first`: what is queued, waiting up to `wait` for more.

        Also whether `close` asked to stop (the stop marker came after these events).
        """
        batch = [first]
        deadline = time.monotonic() + self.wait
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _commit(self, events: list[intake.ZigZagEvent]) -> list[intake.Receipt]:
        """Receipts for `events`, each answered only after a commit holding its rows."""
        try:
            conn = self._connection()
            with conn.begin():
                receipts = intake.store_zigzag_many(self.ctx, conn, events)
        except Exception:
            log.warning(
                "group commit of %d events failed; storing one by one", len(events), exc_info=True
            )
            self._drop_connection()
            self.fallbacks += 1
            return [self._store_one(event) for event in events]
        self.batches += 1
        self.events += len(events)
        return receipts

    def _store_one(self, event: intake.ZigZagEvent) -> intake.Receipt:
        try:
            return intake.store_zigzag_event(self.ctx, event)
        except Exception:
            log.warning(
                "webhook %s for %s not stored (answered 503)",
                event.envelope.eventId,
                event.tenant,
                exc_info=True,
            )
            return NOT_STORED

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.ctx.db.engine.connect()
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.warning("group commit: closing a broken connection failed", exc_info=True)


def _answer(batch: list[_Item], receipts: list[intake.Receipt]) -> None:
    """Resolve every waiter: one wake-up per event loop for the whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, _Settled] = {}
    for item, receipt in zip(batch, receipts, strict=True):
        if item.waiter is not None:
            if item.waiter.set_running_or_notify_cancel():
                item.waiter.set_result(receipt)
        elif item.loop is not None and item.awaited is not None:
            by_loop.setdefault(item.loop, []).append((item.awaited, receipt))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, settled)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            continue


def _settle(settled: _Settled) -> None:
    for future, receipt in settled:
        if not future.done():  # a cancelled request (the client went away) is not answered
            future.set_result(receipt)
