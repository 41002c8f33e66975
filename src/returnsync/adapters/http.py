"""Shared HTTP plumbing for the adapters: one client factory, one error classifier, one retry.

    make_client(base_url, ...)        an httpx.Client with explicit timeouts and our User-Agent
    PooledClient                      base of an adapter holding one: close() and `with`
    classify(response_or_exc, system) the ConnectorError a failed call means (see below)
    call_with_retry(call, policy)     a few quick retries of a call, on transient errors only

Classification (returnsync.errors):

    transport error / timeout, idempotent call    -> TransientConnectorError
    transport error / timeout, non-idempotent     -> OutcomeUnknownError (read remote state first)
    408, 429, 5xx                                  -> TransientConnectorError(.retry_after)
    401, 403                                       -> AuthenticationError
    404                                            -> NotFoundError
    any other 4xx (or unexpected 1xx/3xx)          -> RejectedByRemoteError(.status, .body[:2000])

Call-level retries last seconds and live in memory; the engine's job-level retries (minutes to
hours, persisted) sit outside them. Tests switch sleeping off with `set_testing(True)` or a
`RetryPolicy(sleep=...)`. Nothing here logs headers or bodies: they may hold credentials.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Generic, Protocol, Self, TypeVar

import httpx

from returnsync import __version__
from returnsync.errors import (
    AuthenticationError,
    ConnectorError,
    NotFoundError,
    OutcomeUnknownError,
    RejectedByRemoteError,
    TransientConnectorError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

T = TypeVar("T")

USER_AGENT = f"returnsync/{__version__}"
CONNECT_TIMEOUT = 5.0  # seconds; a peer that cannot accept a connection in 5 s is down
BODY_LIMIT = 2000  # characters of an error body kept on RejectedByRemoteError
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})  # RFC 9110 9.2.2

_testing = threading.Event()


class _Pool(Protocol):
    def close(self) -> None: ...


PoolT = TypeVar("PoolT", bound=_Pool)


class PooledClient(Generic[PoolT]):
    """Base of an adapter that holds a connection pool (`self._http`, an httpx.Client or a
    wrapper of one)."""

    _http: PoolT

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def set_testing(enabled: bool) -> None:
    """Switch every retry's sleeping off (tests) or back on. Attempts still happen."""
    if enabled:
        _testing.set()
    else:
        _testing.clear()


def make_client(
    base_url: str,
    *,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Client:
    """An httpx.Client for one remote system.

    `timeout` (seconds) bounds each of read, write and pool waits; connecting is capped at
    CONNECT_TIMEOUT. Redirects are not followed (an API that redirects is misconfigured).
    `transport` is for tests (`httpx.MockTransport`). The caller closes the client.
    """
    if timeout <= 0:
        raise ValueError("timeout must be positive: a call without one can hang a worker")
    merged = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    merged.update(headers or {})
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
        transport=transport,
        headers=merged,
        follow_redirects=False,
        event_hooks={"response": [_log_response]},
    )


def _log_response(response: httpx.Response) -> None:
    # Method, path and status only: headers and bodies may carry tokens or passwords.
    request = response.request
    log.debug("%s %s -> %s", request.method, request.url.path, response.status_code)


def classify(
    response_or_exc: httpx.Response | httpx.RequestError,
    system: str,
    *,
    idempotent: bool | None = None,
    now: datetime | None = None,
) -> ConnectorError:
    """The ConnectorError that a failed response or a transport exception means.

    `idempotent` says whether repeating the call is harmless; by default it follows the HTTP
    method (GET, HEAD, OPTIONS, PUT, DELETE are). `now` (aware) resolves a `Retry-After` given
    as an HTTP date. Raises ValueError when given a successful (2xx) response.
    """
    if isinstance(response_or_exc, httpx.RequestError):
        return _classify_exception(response_or_exc, system, idempotent)
    response = response_or_exc
    status = response.status_code
    where = _where(response.request) if _has_request(response) else ""
    if response.is_success:
        raise ValueError(f"{system} answered {status}{where}: not an error")
    if status in {408, 429} or status >= 500:
        return TransientConnectorError(
            f"{system} answered {status}{where}",
            system=system,
            retry_after=retry_after_seconds(response.headers.get("Retry-After"), now=now),
        )
    if status in {401, 403}:
        return AuthenticationError(
            f"{system} refused our credentials ({status}{where})", system=system
        )
    body = _text(response)[:BODY_LIMIT]
    if status == 404:
        return NotFoundError(
            f"{system} answered 404{where}", system=system, status=status, body=body
        )
    return RejectedByRemoteError(
        f"{system} rejected the request with {status}{where}: {body[:200]}",
        system=system,
        status=status,
        body=body,
    )


