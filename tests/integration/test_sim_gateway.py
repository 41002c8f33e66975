"""The gateway simulator, driven over real HTTP by the official `stripe` SDK (and httpx)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import stripe

from returnsync.simulators.gateway import DEFAULT_API_KEY, GatewaySimulator
from returnsync.simulators.runtime import FaultSpec

OTHER_KEY = "sk_test_other_retailer"


@pytest.fixture
def sim():
    simulator = GatewaySimulator(seed=7, faults=FaultSpec(hang_seconds=0.05))
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def client(sim):
    return stripe.StripeClient(
        DEFAULT_API_KEY, base_addresses={"api": sim.url}, max_network_retries=0
    )


def admin(sim, path, body):
    response = httpx.post(f"{sim.url}/_sim/{path}", json=body)
    assert response.status_code < 300, response.text
    return response.json()


def pay(sim, order_number, amount=4998, *, api_key=DEFAULT_API_KEY, metadata=None):
    payment = {"order_number": order_number, "amount": amount, "currency": "GBP"}
    if metadata:
        payment["metadata"] = metadata
    return admin(sim, "payments", {"api_key": api_key, "payments": [payment]})["ids"][0]


def refunds_in_ledger(sim):
    return sim.state_snapshot()["refunds"]


def refund_params(intent, amount=1000, return_ref="R000123"):
    return {
        "payment_intent": intent,
        "amount": amount,
        "reason": "requested_by_customer",
        "metadata": {"return_ref": return_ref, "credit_note": "CN00042", "tenant": "GL123"},
    }


def test_create_and_retrieve_payment_intent(client):
    """A confirmed PaymentIntent succeeds at once with a charge, and reads back the same."""
    created = client.v1.payment_intents.create(
        params={
            "amount": 4998,
            "currency": "gbp",
            "confirm": True,
            "metadata": {"order_number": "ORD-10001"},
        }
    )
    assert created.id.startswith("pi_")
    assert created.object == "payment_intent"
    assert created.status == "succeeded"
    assert created.amount_received == 4998
    assert created.latest_charge.startswith("ch_")

    fetched = client.v1.payment_intents.retrieve(created.id)
    assert fetched.id == created.id
    assert fetched.amount == 4998
    assert fetched.currency == "gbp"
    assert fetched.metadata.to_dict() == {"order_number": "ORD-10001"}


def test_unconfirmed_intent_has_nothing_to_refund(client):
    """Without `confirm` an intent awaits a payment method, so a refund is refused."""
    intent = client.v1.payment_intents.create(params={"amount": 500, "currency": "gbp"})
    assert intent.status == "requires_payment_method"
    assert intent.latest_charge is None
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"payment_intent": intent.id})
    assert caught.value.code == "charge_not_refundable"


def test_search_finds_intent_by_order_number_metadata(sim, client):
    """`metadata['order_number']:'…'` (alone or ANDed) finds exactly that order's payment."""
    wanted = pay(sim, "ORD-10001", metadata={"channel": "web"})
    pay(sim, "ORD-10002")

    result = client.v1.payment_intents.search(
        params={"query": "metadata['order_number']:'ORD-10001'"}
    )
    assert result.object == "search_result"
    assert [p.id for p in result.data] == [wanted]
    assert result.has_more is False

    anded = client.v1.payment_intents.search(
        params={"query": "metadata['order_number']:'ORD-10001' AND metadata['channel']:'web'"}
    )
    assert [p.id for p in anded.data] == [wanted]

    none = client.v1.payment_intents.search(
        params={"query": "metadata['order_number']:'ORD-10001' AND metadata['channel']:'pos'"}
    )
    assert none.data == []


def test_search_pages_through_next_page(sim, client):
    """The SDK's search auto-pagination follows `next_page` to every match, newest first."""
    ids = [pay(sim, "ORD-SPLIT", amount) for amount in (1000, 2000, 3000)]
    first = client.v1.payment_intents.search(
        params={"query": 'metadata["order_number"]:"ORD-SPLIT"', "limit": 2}
    )
    assert first.has_more is True
    assert first.next_page
    assert [p.id for p in first.auto_paging_iter()] == ids[::-1]


