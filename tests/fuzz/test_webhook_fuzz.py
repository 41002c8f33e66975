"""Fuzzing POST /webhooks/zigzag/{tenant} (the issue's "bad input" item).

With the tenant's X-ZigZag-Api-Key every body is answered 200 (stored) or 202 (stored and
quarantined with an `invalid_payload` exception), never 4xx or 5xx, and the inbox then holds
it. Without the key, with a wrong key or for an unknown tenant: 401 and nothing stored.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from returnsync.services.intake import MAX_BODY_BYTES
from returnsync.storage import tables

if TYPE_CHECKING:
    import httpx

FIXTURES = Path(__file__).parent.parent / "fixtures"
ENVELOPE = json.loads((FIXTURES / "zigzag/webhook_items_inspected.json").read_text("utf-8"))
EVENT_TYPES = (
    "ReturnCreated",
    "ReturnApproved",
    "ReturnLabelCreated",
    "ReturnReceived",
    "ReturnItemsInspected",
    "ReturnRefunded",
    "ReturnClosed",
    "ReturnCancelled",
)
WEBHOOK = "POST /webhooks/zigzag/{tenant}"
RETAILER = ENVELOPE["retailerCode"]

iso_times = st.integers(946_684_800, 4_102_444_800).map(  # 2000 .. 2100
    lambda seconds: datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
)


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A valid Z-9 envelope for our retailer (sometimes another retailer's)."""
    event = json.loads(json.dumps(ENVELOPE))
    return_id = draw(st.from_regex(r"R[0-9]{6}", fullmatch=True))
    retailer = draw(st.sampled_from([RETAILER, RETAILER, RETAILER, "BE456", "gl123"]))
    event.update(
        eventId=str(draw(st.uuids())),
        eventType=draw(st.sampled_from(EVENT_TYPES)),
        occurredAt=draw(iso_times),
        retailerCode=retailer,
        returnId=return_id,
    )
    event["data"].update(returnId=return_id, retailerCode=retailer, updatedAt=draw(iso_times))
    for item in event["data"]["items"]:
        item["unitPrice"] = str(draw(st.decimals(min_value=0, max_value=10_000, places=2)))
    return event


def stored_text(body: bytes) -> str:
    """What the inbox keeps of a body: UTF-8 text, at most MAX_BODY_BYTES (intake's contract)."""
    return body[:MAX_BODY_BYTES].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _event_id(body: bytes) -> str:
    return json.loads(body)["eventId"]


def check_authenticated(harness, body: bytes, response: httpx.Response, before) -> None:
    """The answer is 200/202 and the inbox holds the body (quarantined ones with an exception)."""
    assert response.status_code in {200, 202}, harness.explain(response)
    answer = response.json()
    assert len(harness.inbox_rows(after_id=before.inbox)) in {0, 1}
    text = stored_text(body)
    if response.status_code == 200:
        if answer["inbox_id"] is None:  # a replay of a delivery already stored
            assert answer["status"].startswith("duplicate"), answer
            rows = harness.inbox_rows(source="zigzag_webhook", dedupe_key=_event_id(body))
            assert len(rows) == 1, rows
            return
        row = harness.inbox_row(answer["inbox_id"])
        assert row is not None
        assert row["payload"] == body.decode("utf-8")
        assert (row["status"], row["source"], row["tenant"]) == (
            "pending",
            "zigzag_webhook",
            harness.tenant,
        )
        assert row["dedupe_key"] == _event_id(body)
        jobs = harness.jobs(after_id=before.job, kind="sync_return", status="pending")
        assert [j["payload"].get("inbox_id") for j in jobs] == [row["id"]]
        return
    if answer["inbox_id"] is None:  # the same bad content was quarantined before
        assert answer["status"] == "already quarantined", answer
        rows = harness.inbox_rows(source="zigzag_webhook", payload=text)
        assert rows, "a replayed bad body must already be in the inbox"
    else:
        row = harness.inbox_row(answer["inbox_id"])
        assert row is not None
        rows = [row]
        assert row["payload"] == text
    for row in rows:
        assert row["status"] == "quarantined", row
        assert row["error"]
        assert harness.invalid_payload_exception(row["id"]) is not None, row


def send(harness, body: bytes, headers: dict[str, Any] | None = None, path: str | None = None):
    """POST a body to the webhook (counted)."""
    return harness.request(
        "POST",
        path or f"/webhooks/zigzag/{harness.tenant}",
        body=body,
        headers=harness.webhook_headers() if headers is None else headers,
        count=WEBHOOK,
    )


