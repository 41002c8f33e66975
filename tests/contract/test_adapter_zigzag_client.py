"""ZigZagClient against a MockTransport stub of ZigZag's API (assumptions Z-1 to Z-5)."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from returnsync.adapters import http
from returnsync.adapters.zigzag.client import PAGE_SIZE, ZigZagClient
from returnsync.domain.money import Money
from returnsync.errors import (
    AuthenticationError,
    ConnectorError,
    NotFoundError,
    RejectedByRemoteError,
    TransientConnectorError,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "zigzag"
BASE = "https://api.returns.international"
START = datetime(2026, 10, 6, 12, 0, 0, tzinfo=UTC)
PASSWORD = "s3cret-pa55"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


class ZigZagStub:
    """Just enough of ZigZag: tokens, returns by id, the updated-since listing, refunds."""

    def __init__(self, returns: list[dict] | None = None, expires_in: int | None = 1800) -> None:
        self.returns = {r["returnId"]: r for r in (returns or [])}
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.requests: list[httpx.Request] = []
        self.queued: list[httpx.Response | Exception] = []  # served before normal handling
        self.refunds: dict[str, dict] = {}

    def revoke_all(self) -> None:
        self.valid.clear()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/token":
            return self._token(request)
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid:
            return httpx.Response(401, json={"message": "token expired"})
        if self.queued:
            item = self.queued.pop(0)
            if isinstance(item, Exception):
                raise item
            return item
        path = request.url.path.removeprefix("/Return/api/v1")
        if request.method == "GET" and path == "/Returns":
            return self._list(request)
        if request.method == "GET" and path.startswith("/Returns/"):
            found = self.returns.get(path.split("/")[2])
            return httpx.Response(200, json=found) if found else httpx.Response(404)
        if request.method == "PUT" and path.endswith("/Refund"):
            return self._refund(path.split("/")[2], json.loads(request.content))
        return httpx.Response(405)

    def _token(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body != {"username": "api-user", "password": PASSWORD}:
            return httpx.Response(401, json={"message": "bad credentials"})
        token = f"jwt-{len(self.issued) + 1}"
        self.issued.append(token)
        self.valid.add(token)
        answer: dict = {"token": token}
        if self.expires_in is not None:
            answer["expiresIn"] = self.expires_in
        return httpx.Response(200, json=answer)

    def _list(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        since = datetime.fromisoformat(params["updatedFrom"])
        page, size = int(params["page"]), int(params["pageSize"])
        matching = sorted(
            (r for r in self.returns.values() if datetime.fromisoformat(r["updatedAt"]) >= since),
            key=lambda r: (r["updatedAt"], r["returnId"]),
        )
        chunk = matching[(page - 1) * size : page * size]
        return httpx.Response(
            200,
            json={"items": chunk, "page": page, "pageSize": size, "totalCount": len(matching)},
        )

    def _refund(self, return_id: str, body: dict) -> httpx.Response:
        if return_id not in self.returns:
            return httpx.Response(404)
        earlier = self.refunds.get(return_id)
        if earlier and earlier["refundReference"] != body["refundReference"]:
            return httpx.Response(409, json={"message": "already refunded"})
        self.refunds[return_id] = body
        return httpx.Response(200, json={})


def make_client(stub: ZigZagStub, clock: FakeClock | None = None, **kwargs) -> ZigZagClient:
    kwargs.setdefault("retry", http.RetryPolicy(sleep=lambda _: None))
    return ZigZagClient(
        BASE,
        username="api-user",
        password=PASSWORD,
        retailer_code="GL123",
        transport=httpx.MockTransport(stub),
        clock=clock or FakeClock(),
        **kwargs,
    )


def api_calls(stub: ZigZagStub) -> list[httpx.Request]:
    return [r for r in stub.requests if r.url.path != "/token"]


def test_get_return_fetches_a_token_then_the_return():
    """The first call posts the credentials to /token and sends the JWT as a Bearer token."""
    stub = ZigZagStub([fixture("return_processed.json")])
    snapshot = make_client(stub).get_return("R000123")
    assert snapshot.return_ref == "R000123"
    assert snapshot.status == "Processed"
    assert snapshot.updated_at == datetime(2026, 10, 6, 14, 3, 11, tzinfo=UTC)
    assert snapshot.raw == fixture("return_processed.json")
    call = api_calls(stub)[0]
    assert call.url.path == "/Return/api/v1/Returns/R000123"
    assert call.url.params["retailerCode"] == "GL123"
    assert call.headers["Authorization"] == "Bearer jwt-1"


def test_token_is_cached_between_calls():
    """Two calls within the token's life share one token."""
    stub = ZigZagStub([fixture("return_processed.json")])
    client = make_client(stub)
    client.get_return("R000123")
    client.get_return("R000123")
    assert stub.issued == ["jwt-1"]