def test_bad_search_query_is_invalid_request(client):
    """A query outside the supported language is a 400 naming the `query` param."""
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.search(params={"query": "order_number = ORD-1"})
    assert caught.value.param == "query"


def test_refund_carries_metadata(sim, client):
    """A refund answers Stripe's refund object and keeps our metadata and idempotency key."""
    intent = pay(sim, "ORD-10001")
    charge = client.v1.payment_intents.retrieve(intent).latest_charge
    refund = client.v1.refunds.create(
        params=refund_params(intent), options={"idempotency_key": "refund:GL123:R000123:CN00042"}
    )
    assert refund.id.startswith("re_")
    assert refund.object == "refund"
    assert refund.amount == 1000
    assert refund.currency == "gbp"
    assert refund.payment_intent == intent
    assert refund.charge == charge
    assert refund.status == "succeeded"
    assert refund.reason == "requested_by_customer"
    assert refund.metadata.to_dict() == {
        "return_ref": "R000123",
        "credit_note": "CN00042",
        "tenant": "GL123",
    }
    assert client.v1.refunds.retrieve(refund.id).amount == 1000

    [recorded] = refunds_in_ledger(sim)
    assert recorded["idempotency_key"] == "refund:GL123:R000123:CN00042"
    assert recorded["source"] == "api"


def test_refund_without_amount_takes_the_remainder(sim, client):
    """No `amount` refunds what remains; after that the charge is already refunded."""
    intent = pay(sim, "ORD-10001", 4998)
    client.v1.refunds.create(params={"payment_intent": intent, "amount": 998})
    rest = client.v1.refunds.create(params={"payment_intent": intent})
    assert rest.amount == 4000
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"payment_intent": intent})
    assert caught.value.code == "charge_already_refunded"
    assert caught.value.http_status == 400


def test_list_refunds_by_payment_intent(sim, client):
    """Listing by PaymentIntent gives only its refunds, newest first, across pages."""
    intent = pay(sim, "ORD-10001")
    other = pay(sim, "ORD-10002")
    made = [
        client.v1.refunds.create(params=refund_params(intent, 100, f"R{n}")).id for n in range(3)
    ]
    client.v1.refunds.create(params=refund_params(other, 100))

    page = client.v1.refunds.list(params={"payment_intent": intent, "limit": 2})
    assert page.object == "list"
    assert page.url == "/v1/refunds"
    assert page.has_more is True
    assert [r.id for r in page.data] == made[:0:-1]
    assert [r.id for r in page.auto_paging_iter()] == made[::-1]


def test_same_idempotency_key_replays_one_refund(sim, client):
    """The same key twice answers the same refund, marked replayed; the ledger holds one."""
    intent = pay(sim, "ORD-10001")
    options = {"idempotency_key": "refund:GL123:R000123:CN00042"}
    first = client.v1.refunds.create(params=refund_params(intent), options=options)
    again = client.v1.refunds.create(params=refund_params(intent), options=options)

    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert again.last_response.headers["Original-Request"] == first.last_response.request_id
    assert again.last_response.idempotency_key == options["idempotency_key"]
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert len(refunds_in_ledger(sim)) == 1


def test_key_reused_with_other_params_is_idempotency_error(sim, client):
    """Reusing a key with a different amount is a 400 `idempotency_error`; nothing is refunded."""
    intent = pay(sim, "ORD-10001")
    options = {"idempotency_key": "refund:GL123:R000123:CN00042"}
    client.v1.refunds.create(params=refund_params(intent, 1000), options=options)
    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.refunds.create(params=refund_params(intent, 1200), options=options)
    assert caught.value.http_status == 400
    assert caught.value.json_body["error"]["type"] == "idempotency_error"
    assert len(refunds_in_ledger(sim)) == 1


def test_idempotency_key_expires_after_24_hours(sim, client):
    """After 24 simulated hours the key is forgotten and the same request refunds again."""
    intent = pay(sim, "ORD-10001")
    options = {"idempotency_key": "k-expiring"}
    first = client.v1.refunds.create(params=refund_params(intent), options=options)
    admin(sim, "clock/advance", {"seconds": 24 * 3600})
    second = client.v1.refunds.create(params=refund_params(intent), options=options)
    assert second.id != first.id
    assert len(refunds_in_ledger(sim)) == 2