def authenticated_property(harness):
    def check(body: bytes) -> None:
        before = harness.marks()
        check_authenticated(harness, body, send(harness, body), before)

    return check


def test_arbitrary_bytes(harness, fuzz_run):
    examples = fuzz_run.examples(default=40, chaos=1200)
    check = authenticated_property(harness)

    @fuzz_run.settings(examples)
    @given(body=st.binary(max_size=3000))
    @example(body=b"")
    @example(body=b"\x00")
    @example(body=b"\xff\xfe{\x00}\x00")
    @example(body=json.dumps(ENVELOPE).encode("utf-16"))
    @example(body=b"[" * 100_000 + b"]" * 100_000)
    @example(body=b"\xef\xbb\xbf" + json.dumps(ENVELOPE).encode())
    def prop(body: bytes) -> None:
        check(body)

    _run_counted(harness, prop, fuzz_run, examples)


def test_arbitrary_json(harness, fuzz_run, gen):
    examples = fuzz_run.examples(default=40, chaos=1200)
    check = authenticated_property(harness)

    @fuzz_run.settings(examples)
    @given(body=gen.json_text())
    def prop(body: bytes) -> None:
        check(body)

    _run_counted(harness, prop, fuzz_run, examples)


def test_near_valid_envelopes(harness, fuzz_run, gen):
    examples = fuzz_run.examples(default=100, chaos=2500)
    check = authenticated_property(harness)

    @fuzz_run.settings(examples)
    @given(body=gen.mutated(envelopes()))
    @example(body=json.dumps(ENVELOPE | {"eventId": "x" * 300}).encode())
    @example(body=json.dumps(ENVELOPE | {"eventId": "nul\u0000", "eventType": "T" * 80}).encode())
    @example(body=json.dumps(ENVELOPE | {"returnId": "R" * 100}).encode())
    @example(body=json.dumps(ENVELOPE | {"occurredAt": "0001-01-01T00:00:00+01:00"}).encode())
    @example(
        body=json.dumps(ENVELOPE).replace('"quantity": 3', '"quantity": ' + "9" * 4301).encode()
    )
    def prop(body: bytes) -> None:
        check(body)

    _run_counted(harness, prop, fuzz_run, examples)


def test_wrong_retailer_is_quarantined_at_once(harness):
    """Another retailer's event (a misrouted key) is stored and quarantined, without waiting."""
    event = json.loads(json.dumps(ENVELOPE))
    event["eventId"] = "misrouted-1"
    event["retailerCode"] = event["data"]["retailerCode"] = "BE456"
    body = json.dumps(event).encode()
    before = harness.marks()
    response = send(harness, body)
    check_authenticated(harness, body, response, before)
    assert response.status_code == 202
    assert response.elapsed.total_seconds() < 5


def test_huge_bodies(harness, fuzz_run, gen):
    examples = fuzz_run.examples(default=4, chaos=50)
    check = authenticated_property(harness)

    @fuzz_run.settings(examples)
    @given(body=gen.huge(envelopes()))
    def prop(body: bytes) -> None:
        assert len(body) > MAX_BODY_BYTES
        check(body)

    _run_counted(harness, prop, fuzz_run, examples)


@pytest.mark.parametrize("size", [MAX_BODY_BYTES - 1, MAX_BODY_BYTES, MAX_BODY_BYTES + 1])
def test_body_size_boundary(harness, size):
    """A valid envelope up to the limit is stored; one byte more is quarantined, not refused."""
    event = json.loads(json.dumps(ENVELOPE)) | {"eventId": f"boundary-{size}"}
    event["padding"] = ""
    event["padding"] = "x" * (size - len(json.dumps(event).encode()))
    body = json.dumps(event).encode()
    assert len(body) == size
    before = harness.marks()
    response = send(harness, body)
    check_authenticated(harness, body, response, before)
    assert response.status_code == (200 if size <= MAX_BODY_BYTES else 202)


