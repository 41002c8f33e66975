"""RefundGateway contract (FakeGateway and StripeGateway over a Stripe stub), error mapping."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
import stripe

from returnsync.adapters.payments import mapping
from returnsync.adapters.payments.client import StripeGateway
from returnsync.adapters.payments.fake import FakeGateway
from returnsync.domain.money import Money
from returnsync.errors import (
    AuthenticationError,
    ConnectorError,
    NotFoundError,
    OutcomeUnknownError,
    RejectedByRemoteError,
    TransientConnectorError,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "stripe"
BASE = "http://gateway.test"
GBP = "GBP"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def _error(status: int, type_: str, message: str, code: str | None = None) -> httpx.Response:
    body = {"error": {"type": type_, "message": message}}
    if code:
        body["error"]["code"] = code
    return httpx.Response(status, json=body)


class StripeStub:
    """The Stripe subset of G-1, in memory: search, refund list (paged), refund create."""

    def __init__(self, page_limit: int | None = None) -> None:
        self.intents: dict[str, dict] = {}
        self.refunds: list[dict] = []
        self.keys: dict[str, tuple[dict, httpx.Response]] = {}
        self.requests: list[httpx.Request] = []
        self.queued: list[httpx.Response | Exception] = []
        self.page_limit = page_limit  # cap a page below the asked limit, to force paging

    def add_intent(self, intent_id: str, order_ref: str, pence: int, status: str = "succeeded"):
        self.intents[intent_id] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": pence,
            "amount_received": pence if status == "succeeded" else 0,
            "currency": "gbp",
            "status": status,
            "metadata": {"order_number": order_ref},
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.queued:
            item = self.queued.pop(0)
            if isinstance(item, Exception):
                raise item
            return item
        if not request.headers.get("Authorization", "").startswith("Bearer sk_test_"):
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        path, params = request.url.path, dict(request.url.params)
        if path == "/v1/payment_intents/search":
            return self._search(params["query"])
        if path == "/v1/refunds" and request.method == "GET":
            return self._list(params)
        if path == "/v1/refunds" and request.method == "POST":
            form = dict(parse_qsl(request.content.decode()))
            return self._create(form, request.headers.get("Idempotency-Key", ""))
        return _error(404, "invalid_request_error", f"Unrecognized request URL ({path})")

    def _search(self, query: str) -> httpx.Response:
        match = re.fullmatch(r"metadata\['order_number'\]:'(.*)'", query)
        assert match, query
        data = [i for i in self.intents.values() if i["metadata"]["order_number"] == match[1]]
        return httpx.Response(
            200,
            json={"object": "search_result", "url": "/v1/payment_intents/search", "data": data,
                  "has_more": False, "next_page": None},
        )  # fmt: skip

    def _list(self, params: dict) -> httpx.Response:
        intent = params["payment_intent"]
        if intent not in self.intents:
            return _missing(intent)
        rows = [r for r in reversed(self.refunds) if r["payment_intent"] == intent]
        if "starting_after" in params:
            ids = [r["id"] for r in rows]
            rows = rows[ids.index(params["starting_after"]) + 1 :]
        limit = min(int(params.get("limit", 10)), self.page_limit or 100)
        return httpx.Response(
            200,
            json={"object": "list", "url": "/v1/refunds", "data": rows[:limit],
                  "has_more": len(rows) > limit},
        )  # fmt: skip

    def _create(self, form: dict, key: str) -> httpx.Response:
        if key in self.keys:
            first, answer = self.keys[key]
            if first != form:
                return _error(400, "idempotency_error", "Keys for idempotent requests can "
                              "only be used with the same parameters.")  # fmt: skip
            return answer
        intent = self.intents.get(form.get("payment_intent", ""))
        if intent is None:
            return _missing(form.get("payment_intent", ""))
        amount = int(form["amount"])
        done = sum(r["amount"] for r in self.refunds if r["payment_intent"] == intent["id"])
        if done + amount > intent["amount_received"]:
            answer = _error(400, "invalid_request_error", "Refund amount is greater than "
                            "unrefunded amount on charge", code="amount_too_large")  # fmt: skip
        else:
            refund = {
                "id": f"re_stub{len(self.refunds) + 1:05d}",
                "object": "refund",
                "amount": amount,
                "currency": intent["currency"],
                "status": "succeeded",
                "payment_intent": intent["id"],
                "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
            }
            self.refunds.append(refund)
            answer = httpx.Response(200, json=refund)
        self.keys[key] = (form, answer)
        return answer


def _missing(intent: str) -> httpx.Response:
    return _error(
        400, "invalid_request_error", f"No such payment_intent: '{intent}'", "resource_missing"
    )


def stripe_gateway(stub: StripeStub, **kwargs) -> StripeGateway:
    kwargs.setdefault("max_network_retries", 0)
    return StripeGateway(
        "sk_test_123", base_url=BASE, transport=httpx.MockTransport(stub), **kwargs
    )


class _StripeSide:
    """Drives StripeGateway over the stub; seeds payments the way the stub holds them."""

    def __init__(self) -> None:
        self.stub = StripeStub(page_limit=2)
        self.gateway = stripe_gateway(self.stub)

    def add_payment(self, order_ref: str, amount: Money) -> str:
        ref = f"pi_{order_ref}"
        self.stub.add_intent(ref, order_ref, amount.minor)
        return ref

    def add_manual_refund(self, payment_ref: str, amount: Money) -> None:
        self.stub.refunds.append(
            {"id": f"re_manual{len(self.stub.refunds)}", "object": "refund",
             "amount": amount.minor, "currency": "gbp", "status": "succeeded",
             "payment_intent": payment_ref, "metadata": {}}
        )  # fmt: skip


class _FakeSide:
    def __init__(self) -> None:
        self.gateway = FakeGateway()

    def add_payment(self, order_ref: str, amount: Money) -> str:
        return self.gateway.add_payment(order_ref=order_ref, amount=amount).payment_ref

    def add_manual_refund(self, payment_ref: str, amount: Money) -> None:
        self.gateway.add_manual_refund(payment_ref, amount)


@pytest.fixture(params=["fake", "stripe"])
def side(request):
    return _FakeSide() if request.param == "fake" else _StripeSide()


META = {"return_ref": "R000123", "credit_note": "CN00042", "tenant": "acme"}


class TestRefundGatewayContract:
    """Promises every RefundGateway keeps (ports.RefundGateway)."""

    def test_find_payment_by_order(self, side):
        """The payment of an order is found with its amount; an unknown order gives None."""
        ref = side.add_payment("ORD-10001", Money.of("74.97", GBP))
        found = side.gateway.find_payment("ORD-10001")
        assert found is not None
        assert (found.payment_ref, found.order_ref) == (ref, "ORD-10001")
        assert found.amount == Money(Decimal("74.97"), GBP)
        assert side.gateway.find_payment("ORD-NOPE") is None

    def test_refund_creates_one_refund_with_metadata(self, side):
        """A refund carries its amount and metadata and is listed on the payment."""
        ref = side.add_payment("ORD-10001", Money.of("74.97", GBP))
        refund = side.gateway.refund(
            ref, amount=Money.of("49.98", GBP), idempotency_key="refund:acme:R1:CN1", metadata=META
        )
        assert refund.payment_ref == ref
        assert refund.amount == Money(Decimal("49.98"), GBP)
        assert refund.metadata == META
        assert not refund.manual
        assert side.gateway.refunds_for(ref) == [refund]

    def test_replaying_the_key_returns_the_same_refund(self, side):
        """The same idempotency key twice gives the first refund back, never a second one."""
        ref = side.add_payment("ORD-10001", Money.of("74.97", GBP))
        args = {"amount": Money.of("49.98", GBP), "idempotency_key": "k1", "metadata": META}
        first = side.gateway.refund(ref, **args)
        again = side.gateway.refund(ref, **args)
        assert again.refund_ref == first.refund_ref
        assert len(side.gateway.refunds_for(ref)) == 1

    def test_reusing_a_key_with_other_parameters_is_rejected(self, side):
        """A key replayed with another amount is refused, not silently applied."""
        ref = side.add_payment("ORD-10001", Money.of("74.97", GBP))
        side.gateway.refund(ref, amount=Money.of("10.00", GBP), idempotency_key="k1", metadata=META)
        with pytest.raises(RejectedByRemoteError):
            side.gateway.refund(
                ref, amount=Money.of("20.00", GBP), idempotency_key="k1", metadata=META
            )

    def test_refunding_more_than_was_paid_is_rejected(self, side):
        """The refunds on a payment never exceed what was received."""
        ref = side.add_payment("ORD-10001", Money.of("10.00", GBP))
        side.gateway.refund(ref, amount=Money.of("6.00", GBP), idempotency_key="k1", metadata=META)
        with pytest.raises(RejectedByRemoteError):
            side.gateway.refund(
                ref, amount=Money.of("5.00", GBP), idempotency_key="k2", metadata=META
            )

    def test_a_refused_key_stays_refused(self, side):
        """A refusal is the key's answer from then on (Stripe keeps the response of a request
        that began executing): the same key with an amount that would fit is refused too, and
        nothing is refunded under it. A new attempt needs a new key."""
        ref = side.add_payment("ORD-10001", Money.of("10.00", GBP))
        side.gateway.refund(ref, amount=Money.of("6.00", GBP), idempotency_key="k1", metadata=META)
        for amount in ("5.00", "5.00", "4.00"):
            with pytest.raises(RejectedByRemoteError):
                side.gateway.refund(
                    ref, amount=Money.of(amount, GBP), idempotency_key="k2", metadata=META
                )
        assert len(side.gateway.refunds_for(ref)) == 1

    def test_unknown_payment_is_not_found(self, side):
        """Refunding or listing a payment the gateway does not know is NotFoundError."""
        with pytest.raises(NotFoundError):
            side.gateway.refund(
                "pi_nope", amount=Money.of("1.00", GBP), idempotency_key="k", metadata=META
            )
        with pytest.raises(NotFoundError):
            side.gateway.refunds_for("pi_nope")

    def test_manual_refunds_are_listed_and_flagged(self, side):
        """A refund made by hand (no return_ref) shows up, marked manual (G-4)."""
        ref = side.add_payment("ORD-10001", Money.of("74.97", GBP))
        side.add_manual_refund(ref, Money.of("5.00", GBP))
        side.gateway.refund(ref, amount=Money.of("10.00", GBP), idempotency_key="k", metadata=META)
        refunds = side.gateway.refunds_for(ref)
        assert sorted(r.manual for r in refunds) == [False, True]

    def test_refunds_for_reads_every_page(self, side):
        """Five refunds on one payment all come back (the Stripe stub pages by two)."""
        ref = side.add_payment("ORD-10001", Money.of("74.97", GBP))
        made = {
            side.gateway.refund(
                ref, amount=Money.of("1.00", GBP), idempotency_key=f"k{i}", metadata=META
            ).refund_ref
            for i in range(5)
        }
        assert {r.refund_ref for r in side.gateway.refunds_for(ref)} == made

    def test_refund_refuses_fractions_of_a_penny(self, side):
        """Amounts that are not whole pence never reach the gateway."""
        ref = side.add_payment("ORD-10001", Money.of("74.97", GBP))
        with pytest.raises(ValueError, match="pence"):
            side.gateway.refund(
                ref, amount=Money.of("1.005", GBP), idempotency_key="k", metadata=META
            )


def test_stripe_refund_sends_pence_metadata_and_idempotency_key():
    """On the wire: form-encoded amount in pence, metadata[...] fields and Idempotency-Key."""
    stub = StripeStub()
    stub.add_intent("pi_1", "ORD-10001", 7497)
    stripe_gateway(stub).refund(
        "pi_1", amount=Money.of("49.98", GBP), idempotency_key="refund:acme:R1:CN1", metadata=META
    )
    post = stub.requests[-1]
    assert post.method == "POST"
    assert post.url == f"{BASE}/v1/refunds"
    assert post.headers["Idempotency-Key"] == "refund:acme:R1:CN1"
    assert dict(parse_qsl(post.content.decode())) == {
        "payment_intent": "pi_1",
        "amount": "4998",
        "metadata[return_ref]": "R000123",
        "metadata[credit_note]": "CN00042",
        "metadata[tenant]": "acme",
    }


def test_stripe_search_uses_the_configured_metadata_key():
    """G-3: the search query names the configurable metadata key."""
    stub = StripeStub()
    stub.queued.append(httpx.Response(200, json=fixture("payment_intent_search.json")))
    gateway = stripe_gateway(stub, order_metadata_key="order_number")
    found = gateway.find_payment("ORD-10001")
    assert stub.requests[0].url.params["query"] == "metadata['order_number']:'ORD-10001'"
    assert found is not None
    assert found.payment_ref == "pi_3OrdPaid0000001"  # the failed attempt is ignored
    assert found.amount == Money(Decimal("74.97"), GBP)


def test_search_query_escapes_quotes():
    """An order number with a quote cannot break out of the search string."""
    assert mapping.search_query("order_number", "O'Neil\\1") == (
        "metadata['order_number']:'O\\'Neil\\\\1'"
    )


def test_two_succeeded_payments_for_one_order_are_ambiguous():
    """returnsync never guesses which of two paid intents to refund."""
    stub = StripeStub()
    stub.add_intent("pi_a", "ORD-1", 100)
    stub.add_intent("pi_b", "ORD-1", 100)
    with pytest.raises(mapping.AmbiguousPaymentError, match="pi_a, pi_b"):
        stripe_gateway(stub).find_payment("ORD-1")


def test_recorded_refund_maps_to_a_gateway_refund():
    """The recorded Stripe refund fixture maps amount, currency, status and metadata."""
    refund = mapping.gateway_refund(fixture("refund.json"))
    assert refund.refund_ref == "re_3OrdRefund000001"
    assert refund.payment_ref == "pi_3OrdPaid0000001"
    assert refund.amount == Money(Decimal("49.98"), GBP)
    assert refund.status == "succeeded"
    assert refund.metadata["credit_note"] == "CN00042"


def test_money_converts_to_and_from_pence_and_lower_case_currency():
    """Money <-> (pence, 'gbp') both ways, exactly."""
    assert mapping.to_wire(Money.of("49.98", GBP)) == (4998, "gbp")
    assert mapping.from_wire(4998, "gbp") == Money(Decimal("49.98"), GBP)


def _down(kind: type[httpx.TransportError]):
    def handler(request: httpx.Request) -> httpx.Response:
        raise kind("gateway unreachable", request=request)

    return handler


def test_lost_refund_answer_is_outcome_unknown():
    """A timeout on create means the refund may exist: OutcomeUnknownError."""
    gateway = StripeGateway(
        "sk_test_1", base_url=BASE, transport=httpx.MockTransport(_down(httpx.ReadTimeout)),
        max_network_retries=0,
    )  # fmt: skip
    with pytest.raises(OutcomeUnknownError):
        gateway.refund("pi_1", amount=Money.of("1.00", GBP), idempotency_key="k", metadata={})


def test_unreachable_gateway_on_a_read_is_transient():
    """A connection failure on a read is TransientConnectorError (not outcome-unknown)."""
    gateway = StripeGateway(
        "sk_test_1", base_url=BASE, transport=httpx.MockTransport(_down(httpx.ConnectError)),
        max_network_retries=0,
    )  # fmt: skip
    with pytest.raises(TransientConnectorError) as caught:
        gateway.refunds_for("pi_1")
    assert not isinstance(caught.value, OutcomeUnknownError)


def test_sdk_retries_a_lost_answer_with_the_same_idempotency_key():
    """With network retries on, the SDK repeats the POST under the same key and succeeds."""
    stub = StripeStub()
    stub.add_intent("pi_1", "ORD-1", 1000)
    stub.queued.append(httpx.ReadTimeout("lost", request=httpx.Request("POST", BASE)))
    gateway = stripe_gateway(stub, max_network_retries=1)
    gateway._http._sleep_time_seconds = lambda _n: 0.0  # no real backoff in tests
    refund = gateway.refund("pi_1", amount=Money.of("1.00", GBP), idempotency_key="k9", metadata={})
    assert refund.amount == Money.of("1.00", GBP)
    keys = [r.headers["Idempotency-Key"] for r in stub.requests]
    assert keys == ["k9", "k9"]


@pytest.mark.parametrize(
    ("response", "write", "expected"),
    [
        (_error(429, "invalid_request_error", "slow down"), False, TransientConnectorError),
        (_error(500, "api_error", "boom"), True, TransientConnectorError),
        (_error(503, "api_error", "busy"), False, TransientConnectorError),
        (_error(401, "invalid_request_error", "bad key"), False, AuthenticationError),
        (_error(403, "invalid_request_error", "restricted key"), True, AuthenticationError),
        (_error(404, "invalid_request_error", "no such refund"), False, NotFoundError),
        (_error(400, "invalid_request_error", "bad amount", "parameter_invalid_integer"), True,
         RejectedByRemoteError),
        (_error(402, "card_error", "card declined"), True, RejectedByRemoteError),
    ],
)  # fmt: skip
def test_stripe_errors_map_to_connector_errors(response, write, expected):
    """Each Stripe failure lands in the documented ConnectorError class."""
    stub = StripeStub()
    stub.add_intent("pi_1", "ORD-1", 1000)
    stub.queued.append(response)
    gateway = stripe_gateway(stub)

    def call():
        if write:
            gateway.refund("pi_1", amount=Money.of("1.00", GBP), idempotency_key="k", metadata={})
        else:
            gateway.refunds_for("pi_1")

    with pytest.raises(ConnectorError) as caught:
        call()
    assert type(caught.value) is expected
    assert caught.value.system == "gateway"


def test_rate_limit_keeps_retry_after():
    """A 429's Retry-After header reaches the TransientConnectorError."""
    stub = StripeStub()
    stub.queued.append(
        httpx.Response(429, json=fixture("error_rate_limit.json"), headers={"Retry-After": "4"})
    )
    with pytest.raises(TransientConnectorError) as caught:
        stripe_gateway(stub).find_payment("ORD-1")
    assert caught.value.retry_after == 4.0