def test_token_is_renewed_before_it_expires():
    """Close to `expiresIn`, the client asks for a new token before calling."""
    stub = ZigZagStub([fixture("return_processed.json")])
    clock = FakeClock()
    client = make_client(stub, clock)
    client.get_return("R000123")
    clock.advance(1800 - 61)
    client.get_return("R000123")
    assert stub.issued == ["jwt-1"]
    clock.advance(2)
    client.get_return("R000123")
    assert stub.issued == ["jwt-1", "jwt-2"]
    assert api_calls(stub)[-1].headers["Authorization"] == "Bearer jwt-2"


def test_missing_expires_in_assumes_thirty_minutes():
    """Without `expiresIn`, the documented 30-minute validity applies."""
    stub = ZigZagStub([fixture("return_processed.json")], expires_in=None)
    clock = FakeClock()
    client = make_client(stub, clock)
    client.get_return("R000123")
    clock.advance(1700)
    client.get_return("R000123")
    assert stub.issued == ["jwt-1"]
    clock.advance(100)
    client.get_return("R000123")
    assert len(stub.issued) == 2


def test_a_401_renews_the_token_once_and_repeats_the_call():
    """ZigZag's 401 on an early-expired token is answered with one refresh and one retry."""
    stub = ZigZagStub([fixture("return_processed.json")])
    client = make_client(stub)
    client.get_return("R000123")
    stub.revoke_all()
    assert client.get_return("R000123").return_ref == "R000123"
    assert stub.issued == ["jwt-1", "jwt-2"]


def test_a_401_with_a_fresh_token_is_an_authentication_error():
    """When even a brand-new token is refused, the credentials are the problem."""
    stub = ZigZagStub([fixture("return_processed.json")])
    client = make_client(stub)
    stub.valid = set()
    original = stub._token

    def token_then_revoke(request):
        answer = original(request)
        stub.valid.clear()
        return answer

    stub._token = token_then_revoke
    with pytest.raises(AuthenticationError):
        client.get_return("R000123")
    assert len(stub.issued) == 2


def test_bad_credentials_are_an_authentication_error():
    """A 401 from /token means the API username or password is wrong."""
    stub = ZigZagStub()
    client = ZigZagClient(
        BASE,
        username="api-user",
        password="wrong",
        retailer_code="GL123",
        transport=httpx.MockTransport(stub),
    )
    with pytest.raises(AuthenticationError, match="api-user"):
        client.get_return("R000123")


def test_unknown_return_is_not_found():
    """Z-4: a 404 for an unknown return is NotFoundError."""
    with pytest.raises(NotFoundError):
        make_client(ZigZagStub()).get_return("R999999")


def test_return_id_is_escaped_in_the_path():
    """A return id with a slash cannot walk out of the Returns resource."""
    stub = ZigZagStub()
    with pytest.raises(NotFoundError):
        make_client(stub).get_return("../token")
    assert api_calls(stub)[0].url.raw_path.startswith(b"/Return/api/v1/Returns/..%2Ftoken")


def test_rate_limit_is_retried_after_the_servers_wait():
    """A 429 with Retry-After is waited out and retried within the call."""
    stub = ZigZagStub([fixture("return_processed.json")])
    stub.queued.append(httpx.Response(429, headers={"Retry-After": "2"}))
    waits: list[float] = []
    client = make_client(stub, retry=http.RetryPolicy(sleep=waits.append))
    assert client.get_return("R000123").status == "Processed"
    assert waits == [2.0]


def test_server_errors_exhaust_retries_into_a_transient_error():
    """Three 503s in a row surface as TransientConnectorError for the job-level retry."""
    stub = ZigZagStub([fixture("return_processed.json")])
    stub.queued.extend(httpx.Response(503, headers={"Retry-After": "1"}) for _ in range(3))
    with pytest.raises(TransientConnectorError) as caught:
        make_client(stub).get_return("R000123")
    assert caught.value.retry_after == 1.0
    assert len(api_calls(stub)) == 3


def test_read_timeout_on_a_get_is_retried():
    """A timed-out read is transient: retried, and the retry succeeds."""
    stub = ZigZagStub([fixture("return_processed.json")])
    request = httpx.Request("GET", f"{BASE}/Return/api/v1/Returns/R000123")
    stub.queued.append(httpx.ReadTimeout("timed out", request=request))
    assert make_client(stub).get_return("R000123").return_ref == "R000123"


