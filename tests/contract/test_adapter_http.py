"""adapters.http: client factory, error classification, call-level retry."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from returnsync import __version__
from returnsync.adapters import http
from returnsync.errors import (
    AuthenticationError,
    ConnectorError,
    NotFoundError,
    OutcomeUnknownError,
    RejectedByRemoteError,
    TransientConnectorError,
)

NOW = datetime(2026, 10, 6, 12, 0, 0, tzinfo=UTC)


def _response(status: int, *, method: str = "GET", headers=None, text: str = "") -> httpx.Response:
    request = httpx.Request(method, "https://api.example.test/Return/api/v1/Returns/R1")
    return httpx.Response(status, headers=headers, text=text, request=request)


def test_make_client_sets_user_agent_and_explicit_timeouts():
    """Every client names returnsync and its version, and never waits forever."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    with http.make_client(
        "https://api.example.test", timeout=7.0, transport=httpx.MockTransport(handler)
    ) as client:
        client.get("/ping")
        assert client.timeout.read == 7.0
        assert client.timeout.connect == http.CONNECT_TIMEOUT
    assert seen[0].headers["User-Agent"] == f"returnsync/{__version__}"


def test_make_client_refuses_a_non_positive_timeout():
    """A zero or negative timeout is a configuration error, not 'no timeout'."""
    with pytest.raises(ValueError, match="timeout"):
        http.make_client("https://api.example.test", timeout=0)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, TransientConnectorError),
        (500, TransientConnectorError),
        (502, TransientConnectorError),
        (503, TransientConnectorError),
        (408, TransientConnectorError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (400, RejectedByRemoteError),
        (409, RejectedByRemoteError),
        (422, RejectedByRemoteError),
    ],
)
def test_classify_maps_status_codes_to_error_classes(status, expected):
    """Each HTTP status lands in the documented ConnectorError class, tagged with the system."""
    error = http.classify(_response(status), "zigzag")
    assert type(error) is expected
    assert error.system == "zigzag"


def test_classify_keeps_status_and_truncated_body_on_rejections():
    """A 4xx rejection carries the status and at most 2000 characters of the body."""
    error = http.classify(_response(422, text="x" * 5000), "zigzag")
    assert isinstance(error, RejectedByRemoteError)
    assert error.status == 422
    assert len(error.body) == 2000


def test_classify_reads_retry_after_in_seconds():
    """A 429 with `Retry-After: 7` says wait 7 seconds."""
    error = http.classify(_response(429, headers={"Retry-After": "7"}), "zigzag")
    assert isinstance(error, TransientConnectorError)
    assert error.retry_after == 7.0


def test_classify_reads_retry_after_as_http_date():
    """A 503 with an HTTP-date Retry-After gives the seconds from now until then."""
    headers = {"Retry-After": "Tue, 06 Oct 2026 12:00:30 GMT"}
    error = http.classify(_response(503, headers=headers), "zigzag", now=NOW)
    assert isinstance(error, TransientConnectorError)
    assert error.retry_after == 30.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("soon", None),
        ("0", 0.0),
        ("-5", 0.0),
        ("2.5", 2.5),
        ("Tue, 06 Oct 2026 11:00:00 GMT", 0.0),
    ],
)
def test_retry_after_seconds_edge_cases(value, expected):
    """Absent or unreadable gives None; past dates and negatives give 0."""
    assert http.retry_after_seconds(value, now=NOW) == expected


def test_classify_timeout_on_get_is_transient():
    """A timeout on a read is plainly transient: repeating it is harmless."""
    request = httpx.Request("GET", "https://api.example.test/Returns")
    error = http.classify(httpx.ReadTimeout("timed out", request=request), "zigzag")
    assert type(error) is TransientConnectorError