def test_rejections_keep_status_and_body():
    """A rejected request carries Stripe's status and error body for the exception queue."""
    error = stripe.InvalidRequestError("bad", "amount", http_status=400, http_body='{"error":1}')
    mapped = mapping.connector_error(error, write=True)
    assert isinstance(mapped, RejectedByRemoteError)
    assert (mapped.status, mapped.body) == (400, '{"error":1}')


def test_api_key_never_appears_in_repr_or_errors():
    """The secret key is not in the gateway's repr or in a mapped error's message."""
    stub = StripeStub()
    stub.queued.append(_error(401, "invalid_request_error", "Invalid API Key provided"))
    gateway = StripeGateway(
        "sk_test_SECRETVALUE", base_url=BASE, transport=httpx.MockTransport(stub),
        max_network_retries=0,
    )  # fmt: skip
    assert "SECRETVALUE" not in repr(gateway)
    with pytest.raises(AuthenticationError) as caught:
        gateway.find_payment("ORD-1")
    assert "SECRETVALUE" not in str(caught.value)


def test_fake_gateway_can_be_told_to_fail():
    """`fail_next` lets service tests script a gateway outage."""
    gateway = FakeGateway(fail_next=[TransientConnectorError(system="gateway")])
    with pytest.raises(TransientConnectorError):
        gateway.find_payment("ORD-1")
    assert gateway.find_payment("ORD-1") is None