def _classify_exception(
    exc: httpx.RequestError, system: str, idempotent: bool | None
) -> ConnectorError:
    try:
        request: httpx.Request | None = exc.request
    except RuntimeError:  # httpx raises this when the exception carries no request
        request = None
    if idempotent is None:
        idempotent = request is not None and request.method.upper() in IDEMPOTENT_METHODS
    where = _where(request) if request is not None else ""
    kind = type(exc).__name__
    if idempotent:
        return TransientConnectorError(f"{system}: {kind}{where}", system=system)
    return OutcomeUnknownError(
        f"{system}: {kind}{where}; the call may have been applied", system=system
    )


def _has_request(response: httpx.Response) -> bool:
    try:
        _ = response.request
    except RuntimeError:
        return False
    return True


def _where(request: httpx.Request) -> str:
    return f" to {request.method} {request.url.path}"


def _text(response: httpx.Response) -> str:
    try:
        return response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return ""


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date; None if absent.

    A date in the past gives 0. An unreadable value gives None (use our own backoff).
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how long to retry one call. Only TransientConnectorError is retried.

    OutcomeUnknownError is never retried here (the engine reads remote state first), unless
    the caller wrapped an idempotent call and classified it as plain transient.
    """

    attempts: int = 3  # calls in total, the first included
    wait_initial: float = 0.5  # seconds before the first retry
    wait_max: float = 5.0  # seconds; one wait never exceeds this
    jitter: float = 0.5  # seconds of random extra per wait, so workers do not retry in step
    timeout: float = 10.0  # seconds; no retry starts if waiting would end beyond this
    sleep: Callable[[float], None] | None = None  # None: time.sleep, unless set_testing(True)

    def backoff(self, retry: int) -> float:
        """Seconds before retry number `retry` (1-based): exponential, capped, with jitter."""
        base = min(self.wait_max, self.wait_initial * 2.0 ** (retry - 1))
        return min(self.wait_max, base + random.uniform(0, self.jitter))


NO_RETRY = RetryPolicy(attempts=1)


def call_with_retry(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    monotonic: Callable[[], float] = time.monotonic,
) -> T:
    """Run `call`, retrying TransientConnectorError per `policy`; re-raise the last error.

    A `retry_after` on the error replaces our backoff (the server knows best). When the wait
    would overrun `policy.timeout`, the error is raised at once with its `retry_after`, for
    the job-level retry to honour.
    """
    started = monotonic()
    attempt = 1
    while True:
        try:
            return call()
        except OutcomeUnknownError:
            raise
        except TransientConnectorError as exc:
            if attempt >= policy.attempts:
                raise
            wait = exc.retry_after if exc.retry_after is not None else policy.backoff(attempt)
            if monotonic() - started + wait > policy.timeout:
                raise
            log.info(
                "retrying %s call in %.2f s (attempt %d of %d): %s",
                exc.system or "remote",
                wait,
                attempt + 1,
                policy.attempts,
                exc,
            )
            _sleep(policy, wait)
            attempt += 1


def _sleep(policy: RetryPolicy, seconds: float) -> None:
    if policy.sleep is not None:
        policy.sleep(seconds)
    elif not _testing.is_set():
        time.sleep(seconds)