def test_classify_timeout_on_post_is_outcome_unknown():
    """A lost answer to a POST may hide an applied change: OutcomeUnknownError."""
    request = httpx.Request("POST", "https://api.example.test/Returns")
    error = http.classify(httpx.ReadTimeout("timed out", request=request), "zigzag")
    assert type(error) is OutcomeUnknownError


def test_classify_connect_error_respects_explicit_idempotency():
    """The caller can declare a POST idempotent (e.g. a token request)."""
    request = httpx.Request("POST", "https://api.example.test/token")
    exc = httpx.ConnectError("refused", request=request)
    assert type(http.classify(exc, "zigzag", idempotent=True)) is TransientConnectorError


def test_classify_refuses_success():
    """Classifying a 2xx is a programming error."""
    with pytest.raises(ValueError, match="not an error"):
        http.classify(_response(200), "zigzag")


class _Flaky:
    """A call that raises the queued errors, then returns 'ok'."""

    def __init__(self, *errors: ConnectorError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_retry_recovers_from_transient_errors_with_backoff():
    """Two transient failures, then success: three calls and two growing waits."""
    waits: list[float] = []
    policy = http.RetryPolicy(sleep=waits.append, jitter=0.0)
    call = _Flaky(TransientConnectorError(system="x"), TransientConnectorError(system="x"))
    assert http.call_with_retry(call, policy) == "ok"
    assert call.calls == 3
    assert waits == [0.5, 1.0]


def test_retry_honours_retry_after():
    """The server's Retry-After replaces our own backoff."""
    waits: list[float] = []
    call = _Flaky(TransientConnectorError(system="x", retry_after=3.0))
    http.call_with_retry(call, http.RetryPolicy(sleep=waits.append))
    assert waits == [3.0]


def test_retry_gives_up_after_the_attempts():
    """After three transient failures the last error is raised."""
    call = _Flaky(*(TransientConnectorError(f"fail {i}", system="x") for i in range(5)))
    with pytest.raises(TransientConnectorError, match="fail 2"):
        http.call_with_retry(call, http.RetryPolicy(sleep=lambda _: None))
    assert call.calls == 3


def test_retry_does_not_wait_beyond_the_total_cap():
    """A Retry-After longer than the 10 s budget is raised at once for the job-level retry."""
    call = _Flaky(TransientConnectorError(system="x", retry_after=60.0))
    with pytest.raises(TransientConnectorError) as caught:
        http.call_with_retry(call, http.RetryPolicy(sleep=lambda _: None))
    assert call.calls == 1
    assert caught.value.retry_after == 60.0


@pytest.mark.parametrize(
    "error",
    [
        RejectedByRemoteError(system="x", status=400),
        NotFoundError(system="x", status=404),
        AuthenticationError(system="x"),
        OutcomeUnknownError(system="x"),
    ],
)
def test_retry_never_repeats_permanent_or_unknown_outcomes(error):
    """4xx, auth failures and unknown outcomes are not retried at call level."""
    call = _Flaky(error)
    with pytest.raises(type(error)):
        http.call_with_retry(call, http.RetryPolicy(sleep=lambda _: None))
    assert call.calls == 1


def test_set_testing_switches_sleeping_off(monkeypatch):
    """With testing on, the default policy retries without calling time.sleep."""
    slept: list[float] = []
    monkeypatch.setattr(http.time, "sleep", slept.append)
    http.set_testing(True)
    try:
        call = _Flaky(TransientConnectorError(system="x"))
        assert http.call_with_retry(call, http.RetryPolicy()) == "ok"
    finally:
        http.set_testing(False)
    assert slept == []


def test_backoff_is_capped_and_jittered():
    """Waits grow exponentially, gain at most `jitter` of noise, and never exceed wait_max."""
    policy = http.RetryPolicy(wait_initial=1.0, wait_max=5.0, jitter=0.5)
    for retry in range(1, 8):
        wait = policy.backoff(retry)
        base = min(5.0, 2.0 ** (retry - 1))
        assert base <= wait <= min(5.0, base + 0.5)