def test_replayed_webhook_is_stored_once(harness, fuzz_run):
    examples = fuzz_run.examples(default=10, chaos=200)
    serial = itertools.count()

    @fuzz_run.settings(examples)
    @given(event=envelopes(), times=st.integers(2, 4))
    def prop(event: dict[str, Any], times: int) -> None:
        event["retailerCode"] = event["data"]["retailerCode"] = RETAILER
        event["eventId"] += f"-replay-{next(serial)}"  # generated ids repeat across examples
        body = json.dumps(event).encode()
        answers = []
        first_job = harness.max_id(tables.jobs)
        for _ in range(times):
            before = harness.marks()
            response = send(harness, body)
            check_authenticated(harness, body, response, before)
            assert response.status_code == 200, harness.explain(response)
            answers.append(response.json())
        rows = harness.inbox_rows(source="zigzag_webhook", dedupe_key=event["eventId"])
        assert len(rows) == 1
        assert answers[0]["inbox_id"] == rows[0]["id"]
        assert all(a["inbox_id"] is None for a in answers[1:]), answers
        jobs = harness.jobs(after_id=first_job, kind="sync_return")
        assert [j["payload"].get("inbox_id") for j in jobs] == [rows[0]["id"]]

    _run_counted(harness, prop, fuzz_run, 2 * examples)  # two to four deliveries each


def test_replayed_bad_body_is_stored_once(harness):
    body = b'{"eventId": "replayed-bad", "eventType": 7}'
    answers = [send(harness, body) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 202]
    rows = harness.inbox_rows(source="zigzag_webhook", payload=body.decode())
    assert len(rows) == 1
    assert harness.invalid_payload_exception(rows[0]["id"]) is not None


# Unauthenticated: 401 and nothing stored.

header_values = (
    st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
        max_size=60,
    )
    .map(str.strip)
    .map(lambda value: value.encode("latin-1"))  # as on the wire; httpx would send ASCII only
)


@st.composite
def forged_requests(draw: st.DrawFn) -> tuple[str, dict[str, bytes]]:
    """A path and headers that must not authenticate: no key, a wrong key, another tenant's key,
    our key for another tenant, or an unknown tenant."""
    ours = b"whk-acme"
    wrong_keys = st.one_of(
        header_values.filter(lambda v: v != ours),
        st.sampled_from(
            [
                b"WHK-ACME",
                b"whk-acm",
                b"whk-acmee",
                b"whk-beta",
                b"Bearer whk-acme",
                b"whk-acme\xe9",
            ]
        ),
    )
    unknown = st.text(
        st.characters(codec="utf-8", exclude_categories=["Cc"], exclude_characters="/"),
        min_size=1,
        max_size=30,
    ).filter(lambda t: t not in {"acme", "beta", ".", ".."})
    kind = draw(st.sampled_from(["none", "wrong", "other_header", "other_tenant", "unknown"]))
    tenant, headers = "acme", {"Content-Type": b"application/json"}
    if kind == "wrong":
        headers["X-ZigZag-Api-Key"] = draw(wrong_keys) or b"x"
    elif kind == "other_header":
        headers[draw(st.sampled_from(["X-Api-Key", "Authorization", "X-ZigZag-Key"]))] = ours
    elif kind == "other_tenant":
        tenant, headers["X-ZigZag-Api-Key"] = "beta", ours
    elif kind == "unknown":
        tenant = draw(unknown)
        headers["X-ZigZag-Api-Key"] = draw(
            st.sampled_from([ours, f"whk-{tenant}".strip().encode()])
        )
    return f"/webhooks/zigzag/{quote(tenant, safe='')}", headers


def test_forged_requests_are_refused(harness, fuzz_run, gen):
    examples = fuzz_run.examples(default=40, chaos=800)
    bodies = st.one_of(
        st.binary(max_size=500), gen.json_text(), gen.mutated(envelopes(), max_mutations=1)
    )

    @fuzz_run.settings(examples)
    @given(request=forged_requests(), body=bodies)
    @example(request=("/webhooks/zigzag/acme", {}), body=json.dumps(ENVELOPE).encode())
    @example(
        request=("/webhooks/zigzag/ACME", {"X-ZigZag-Api-Key": "whk-acme"}),
        body=json.dumps(ENVELOPE).encode(),
    )
    def prop(request: tuple[str, dict[str, Any]], body: bytes) -> None:
        path, headers = request
        before = harness.counts()
        response = send(harness, body, headers=headers, path=path)
        assert response.status_code == 401, harness.explain(response)
        assert harness.counts() == before

    _run_counted(harness, prop, fuzz_run, examples)


def _run_counted(harness, prop, fuzz_run, examples: int) -> None:
    """Run a property; the chaos run must really have sent `examples` bodies."""
    before = harness.sent[WEBHOOK]
    prop()
    sent = harness.sent[WEBHOOK] - before
    print(f"{WEBHOOK}: {sent} bodies")  # noqa: T201 (the chaos run reports its count)
    if fuzz_run.chaos:
        assert sent >= examples
