"""KCC's side of the channel: fetch the config, pull returns, push statuses (§1.1; K-1..K-13).

One `ChannelSession` per company plays the KCC engine ("Sirion") against that
company's channel, which is our service:

- **Config.** GET the configuration URL with HTTP Basic auth (the channel's
  Username/Password); cache it for 24 simulated hours. A failure (transport error,
  non-200, unusable document) is a notification and is retried a minute later; a
  cached config stays in use meanwhile.
- **Pull.** Every `Frequency` minutes GET `CReturnDownload` (and `OrderDownload`)
  with Basic auth and `Sirion-Continuation`: on first contact a datetime
  `YYYY-MM-DD HH:MM:SSZ`, afterwards exactly the value the channel last answered.
  A document that cannot be read leaves the continuation unchanged. A full page
  (K-3) is followed at once by another pull. An operator's retry of failed returns
  sends `SpecificIDs` (comma-separated AssociatedRefs).
- **Push.** POST JSON with Basic auth to the configured URLs, one kind at a time in
  order; anything but 200 (or a timeout) is retried with capped exponential backoff
  (K-13), and a push answered 200 may be sent again (`push_duplicate`).

Every pull and push attempt is logged in the company state. A "minute" lasts
`minute_seconds` real seconds; backoff seconds are scaled the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx

from returnsync.simulators.khaos.endpoint_config import ConfigError, parse_endpoint_config
from returnsync.simulators.khaos.operations import rename_random_stock_code
from returnsync.simulators.khaos.outbox import PUSH_ENDPOINTS, backoff_seconds
from returnsync.simulators.khaos.returns_import import (
    DocumentError,
    ImportOutcome,
    find_null,
    import_page,
    parse_page,
)
from returnsync.simulators.khaos.wire import loads

if TYPE_CHECKING:
    from returnsync.simulators.khaos.company import Company
    from returnsync.simulators.khaos.endpoint_config import Endpoint, EndpointConfig
    from returnsync.simulators.khaos.faults import ChannelFaults
    from returnsync.simulators.khaos.outbox import PushJob

log = logging.getLogger(__name__)

CONFIG_TTL = timedelta(hours=24)
CONTINUATION = "Sirion-Continuation"
SPECIFIC_IDS = "SpecificIDs"
MAX_PAGES_PER_CYCLE = 1000
MAX_IDLE_WAIT = 0.5


class Cadence:
    """Converts KCC's simulated minutes and seconds into real seconds."""

    def __init__(self, minute_seconds: float) -> None:
        if minute_seconds <= 0:
            raise ValueError("minute_seconds must be positive")
        self.minute_seconds = minute_seconds

    def minutes(self, minutes: float) -> float:
        """Real seconds that `minutes` simulated minutes take."""
        return minutes * self.minute_seconds

    def seconds(self, seconds: float) -> float:
        """Real seconds that `seconds` simulated seconds take."""
        return seconds * self.minute_seconds / 60.0