def test_failed_validation_does_not_spend_the_key(sim):
    """A request rejected in validation saves nothing: the key still works afterwards."""
    intent = pay(sim, "ORD-10001")
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}", "Idempotency-Key": "k-valid"}
    bad = httpx.post(
        f"{sim.url}/v1/refunds", data={"payment_intent": intent, "amount": "ten"}, headers=headers
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "parameter_invalid_integer"
    good = httpx.post(
        f"{sim.url}/v1/refunds", data={"payment_intent": intent, "amount": "10"}, headers=headers
    )
    assert good.status_code == 200
    assert "Idempotent-Replayed" not in good.headers


def test_over_refund_is_amount_too_large(sim, client):
    """Refunding more than remains is a 400 `amount_too_large` on `amount`, and refunds nothing."""
    intent = pay(sim, "ORD-10001", 4998)
    client.v1.refunds.create(params={"payment_intent": intent, "amount": 4000})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"payment_intent": intent, "amount": 999})
    error = caught.value
    assert error.http_status == 400
    assert error.code == "amount_too_large"
    assert error.param == "amount"
    assert error.json_body["error"]["type"] == "invalid_request_error"
    assert len(refunds_in_ledger(sim)) == 1


def test_refund_of_unknown_intent_is_resource_missing(client):
    """An unknown PaymentIntent is a 404 `resource_missing`."""
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"payment_intent": "pi_doesnotexist", "amount": 100})
    assert caught.value.http_status == 404
    assert caught.value.code == "resource_missing"


def test_goodwill_refund_is_listed_without_return_ref(sim, client):
    """A CX dashboard refund shows in the PaymentIntent's refunds with no `return_ref`."""
    intent = pay(sim, "ORD-10001", 4998)
    ours = client.v1.refunds.create(params=refund_params(intent, 2000))
    goodwill = admin(
        sim,
        "goodwill_refund",
        {"api_key": DEFAULT_API_KEY, "order_number": "ORD-10001", "amount": 500, "note": "sorry"},
    )

    listed = client.v1.refunds.list(params={"payment_intent": intent})
    assert [r.id for r in listed.data] == [goodwill["id"], ours.id]
    manual = listed.data[0]
    assert manual.amount == 500
    assert "return_ref" not in manual.metadata
    sources = {r["id"]: r["source"] for r in refunds_in_ledger(sim)}
    assert sources == {ours.id: "api", goodwill["id"]: "dashboard"}