def test_connect_errors_everywhere_become_transient():
    """When ZigZag cannot be reached at all, the result is TransientConnectorError."""

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = ZigZagClient(
        BASE,
        username="api-user",
        password=PASSWORD,
        retailer_code="GL123",
        transport=httpx.MockTransport(down),
        retry=http.RetryPolicy(sleep=lambda _: None),
    )
    with pytest.raises(TransientConnectorError):
        client.get_return("R000123")


def test_a_2xx_with_a_non_json_body_is_a_connector_error():
    """A 200 that breaks the contract is a ConnectorError, not a crash."""
    stub = ZigZagStub()
    stub.queued.append(httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(ConnectorError, match="not JSON"):
        make_client(stub).get_return("R000123")


def _many_returns(count: int) -> list[dict]:
    base = fixture("return_processed.json")
    out = []
    for i in range(count):
        item = copy.deepcopy(base)
        item["returnId"] = f"R{i:06d}"
        at = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(minutes=i)
        item["updatedAt"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(item)
    return out


def test_returns_updated_since_reads_every_page():
    """250 changed returns come back in three pages of 100, oldest change first."""
    stub = ZigZagStub(_many_returns(250))
    since = datetime(2026, 10, 1, tzinfo=UTC)
    snapshots = list(make_client(stub).returns_updated_since(since))
    assert [s.return_ref for s in snapshots] == [f"R{i:06d}" for i in range(250)]
    pages = [r.url.params for r in api_calls(stub)]
    assert [p["page"] for p in pages] == ["1", "1", "1"]  # keyset: from the newest seen
    assert [p["updatedFrom"] for p in pages] == [
        "2026-10-01T00:00:00Z",
        "2026-10-01T01:39:00Z",
        "2026-10-01T03:18:00Z",
    ]
    assert {p["pageSize"] for p in pages} == {str(PAGE_SIZE)}
    assert pages[0]["retailerCode"] == "GL123"


class _ChangingWhilePaged(ZigZagStub):
    """After the first page is served, the first return changes (moves to the end)."""

    def _list(self, request: httpx.Request) -> httpx.Response:
        answer = super()._list(request)
        first = self.returns["R000000"]
        if first["updatedAt"].startswith("2026-10-01"):
            first["updatedAt"] = "2026-10-02T00:00:00Z"
        return answer


def test_a_return_changed_while_paging_does_not_hide_the_next_one():
    """With page numbers, R000100 slid onto page 1 when R000000 moved: never read, lost."""
    stub = _ChangingWhilePaged(_many_returns(250))
    seen = {
        s.return_ref
        for s in make_client(stub).returns_updated_since(datetime(2026, 10, 1, tzinfo=UTC))
    }
    assert seen == {f"R{i:06d}" for i in range(250)}


def test_returns_updated_since_stops_when_the_server_ignores_page():
    """A server answering page 1 every time cannot trap the sweep; repeats are yielded once."""
    first_page = {"items": _many_returns(100), "page": 1, "pageSize": 100, "totalCount": 250}
    stub = ZigZagStub()
    stub.queued.extend(httpx.Response(200, json=first_page) for _ in range(5))
    snapshots = list(make_client(stub).returns_updated_since(START))
    assert len(api_calls(stub)) == 3
    assert len(snapshots) == 100


def test_returns_updated_since_filters_on_the_window_and_converts_to_utc():
    """`since` in another zone is sent as UTC with Z, truncated to the second."""
    stub = ZigZagStub(_many_returns(10))
    since = datetime(2026, 10, 1, 2, 5, 0, 900, tzinfo=timezone(timedelta(hours=2)))
    snapshots = list(make_client(stub).returns_updated_since(since))
    assert [s.return_ref for s in snapshots] == [f"R{i:06d}" for i in range(5, 10)]
    assert api_calls(stub)[0].url.params["updatedFrom"] == "2026-10-01T00:05:00Z"
    assert all(s.updated_at.tzinfo is UTC for s in snapshots)


def test_returns_updated_since_with_nothing_changed_reads_one_page():
    """An empty result is one request and no snapshots."""
    stub = ZigZagStub()
    assert list(make_client(stub).returns_updated_since(START)) == []
    assert len(api_calls(stub)) == 1


def test_returns_updated_since_reads_the_recorded_page_shape():
    """The recorded page fixture parses into one snapshot with its raw item."""
    stub = ZigZagStub()
    stub.queued.append(httpx.Response(200, json=fixture("returns_page.json")))
    [snapshot] = list(make_client(stub).returns_updated_since(START))
    assert snapshot.return_ref == "R000200"
    assert snapshot.status == "Approved"
    assert snapshot.raw["items"][0]["unitPrice"] == "19.99"


def test_returns_updated_since_skips_and_counts_unreadable_entries(caplog):
    """An entry without returnId/updatedAt is skipped with a warning, not a stuck sweep."""
    page = fixture("returns_page.json")
    page["items"].insert(0, {"returnId": "", "status": "Approved"})
    page["totalCount"] = 2
    stub = ZigZagStub()
    stub.queued.append(httpx.Response(200, json=page))
    client = make_client(stub)
    with caplog.at_level(logging.WARNING):
        snapshots = list(client.returns_updated_since(START))
    assert [s.return_ref for s in snapshots] == ["R000200"]
    assert client.malformed_seen == 1
    assert "unreadable" in caplog.text


def test_returns_updated_since_refuses_a_naive_time():
    """A naive `since` is ambiguous and refused."""
    with pytest.raises(ValueError, match="timezone"):
        next(make_client(ZigZagStub()).returns_updated_since(datetime(2026, 10, 1)))  # noqa: DTZ001


def test_record_refund_puts_the_documented_body():
    """Z-5: PUT .../Returns/{id}/Refund with amount as a 2 dp string and both references."""
    stub = ZigZagStub([fixture("return_processed.json")])
    make_client(stub).record_refund(
        "R000123",
        amount=Money(Decimal("49.98"), "GBP"),
        refund_ref="re_123",
        credit_note="CN00042",
    )
    [call] = api_calls(stub)
    assert call.method == "PUT"
    assert call.url.path == "/Return/api/v1/Returns/R000123/Refund"
    assert json.loads(call.content) == {
        "retailerCode": "GL123",
        "amount": "49.98",
        "currency": "GBP",
        "refundReference": "re_123",
        "creditNoteNumber": "CN00042",
    }


def test_record_refund_is_idempotent_on_the_reference():
    """The same refund reference twice is accepted (ZigZag answers 200 again)."""
    stub = ZigZagStub([fixture("return_processed.json")])
    client = make_client(stub)
    for _ in range(2):
        client.record_refund(
            "R000123", amount=Money.of("49.98", "GBP"), refund_ref="re_1", credit_note="CN1"
        )
    assert len(api_calls(stub)) == 2


def test_record_refund_under_another_reference_is_rejected():
    """A 409 (refunded under a different reference) is RejectedByRemoteError, not retried."""
    stub = ZigZagStub([fixture("return_processed.json")])
    client = make_client(stub)
    client.record_refund(
        "R000123", amount=Money.of("49.98", "GBP"), refund_ref="re_1", credit_note="CN1"
    )
    with pytest.raises(RejectedByRemoteError) as caught:
        client.record_refund(
            "R000123", amount=Money.of("49.98", "GBP"), refund_ref="re_2", credit_note="CN1"
        )
    assert caught.value.status == 409
    assert len(api_calls(stub)) == 2


def test_record_refund_formats_whole_amounts_with_two_decimals():
    """`10` pounds goes on the wire as "10.00"."""
    stub = ZigZagStub([fixture("return_processed.json")])
    make_client(stub).record_refund(
        "R000123", amount=Money.of(10, "GBP"), refund_ref="re_1", credit_note="CN1"
    )
    assert json.loads(api_calls(stub)[0].content)["amount"] == "10.00"


@pytest.mark.parametrize("amount", ["0.00", "-1.00", "1.005"])
def test_record_refund_refuses_amounts_zigzag_cannot_hold(amount):
    """Zero, negative or sub-penny refunds never leave the process."""
    stub = ZigZagStub([fixture("return_processed.json")])
    with pytest.raises(ValueError):  # noqa: PT011 (message differs per case)
        make_client(stub).record_refund(
            "R000123", amount=Money.of(amount, "GBP"), refund_ref="re_1", credit_note="CN1"
        )
    assert api_calls(stub) == []


def test_password_and_token_never_reach_logs_or_repr(caplog):
    """Neither the password nor the JWT appears in the client's repr or in any log record."""
    stub = ZigZagStub([fixture("return_processed.json")])
    stub.queued.append(httpx.Response(500))
    client = make_client(stub)
    with caplog.at_level(logging.DEBUG):
        client.get_return("R000123")
    assert PASSWORD not in repr(client)
    assert PASSWORD not in caplog.text
    assert "jwt-1" not in caplog.text
