"""Adapters over real sockets: a tiny local HTTP server stands in for ZigZag and Stripe."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from returnsync.adapters import http
from returnsync.adapters.payments.client import StripeGateway
from returnsync.adapters.zigzag.client import ZigZagClient
from returnsync.domain.money import Money
from returnsync.errors import OutcomeUnknownError, TransientConnectorError

FIXTURES = Path(__file__).parents[1] / "fixtures"
SLOW = 0.5  # seconds the slow routes wait; clients in these tests time out at 0.1


class _Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict, bytes]]

    def log_message(self, format, *args):  # noqa: A002 (stdlib signature)
        pass  # keep test output clean

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        path = urlsplit(self.path).path
        self.seen.append((method, self.path, dict(self.headers), body))
        if "slow" in self.path or self.headers.get("Idempotency-Key") == "slow":
            time.sleep(SLOW)
        if path == "/token":
            self._reply(200, {"token": "jwt-real", "expiresIn": 1800})
        elif path.startswith("/Return/api/v1/Returns/") and method == "GET":
            self._reply(
                200, json.loads((FIXTURES / "zigzag" / "return_processed.json").read_text())
            )
        elif path.endswith("/Refund") and method == "PUT":
            self._reply(200, {})
        elif path == "/v1/payment_intents/search":
            self._reply(
                200, json.loads((FIXTURES / "stripe" / "payment_intent_search.json").read_text())
            )
        elif path == "/v1/refunds" and method == "POST":
            self._reply(200, json.loads((FIXTURES / "stripe" / "refund.json").read_text()))
        else:
            self._reply(404, {"error": {"type": "invalid_request_error", "message": "no route"}})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that timed out leaves a broken pipe behind; that is the point


@pytest.fixture
def server():
    handler = type("Handler", (_Handler,), {"seen": []})
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def _zigzag(base_url: str, **kwargs) -> ZigZagClient:
    kwargs.setdefault("retry", http.RetryPolicy(attempts=1))
    return ZigZagClient(
        base_url, username="api-user", password="pw", retailer_code="GL123", **kwargs
    )


def test_zigzag_client_over_a_real_socket(server):
    """Token, read and refund PUT travel over TCP with our User-Agent and the Bearer token."""
    base_url, seen = server
    with _zigzag(base_url) as client:
        assert client.get_return("R000123").status == "Processed"
        client.record_refund(
            "R000123", amount=Money.of("49.98", "GBP"), refund_ref="re_1", credit_note="CN1"
        )
    methods = [(m, urlsplit(p).path) for m, p, _, _ in seen]
    assert methods == [
        ("POST", "/token"),
        ("GET", "/Return/api/v1/Returns/R000123"),
        ("PUT", "/Return/api/v1/Returns/R000123/Refund"),
    ]
    assert seen[1][2]["Authorization"] == "Bearer jwt-real"
    assert seen[1][2]["User-Agent"].startswith("returnsync/")


def test_zigzag_read_timeout_is_transient(server):
    """A read that outlives the client's timeout is TransientConnectorError."""
    base_url, _ = server
    with _zigzag(base_url, timeout=0.1) as client, pytest.raises(TransientConnectorError):
        client.get_return("slow")


def test_unreachable_host_is_transient():
    """Nothing listening on the port: a connect error, classified transient."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with _zigzag(f"http://127.0.0.1:{port}", timeout=0.5) as client:
        with pytest.raises(TransientConnectorError) as caught:
            client.get_return("R000123")
        assert not isinstance(caught.value, OutcomeUnknownError)


def test_stripe_gateway_over_a_real_socket(server):
    """The official SDK, through our httpx client, finds the payment and creates a refund."""
    base_url, seen = server
    with StripeGateway("sk_test_1", base_url=base_url, max_network_retries=0) as gateway:
        payment = gateway.find_payment("ORD-10001")
        assert payment is not None
        refund = gateway.refund(
            payment.payment_ref,
            amount=Money.of("49.98", "GBP"),
            idempotency_key="refund:acme:R000123:CN00042",
            metadata={"return_ref": "R000123", "credit_note": "CN00042", "tenant": "acme"},
        )
    assert refund.refund_ref == "re_3OrdRefund000001"
    method, _, headers, body = seen[-1]
    assert method == "POST"
    assert headers["Idempotency-Key"] == "refund:acme:R000123:CN00042"
    assert dict(parse_qsl(body.decode()))["amount"] == "4998"


def test_stripe_refund_timeout_is_outcome_unknown(server):
    """A refund POST whose answer never comes back is OutcomeUnknownError."""
    base_url, _ = server
    gateway = StripeGateway("sk_test_1", base_url=base_url, max_network_retries=0, timeout=0.1)
    with gateway, pytest.raises(OutcomeUnknownError):
        gateway.refund("pi_1", amount=Money.of("1.00", "GBP"), idempotency_key="slow", metadata={})