def test_goodwill_refund_cannot_exceed_the_remainder(sim):
    """The dashboard obeys the same limit: more than remains is `amount_too_large`."""
    intent = pay(sim, "ORD-10001", 1000)
    response = httpx.post(
        f"{sim.url}/_sim/goodwill_refund",
        json={"api_key": DEFAULT_API_KEY, "payment_intent": intent, "amount": 1001},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "amount_too_large"


class HealAfterFirstAttempt(stripe.RequestsClient):
    """An SDK HTTP client that clears the simulator's faults after the first attempt."""

    def __init__(self, faults):
        super().__init__()
        self.faults = faults
        self.sent_keys = []

    def request(self, method, url, headers, post_data=None):
        self.sent_keys.append(headers.get("Idempotency-Key"))
        try:
            return super().request(method, url, headers, post_data)
        finally:
            self.faults.lost_response = 0.0


def test_lost_response_then_sdk_retry_makes_one_refund(sim):
    """Refund applied, response lost: the SDK retries with the same key and gets the replay."""
    intent = pay(sim, "ORD-10001")
    http = HealAfterFirstAttempt(sim.faults)
    client = stripe.StripeClient(
        DEFAULT_API_KEY, base_addresses={"api": sim.url}, max_network_retries=2, http_client=http
    )
    sim.faults.lost_response = 1.0

    refund = client.v1.refunds.create(params=refund_params(intent))

    assert len(http.sent_keys) == 2
    assert http.sent_keys[0] == http.sent_keys[1] is not None
    assert refund.last_response.headers["Idempotent-Replayed"] == "true"
    assert [r["id"] for r in refunds_in_ledger(sim)] == [refund.id]
    assert sim.fault_counts() == {"lost_response": 1}


def test_response_lost_on_every_attempt_still_one_refund(sim, client):
    """Every attempt lost: the caller sees an error, the ledger one refund, a retry the replay."""
    intent = pay(sim, "ORD-10001")
    retrying = stripe.StripeClient(
        DEFAULT_API_KEY, base_addresses={"api": sim.url}, max_network_retries=2
    )
    sim.faults.lost_response = 1.0
    options = {"idempotency_key": "refund:GL123:R000123:CN00042"}

    with pytest.raises(stripe.APIError):
        retrying.v1.refunds.create(params=refund_params(intent), options=options)
    assert sim.fault_counts() == {"lost_response": 3}
    [recorded] = refunds_in_ledger(sim)

    sim.faults.lost_response = 0.0
    later = client.v1.refunds.create(params=refund_params(intent), options=options)
    assert later.id == recorded["id"]
    assert len(refunds_in_ledger(sim)) == 1


def test_concurrent_request_with_key_in_flight_is_409(sim):
    """A request whose key is still executing gets 409; the SDK retries it into the replay."""
    intent = pay(sim, "ORD-10001")
    admin(sim, "settings", {"apply_delay_seconds": 0.4})
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}", "Idempotency-Key": "k-race"}
    form = {"payment_intent": intent, "amount": "100"}
    first = {}
    thread = threading.Thread(
        target=lambda: first.update(
            response=httpx.post(f"{sim.url}/v1/refunds", data=form, headers=headers)
        )
    )
    thread.start()
    deadline = time.monotonic() + 5
    while not sim.state_snapshot()["idempotency_keys"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)

    clash = httpx.post(f"{sim.url}/v1/refunds", data=form, headers=headers)
    assert clash.status_code == 409
    assert clash.json()["error"]["type"] == "idempotency_error"
    assert clash.json()["error"]["code"] == "idempotency_key_in_use"

    retrying = stripe.StripeClient(
        DEFAULT_API_KEY, base_addresses={"api": sim.url}, max_network_retries=3
    )
    replay = retrying.v1.refunds.create(
        params={"payment_intent": intent, "amount": 100}, options={"idempotency_key": "k-race"}
    )
    thread.join()
    assert first["response"].status_code == 200
    assert replay.id == first["response"].json()["id"]
    assert len(refunds_in_ledger(sim)) == 1


def test_bad_api_key_is_401(sim):
    """An unknown or missing key is a 401 Stripe error object, which the SDK raises as such."""
    stranger = stripe.StripeClient(
        "sk_test_unknown_key_1234", base_addresses={"api": sim.url}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError) as caught:
        stranger.v1.refunds.list()
    assert caught.value.http_status == 401
    assert "1234" in caught.value.user_message
    assert "unknown_key" not in caught.value.user_message

    anonymous = httpx.get(f"{sim.url}/v1/refunds")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "invalid_request_error"


def test_accounts_see_only_their_own_objects(sim, client):
    """Each API key is one account: another key cannot see, find or refund its payments."""
    admin(sim, "accounts", {"api_key": OTHER_KEY, "name": "Other retailer"})
    mine = pay(sim, "ORD-10001")
    client.v1.refunds.create(params=refund_params(mine))
    theirs = pay(sim, "ORD-10001", api_key=OTHER_KEY)
    other = stripe.StripeClient(OTHER_KEY, base_addresses={"api": sim.url}, max_network_retries=0)

    with pytest.raises(stripe.InvalidRequestError) as caught:
        other.v1.payment_intents.retrieve(mine)
    assert caught.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError):
        other.v1.refunds.create(params={"payment_intent": mine, "amount": 100})
    found = other.v1.payment_intents.search(
        params={"query": "metadata['order_number']:'ORD-10001'"}
    )
    assert [p.id for p in found.data] == [theirs]
    assert other.v1.refunds.list().data == []
    assert len(client.v1.refunds.list().data) == 1