class ChannelSession:
    """KCC talking to one company's channel, on a worker thread or on demand."""

    def __init__(
        self,
        company: Company,
        *,
        state_lock: threading.RLock,
        faults: ChannelFaults,
        cadence: Cadence,
    ) -> None:
        self.company = company
        self._lock = state_lock
        self._faults = faults
        self._cadence = cadence
        self._io = threading.Lock()
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(trust_env=False)
        self._next_config_try = 0.0
        self._next_pull: dict[str, float] = {}

    # -- lifecycle -------------------------------------------------------------

    def wake(self) -> None:
        """Ask the worker to look for due work now (new pushes, admin changes)."""
        self._wake.set()

    def start(self) -> None:
        """Run the schedule on a daemon thread."""
        if self._thread is not None or self._closed:
            return
        self._halt = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._halt,), daemon=True, name=f"kcc:{self.company.name}"
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the worker thread, if any (on-demand cycles still work)."""
        self._halt.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def close(self) -> None:
        """Stop the worker and close the HTTP client for good."""
        self.stop()
        with self._io:
            self._closed = True
            self._client.close()

    def _run(self, halt: threading.Event) -> None:
        while not halt.is_set():
            self._wake.clear()
            try:
                self.run_due()
            except Exception:
                log.exception("KCC worker for %s failed; carrying on", self.company.name)
            self._wake.wait(self._idle_seconds())

    def _idle_seconds(self) -> float:
        now = time.monotonic()
        with self._lock:
            moments = list(self._next_pull.values())
            if self.company.config is None:
                moments.append(self._next_config_try)
            else:
                due = self.company.outbox.next_due()
                if due is not None:
                    moments.append(due)
        if not moments:
            return MAX_IDLE_WAIT
        return max(0.001, min(MAX_IDLE_WAIT, min(moments) - now))

    # -- entry points ----------------------------------------------------------

    def run_due(self) -> None:
        """Do whatever is due now: config, pulls on their frequency, pushes."""
        with self._io:
            if not self._ensure_config(force=False):
                return
            now = time.monotonic()
            if self._pull_due("CReturnDownload", now):
                self._returns_cycle()
            if self._pull_due("OrderDownload", now):
                self._orders_cycle()
            self._deliver_due()

    def sync(self) -> None:
        """One full cycle now, whatever the schedule: config if stale, pulls, due pushes."""
        with self._io:
            if not self._ensure_config(force=True):
                return
            self._returns_cycle()
            self._orders_cycle()
            self._deliver_due()

    def refresh_config(self) -> bool:
        """Fetch the configuration now (the docs' "change the URL and back")."""
        with self._io:
            with self._lock:
                self.company.config_stale = True
            ok = self._ensure_config(force=True)
            with self._lock:
                fresh = ok and not self.company.config_stale
            if fresh:
                self._deliver_due()
            return fresh

    def retry_returns(self, associated_refs: list[str]) -> ImportOutcome | None:
        """An operator retries failed returns: one pull with `SpecificIDs`."""
        with self._io:
            if not self._ensure_config(force=True):
                return None
            outcome = self._pull_returns(specific_ids=associated_refs)
            self._deliver_due()
            return outcome

    # -- config ----------------------------------------------------------------

    def _ensure_config(self, *, force: bool) -> bool:
        """Fetch the config when missing or stale; True when a config is usable."""
        if self._closed:
            return False
        company = self.company
        with self._lock:
            fetched = company.config_fetched_at
            stale = (
                company.config is None
                or company.config_stale
                or fetched is None
                or company.clock.now() - fetched >= CONFIG_TTL
            )
            have = company.config is not None
        if not stale:
            return True
        if not force and time.monotonic() < self._next_config_try:
            return have
        return self._fetch_config() or have

    def _fetch_config(self) -> bool:
        company = self.company
        settings = company.settings
        problem = ""
        config: EndpointConfig | None = None
        try:
            response = self._client.get(
                settings.config_url,
                auth=(settings.username, settings.password),
                timeout=self._faults.pull_timeout_seconds,
            )
        except httpx.HTTPError as exc:
            problem = f"configuration URL unreachable: {type(exc).__name__}: {exc}"
        else:
            if response.status_code != 200:
                problem = f"configuration URL answered {response.status_code}"
            else:
                try:
                    config = parse_endpoint_config(response.content)
                except ConfigError as exc:
                    problem = str(exc)
        now = time.monotonic()
        with self._lock:
            if problem or config is None:
                company.notify("config", problem or "configuration unusable")
                self._next_config_try = now + self._cadence.minutes(1)
                return False
            first = company.config is None
            company.config = config
            company.config_fetched_at = company.clock.now()
            company.config_stale = False
            for kind in ("CReturnDownload", "OrderDownload"):
                endpoint = config.get(kind)
                if endpoint is None:
                    self._next_pull.pop(kind, None)
                elif first or kind not in self._next_pull:
                    self._next_pull[kind] = now + self._frequency(endpoint)
        return True

    def _frequency(self, endpoint: Endpoint) -> float:
        return self._cadence.minutes(float(endpoint.Frequency or 15))

    def _pull_due(self, kind: str, now: float) -> bool:
        with self._lock:
            due = self._next_pull.get(kind)
        return due is not None and now >= due

    def _reschedule(self, kind: str) -> None:
        with self._lock:
            config = self.company.config
            endpoint = config.get(kind) if config else None
            if endpoint is not None:
                self._next_pull[kind] = time.monotonic() + self._frequency(endpoint)

    # -- pulls -----------------------------------------------------------------

    def _returns_cycle(self) -> None:
        with self._lock:
            if self.company.rng.random() < self._faults.stock_code_rename:
                rename_random_stock_code(self.company)
        self._pull_returns(specific_ids=None)
        self._reschedule("CReturnDownload")

    def _pull_returns(self, *, specific_ids: list[str] | None) -> ImportOutcome | None:
        """Pull pages of returns until one is not full; returns the combined outcome."""
        company = self.company
        total = ImportOutcome()
        for _ in range(MAX_PAGES_PER_CYCLE):
            with self._lock:
                endpoint = company.config.get("CReturnDownload") if company.config else None
                sent = company.continuation
            if endpoint is None:
                return None
            headers = {CONTINUATION: sent}
            if specific_ids is not None:
                headers[SPECIFIC_IDS] = ",".join(specific_ids)
            record: dict[str, Any] = {
                "at": company.now(),
                "endpoint": "CReturnDownload",
                "continuation_sent": sent,
                "specific_ids": specific_ids or [],
            }
            response = self._get(endpoint.URL, headers, record)
            if response is None:
                return total
            try:
                page = parse_page(response.content)
            except DocumentError as exc:
                with self._lock:
                    company.notify("pull", str(exc))
                    company.pulls.append({**record, "status": 200, "error": str(exc)})
                return total
            received = response.headers.get(CONTINUATION)
            with self._lock:
                outcome = import_page(company, page.returns)
                if specific_ids is None and received is not None and received.strip():
                    company.continuation = received
                company.pulls.append(
                    {
                        **record,
                        "status": 200,
                        "returns": len(page.returns),
                        "continuation_received": received or "",
                        **outcome.wire(),
                    }
                )
                moved = company.continuation != sent
                full = len(page.returns) >= company.settings.page_size
            total.imported += outcome.imported
            total.skipped += outcome.skipped
            total.rejected += outcome.rejected
            if specific_ids is not None or not full:
                return total
            if not moved:
                with self._lock:
                    company.notify(
                        "pull", "a full page came back but Sirion-Continuation did not move"
                    )
                return total
        return total

    def _orders_cycle(self) -> None:
        """Pull `OrderDownload` (required by KCC, K-1); orders offered are not imported."""
        company = self.company
        with self._lock:
            endpoint = company.config.get("OrderDownload") if company.config else None
            sent = company.order_continuation
        if endpoint is None:
            return
        record: dict[str, Any] = {
            "at": company.now(),
            "endpoint": "OrderDownload",
            "continuation_sent": sent,
            "specific_ids": [],
        }
        response = self._get(endpoint.URL, {CONTINUATION: sent}, record)
        self._reschedule("OrderDownload")
        if response is None:
            return
        problem, count = _check_order_import(response.content)
        received = response.headers.get(CONTINUATION)
        with self._lock:
            if problem:
                company.notify("pull", problem)
            elif received is not None and received.strip():
                company.order_continuation = received
            if count:
                company.notify(
                    "pull",
                    f"OrderDownload offered {count} orders; the simulator does not import "
                    "orders (load them with /_sim/companies/{c}/sales_orders)",
                )
            company.pulls.append({**record, "status": 200, "orders": count, "error": problem})

    def _get(
        self, url: str, headers: dict[str, str], record: dict[str, Any]
    ) -> httpx.Response | None:
        """GET with Basic auth; logs and notifies a failure, returns None then."""
        company = self.company
        settings = company.settings
        try:
            response = self._client.get(
                url,
                headers=headers,
                auth=(settings.username, settings.password),
                timeout=self._faults.pull_timeout_seconds,
            )
        except httpx.HTTPError as exc:
            problem = f"{record['endpoint']} unreachable: {type(exc).__name__}: {exc}"
            status: int | str = "error"
        else:
            if response.status_code == 200:
                return response
            problem = f"{record['endpoint']} answered {response.status_code}"
            status = response.status_code
        with self._lock:
            company.notify("pull", problem)
            company.pulls.append({**record, "status": status, "error": problem})
        return None

    # -- pushes ----------------------------------------------------------------

    def _deliver_due(self) -> None:
        """Attempt every push whose turn has come, until none is due."""
        while True:
            now = time.monotonic()
            with self._lock:
                if self.company.config is None:
                    return
                due = [job for job in self.company.outbox.heads() if job.next_due <= now]
            if not due:
                return
            for job in due:
                self._attempt(job)

    def _attempt(self, job: PushJob) -> None:
        company = self.company
        with self._lock:
            config = company.config
            endpoint = config.get(PUSH_ENDPOINTS[job.kind]) if config else None
            if endpoint is None:
                company.outbox.done(job)
                self._log_push(job, "skipped", duplicate=False)
                company.notify(
                    "push", f"{job.kind} not sent: no {PUSH_ENDPOINTS[job.kind]} in EndpointConfig"
                )
                return
            job.attempts += 1
        status = self._post(endpoint.URL, job.body)
        again = False
        with self._lock:
            self._log_push(job, status, duplicate=False)
            if status == 200:
                company.outbox.done(job)
                again = company.rng.random() < self._faults.push_duplicate
            elif job.attempts >= self._faults.max_push_attempts:
                company.outbox.done(job)
                self._log_push(job, "abandoned", duplicate=False)
                company.notify(
                    "push", f"{job.kind} push {job.id} abandoned after {job.attempts} attempts"
                )
            else:
                delay = backoff_seconds(job.attempts, self._faults.backoff_cap_seconds)
                job.next_due = time.monotonic() + self._cadence.seconds(delay)
        if again:
            duplicate_status = self._post(endpoint.URL, job.body)
            with self._lock:
                job.attempts += 1
                self._log_push(job, duplicate_status, duplicate=True)

    def _post(self, url: str, body: bytes) -> int | str:
        settings = self.company.settings
        try:
            response = self._client.post(
                url,
                content=body,
                headers={"Content-Type": "application/json"},
                auth=(settings.username, settings.password),
                timeout=self._faults.push_timeout_seconds,
            )
        except httpx.TimeoutException:
            return "timeout"
        except httpx.HTTPError:
            return "error"
        return response.status_code

    def _log_push(self, job: PushJob, status: int | str, *, duplicate: bool) -> None:
        self.company.pushes.append(
            {
                "id": job.id,
                "kind": job.kind,
                "attempt": job.attempts,
                "status": status,
                "items": job.items,
                "at": self.company.now(),
                "duplicate": duplicate,
            }
        )


def _check_order_import(raw: bytes) -> tuple[str, int]:
    """Check a `SalesOrderImport` document; (problem or "", number of orders offered)."""
    try:
        document = loads(raw)
    except ValueError as exc:
        return f"SalesOrderImport is not valid JSON: {exc}", 0
    if not isinstance(document, dict):
        return "SalesOrderImport must be a JSON object", 0
    if document.get("ApiVersion") not in (1000, 10000) or isinstance(
        document.get("ApiVersion"), bool
    ):
        return f"SalesOrderImport ApiVersion must be 1000, got {document.get('ApiVersion')!r}", 0
    null_at = find_null(document)
    if null_at is not None:
        return f"null value at {null_at} in SalesOrderImport", 0
    orders = document.get("Orders")
    if isinstance(orders, dict):
        orders = [orders]
    if not isinstance(orders, list):
        return "SalesOrderImport has no Orders array", 0
    return "", len(orders)