def test_same_key_in_two_accounts_does_not_collide(sim, client):
    """Idempotency keys are scoped per account: one key value refunds once in each."""
    admin(sim, "accounts", {"api_key": OTHER_KEY, "name": "Other retailer"})
    other = stripe.StripeClient(OTHER_KEY, base_addresses={"api": sim.url}, max_network_retries=0)
    options = {"idempotency_key": "shared-key"}
    mine = client.v1.refunds.create(params=refund_params(pay(sim, "ORD-1")), options=options)
    theirs = other.v1.refunds.create(
        params=refund_params(pay(sim, "ORD-1", api_key=OTHER_KEY)), options=options
    )
    assert mine.id != theirs.id
    assert len(refunds_in_ledger(sim)) == 2


def test_every_response_carries_a_request_id(sim):
    """Successes, Stripe errors and unknown URLs all answer a `Request-Id` header."""
    auth = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    responses = [
        httpx.get(f"{sim.url}/v1/refunds", headers=auth),
        httpx.get(f"{sim.url}/v1/refunds/re_missing", headers=auth),
        httpx.post(f"{sim.url}/v1/refunds", data={}, headers=auth),
        httpx.get(f"{sim.url}/v1/nowhere", headers=auth),
    ]
    assert [r.status_code for r in responses] == [200, 404, 400, 404]
    ids = [r.headers["Request-Id"] for r in responses]
    assert all(i.startswith("req_") for i in ids)
    assert len(set(ids)) == len(ids)


def test_unknown_parameter_is_rejected(sim):
    """Like Stripe, a parameter the endpoint does not take is a 400 `parameter_unknown`."""
    response = httpx.post(
        f"{sim.url}/v1/refunds",
        data={"payment_intent": "pi_x", "amout": "100"},
        headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parameter_unknown"
    assert response.json()["error"]["param"] == "amout"


def test_state_snapshot_matches_admin_endpoint(sim, client):
    """`state_snapshot()` and `GET /_sim/state` are the same document."""
    intent = pay(sim, "ORD-10001")
    client.v1.refunds.create(params=refund_params(intent))
    served = httpx.get(f"{sim.url}/_sim/state").json()
    assert served == sim.state_snapshot()
    assert {"accounts", "payment_intents", "refunds"} <= served.keys()
    [refund] = served["refunds"]
    assert refund["payment_intent"] == intent
    assert refund["metadata"]["return_ref"] == "R000123"


def test_reset_forgets_objects_but_keeps_the_demo_account(sim, client):
    """`POST /_sim/reset` empties the ledger and key store; the demo key still works."""
    intent = pay(sim, "ORD-10001")
    client.v1.refunds.create(params=refund_params(intent), options={"idempotency_key": "k"})
    admin(sim, "reset", {})
    state = sim.state_snapshot()
    assert state["payment_intents"] == state["refunds"] == state["idempotency_keys"] == []
    assert [a["api_key"] for a in state["accounts"]] == [DEFAULT_API_KEY]
    assert client.v1.refunds.list().data == []


def test_faults_can_be_set_over_http(sim):
    """`POST /_sim/faults` patches the live spec; unknown faults are a 400."""
    body = admin(sim, "faults", {"error_5xx": 0.25})
    assert body["spec"]["error_5xx"] == 0.25
    assert sim.faults.error_5xx == 0.25
    assert httpx.post(f"{sim.url}/_sim/faults", json={"nonsense": 1}).status_code == 400


def test_same_seed_gives_same_ids():
    """One seed drives the ids: two simulators with the same seed mint the same payments."""
    ids = []
    for _ in range(2):
        simulator = GatewaySimulator(seed=42)
        simulator.start()
        try:
            ids.append(pay(simulator, "ORD-1"))
        finally:
            simulator.stop()
    assert ids[0] == ids[1]


def test_injected_faults_answer_stripe_error_objects(sim, client):
    """Injected 5xx and 429 answers are Stripe error objects the SDK raises as its own errors."""
    sim.faults.error_5xx = 1.0
    with pytest.raises(stripe.APIError) as caught:
        client.v1.refunds.list()
    assert caught.value.http_status in {500, 502, 503}
    assert caught.value.json_body["error"]["type"] == "api_error"
    assert caught.value.request_id.startswith("req_")

    sim.faults.error_5xx = 0.0
    sim.faults.rate_limit_per_second = 1
    statuses = []
    for _ in range(5):
        try:
            client.v1.refunds.list()
            statuses.append(200)
        except stripe.RateLimitError as error:
            statuses.append(error.http_status)
    assert 429 in statuses
