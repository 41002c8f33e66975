"""Fuzzing the KCC channel endpoints Khaos Control calls (HTTP Basic auth on every one).

Pushes (`/stock`, `/stock-status`, `/order-status`) with the tenant's credentials are always
answered 200 (KCC re-sends anything else) and stored; content we cannot use is quarantined with
an `invalid_payload` exception, at intake or when the worker processes it; a push job never
fails. The GETs (`/config`, `/orders`, `/returns` with any `Sirion-Continuation` and
`SpecificIDs`) never answer 5xx. Without valid credentials: 401, nothing stored.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from returnsync.adapters.khaos import mapping as kcc
from returnsync.adapters.zigzag import mapping as zz_mapping
from returnsync.domain.model import associated_ref
from returnsync.domain.states import ReturnState
from returnsync.services.intake import MAX_BODY_BYTES
from returnsync.storage import khaos, returns

if TYPE_CHECKING:
    import httpx

FIXTURES = Path(__file__).parent.parent / "fixtures"
RETURN = json.loads((FIXTURES / "zigzag/return_processed.json").read_text("utf-8"))
PUSH_KINDS = ("stock", "stock-status", "order-status")
PUSHES = "POST /khaos/{tenant}/{stock,stock-status,order-status}"
PULLS = "GET /khaos/{tenant}/{config,orders,returns}"
STAGED = [f"R9{n:05d}" for n in range(1, 41)]  # returns waiting for their credit note


@pytest.fixture(scope="module")
def channel(harness):
    """The harness with 40 returns staged for KCC (so credit notes have something to credit)."""
    ctx = harness.ctx
    tenant = ctx.tenant(harness.tenant)
    now = ctx.clock.now()
    with ctx.db.begin() as conn:
        for ref in STAGED:
            raw = json.loads(json.dumps(RETURN)) | {"returnId": ref}
            record = dataclasses.replace(
                zz_mapping.to_domain(harness.tenant, raw), state=ReturnState.STAGED
            )
            assoc = associated_ref(tenant.zigzag.retailer_code, ref)
            returns.save(conn, record, associated_ref=assoc, snapshot=raw, now=now, seen_by="poll")
            khaos.stage(
                conn,
                tenant=harness.tenant,
                associated_ref=assoc,
                return_ref=ref,
                document={"AssociatedRef": assoc, "URN": "WEBRETURNS", "ReturnedItems": []},
                now=now,
            )
    return harness


# Valid documents, as KCC pushes them (tests/fixtures/khaos), with generated values.

codes = st.from_regex(r"[A-Z][A-Z0-9-]{0,15}", fullmatch=True)
ids = st.one_of(st.from_regex(r"[A-Z0-9]{1,8}", fullmatch=True), st.integers(1, 10**6))
amounts = st.decimals(min_value=0, max_value=10_000, places=2).flatmap(
    lambda d: st.sampled_from([float(d), str(d), int(d)])
)

stock_item = st.fixed_dictionaries(
    {"StockID": ids, "StockCode": codes},
    optional={
        "OtherRef": st.text(max_size=20),
        "StockDescription": st.text(max_size=40),
        "Barcodes": st.lists(
            st.fixed_dictionaries(
                {"Barcode": st.from_regex(r"[0-9]{13}", fullmatch=True)},
                optional={"Type": st.just({"ID": "1", "Name": "EAN13"})},
            ),
            max_size=2,
        ),
        "SellPrice": amounts,
    },
)
stock_items_doc = st.fixed_dictionaries(
    {"Items": st.lists(stock_item, max_size=4)},
    optional={"Deleted": st.lists(st.builds(str, ids), max_size=3)},
)
stock_status = st.fixed_dictionaries(
    {"StockCode": codes, "StockID": ids, "SiteID": st.integers(1, 20)},
    optional={"Levels": st.fixed_dictionaries({"Available": amounts, "OnOrder": amounts})},
)
stock_statuses_doc = st.fixed_dictionaries({"Statuses": st.lists(stock_status, max_size=6)})
credit_note = st.fixed_dictionaries(
    {
        "OrderCode": st.from_regex(r"CN[0-9]{5}", fullmatch=True),
        "OrderID": ids,
        "Status": st.just("Complete"),
        "AssociatedRef": st.one_of(
            st.sampled_from([f"ZZ-GL123-{ref}" for ref in STAGED]), st.text(max_size=20)
        ),
        "OrderType": st.sampled_from([{"ID": "2", "Name": "Credit Note"}, {"ID": 2}]),
        "Totals": st.fixed_dictionaries(
            {
                "Net": amounts,
                "Tax": amounts,
                "Gross": amounts,
                "Currency": st.sampled_from(["GBP", "gbp", "EUR"]),
            }
        ),
        "Lines": st.lists(
            st.fixed_dictionaries(
                {
                    "SKU": codes,
                    "Quantity": amounts,
                    "Net": amounts,
                    "Tax": amounts,
                    "Gross": amounts,
                },
                optional={"StockID": st.builds(str, ids), "ExtendedDescription": st.just(["x#1"])},
            ),
            max_size=2,
        ),
    },
    optional={"ChannelID": st.just("21")},
).flatmap(  # KCC's example says Status, its field table OrderStatus
    lambda doc: st.sampled_from(["Status", "OrderStatus"]).map(
        lambda key: {key if k == "Status" else k: v for k, v in doc.items()}
    )
)
sales_order = st.fixed_dictionaries(
    {"OrderCode": codes, "OrderID": ids, "Status": st.sampled_from(["Received", "Complete"])},
    optional={"AssociatedRef": st.text(max_size=20), "OrderType": st.just({"ID": "1"})},
)
order_statuses_doc = st.fixed_dictionaries(
    {"Statuses": st.lists(st.one_of(credit_note, sales_order), max_size=4)}
)
DOCUMENTS = {
    "stock": stock_items_doc,
    "stock-status": stock_statuses_doc,
    "order-status": order_statuses_doc,
}
FIXTURE_DOCS = {
    "stock": "khaos/stock_items.json",
    "stock-status": "khaos/stock_statuses.json",
    "order-status": "khaos/order_statuses.json",
}
kinds = st.sampled_from(PUSH_KINDS)


def stored_text(body: bytes) -> str:
    """What the inbox keeps of a body (intake's contract)."""
    return body[:MAX_BODY_BYTES].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def push(harness, kind: str, body: bytes, headers: dict[str, Any] | None = None, tenant=None):
    """POST a body to a push endpoint (counted)."""
    return harness.request(
        "POST",
        f"/khaos/{tenant or harness.tenant}/{kind}",
        body=body,
        headers=harness.kcc_headers() if headers is None else headers,
        count=PUSHES,
    )


def check_push(harness, kind: str, body: bytes, response: httpx.Response, before) -> None:
    """200; the inbox holds the body; after the worker ran it is processed or quarantined (with
    an exception) and its job succeeded at the first attempt."""
    assert response.status_code == 200, harness.explain(response)
    answer = response.json()["status"]
    text = stored_text(body)
    source = f"kcc_{kind}"
    new = harness.inbox_rows(after_id=before.inbox)
    if answer == "already quarantined":
        assert new == []
        held = harness.inbox_rows(source=source, payload=text)
        assert held, "a replayed bad push must already be in the inbox"
        assert all(r["status"] == "quarantined" for r in held)
        return
    assert len(new) == 1, (answer, new)
    row = new[0]
    assert row["payload"] == text
    assert (row["tenant"], row["source"]) == (harness.tenant, source)
    if answer.startswith("stored and quarantined"):
        assert row["status"] == "quarantined"
        assert harness.invalid_payload_exception(row["id"]) is not None
        return
    assert answer == "stored", answer
    assert row["status"] == "pending"
    harness.drain()
    row = harness.inbox_row(row["id"])
    assert row is not None
    jobs = harness.jobs(after_id=before.job, kind="khaos_push")
    assert [j["payload"]["inbox_id"] for j in jobs] == [row["id"]]
    job = jobs[0]
    assert (job["status"], job["attempts"], job["last_error"]) == ("succeeded", 1, None), (
        f"processing a bad push crashed instead of quarantining it: {job['last_error']}"
    )
    assert row["status"] in {"processed", "quarantined"}, row
    if row["status"] == "quarantined":
        assert row["error"]
        assert harness.invalid_payload_exception(row["id"]) is not None


def push_property(harness):
    def check(kind: str, body: bytes) -> None:
        before = harness.marks()
        check_push(harness, kind, body, push(harness, kind, body), before)

    return check


def _run_counted(harness, prop, fuzz_run, examples: int, what: str = PUSHES) -> None:
    before = harness.sent[what]
    prop()
    sent = harness.sent[what] - before
    print(f"{what}: {sent} bodies")  # noqa: T201 (the chaos run reports its count)
    if fuzz_run.chaos:
        assert sent >= examples


def test_fixture_pushes_are_processed(channel):
    for kind, name in FIXTURE_DOCS.items():
        body = (FIXTURES / name).read_bytes()
        before = channel.marks()
        check_push(channel, kind, body, push(channel, kind, body), before)
        assert channel.inbox_rows(after_id=before.inbox)[0]["status"] == "processed"


def test_arbitrary_bytes(channel, fuzz_run):
    examples = fuzz_run.examples(default=25, chaos=700)
    check = push_property(channel)

    @fuzz_run.settings(examples)
    @given(kind=kinds, body=st.binary(max_size=3000))
    @example(kind="stock", body=b"[" * 100_000 + b"]" * 100_000)
    @example(kind="stock-status", body=b"\x00")
    @example(kind="order-status", body=json.dumps({"Statuses": []}).encode("utf-16"))
    @example(kind="stock", body=b"\xef\xbb\xbf{}")
    def prop(kind: str, body: bytes) -> None:
        check(kind, body)

    _run_counted(channel, prop, fuzz_run, examples)


def test_arbitrary_json(channel, fuzz_run, gen):
    examples = fuzz_run.examples(default=25, chaos=700)
    check = push_property(channel)

    @fuzz_run.settings(examples)
    @given(kind=kinds, body=gen.json_text())
    def prop(kind: str, body: bytes) -> None:
        check(kind, body)

    _run_counted(channel, prop, fuzz_run, examples)


@pytest.mark.parametrize("kind", PUSH_KINDS)
def test_near_valid_pushes(channel, fuzz_run, gen, kind):
    examples = fuzz_run.examples(default=30, chaos=700)
    check = push_property(channel)

    @fuzz_run.settings(examples)
    @given(body=gen.mutated(DOCUMENTS[kind]))
    def prop(body: bytes) -> None:
        check(kind, body)

    _run_counted(channel, prop, fuzz_run, examples)


def test_huge_pushes(channel, fuzz_run, gen):
    examples = fuzz_run.examples(default=4, chaos=40)
    check = push_property(channel)

    @fuzz_run.settings(examples)
    @given(kind=kinds, body=gen.huge(stock_statuses_doc))
    def prop(kind: str, body: bytes) -> None:
        assert len(body) > MAX_BODY_BYTES
        check(kind, body)

    _run_counted(channel, prop, fuzz_run, examples)


@pytest.mark.parametrize("depth", [63, 64, 65, 400, 990, 5000])
def test_deep_push_is_stored_and_never_crashes_the_worker(channel, depth):
    """What intake accepts the worker can parse, whatever its stack depth: deep documents are
    quarantined at intake (a KCC push nests about 5 levels)."""
    nested = "[" * (depth - 3) + "]" * (depth - 3)  # Statuses[0].Lines is 3 levels in
    body = f'{{"Statuses": [{{"OrderCode": "SO1", "OrderID": 1, "Status": "x", "X": {nested}}}]}}'
    before = channel.marks()
    response = push(channel, "order-status", body.encode())
    check_push(channel, "order-status", body.encode(), response, before)
    quarantined = response.json()["status"].startswith("stored and quarantined")
    assert quarantined is (depth > 64)


# Found by this fuzzing: content the database cannot hold (a SiteID beyond 64 bits; on
# PostgreSQL also over-long strings and amounts over NUMERIC) used to kill the job after 12
# retries; process_push now quarantines it in a savepoint.


def site_id_out_of_range(kind: str, body: bytes) -> bool:
    """Whether a push hits the known SiteID overflow (judged by the production parser)."""
    if kind != "stock-status":
        return False
    try:
        levels = kcc.stock_levels(json.loads(body))
    except (ValueError, RecursionError):
        return False
    return any(
        level.available is not None and not -(2**63) <= level.site_id < 2**63 for level in levels
    )


def test_site_id_beyond_64_bits_is_quarantined(channel):
    doc = {"Statuses": [{"StockCode": "C", "StockID": "1", "SiteID": 10**30, "Levels": {}}]}
    body = json.dumps(doc).encode()
    assert site_id_out_of_range("stock-status", body)
    before = channel.marks()
    check_push(channel, "stock-status", body, push(channel, "stock-status", body), before)


def test_same_bad_push_twice_is_stored_once(channel):
    body = b'{"Statuses": [not json'
    answers = [push(channel, "stock-status", body) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    rows = channel.inbox_rows(source="kcc_stock-status", payload=body.decode())
    assert len(rows) == 1
    assert rows[0]["status"] == "quarantined"


# Unauthenticated: 401 and nothing stored.

header_bytes = st.binary(max_size=80).map(
    lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F).strip()  # legal on the wire
)
credential_text = st.text(st.characters(codec="utf-8"), max_size=30)


@st.composite
def forged_auth(draw: st.DrawFn) -> tuple[str, dict[str, bytes]]:
    """A tenant and headers that must not authenticate."""
    ours = ("kcc-acme", "kcc-secret-acme")
    kind = draw(
        st.sampled_from(
            ["none", "garbage", "scheme", "wrong", "half", "other_tenant", "ours_elsewhere"]
        )
    )
    tenant, headers = "acme", {}

    def basic(user: str, password: str) -> bytes:
        return f"Basic {_b64(f'{user}:{password}'.encode())}".encode()

    if kind == "garbage":
        headers["Authorization"] = draw(header_bytes)
    elif kind == "scheme":
        scheme = draw(st.sampled_from(["Bearer", "Digest", "Basic", "Basicx", ""]))
        headers["Authorization"] = (f"{scheme} ".encode() + draw(header_bytes)).strip()
    elif kind == "wrong":
        user, password = draw(
            st.tuples(credential_text, credential_text).filter(lambda c: c != ours)
        )
        headers["Authorization"] = basic(user, password)
    elif kind == "half":
        headers["Authorization"] = draw(
            st.sampled_from(
                [
                    f"Basic {_b64(b'kcc-acme')}".encode(),
                    f"Basic {_b64(b'kcc-acme:')}".encode(),
                    f"Basic {_b64(b':kcc-secret-acme')}".encode(),
                    basic("kcc-acme", "kcc-secret-acme:"),
                    basic("KCC-ACME", "kcc-secret-acme"),
                    basic("kcc-acme", "kcc-secret-acmé"),
                ]
            )
        )
    elif kind == "other_tenant":
        headers["Authorization"] = basic("kcc-beta", "kcc-secret-beta")
    elif kind == "ours_elsewhere":
        tenant = draw(
            st.text(
                st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=20
            ).filter(lambda t: t not in {"acme", ".", ".."})
        )
        headers["Authorization"] = basic(*ours)
    return quote(tenant, safe=""), headers


def _b64(raw: bytes) -> str:
    import base64  # noqa: PLC0415

    return base64.b64encode(raw).decode()


def test_forged_pushes_are_refused(channel, fuzz_run, gen):
    examples = fuzz_run.examples(default=40, chaos=700)
    bodies = st.one_of(
        st.binary(max_size=300),
        gen.json_text(),
        st.sampled_from(PUSH_KINDS).flatmap(
            lambda k: DOCUMENTS[k].map(lambda d: json.dumps(d).encode())
        ),
    )

    @fuzz_run.settings(examples)
    @given(request=forged_auth(), kind=kinds, body=bodies)
    @example(
        request=("acme", {"Authorization": b"Basic " + _b64("kcc-acme:pä".encode()).encode()}),
        kind="stock",
        body=b"{}",
    )
    def prop(request: tuple[str, dict[str, bytes]], kind: str, body: bytes) -> None:
        tenant, headers = request
        before = channel.counts()
        response = push(channel, kind, body, headers=headers, tenant=tenant)
        assert response.status_code == 401, channel.explain(response)
        assert response.headers["www-authenticate"].startswith("Basic")
        assert channel.counts() == before

    _run_counted(channel, prop, fuzz_run, examples)


# The GETs KCC makes: never 5xx, whatever the headers.

continuations = st.one_of(
    st.none(),
    header_bytes,
    st.integers().map(lambda n: f"seq:{n}".encode()),
    st.integers(min_value=0, max_value=2**63 - 1).map(lambda n: f"seq:{n}".encode()),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=12).map(
        lambda s: f"seq:{s}".encode()
    ),
    st.datetimes().map(lambda t: t.isoformat(sep=" ").encode()),
    st.sampled_from(
        [
            b"2019-12-31 12:00:00Z",
            b'"2019-12-31 12:00:00Z"',
            b"9999-12-31T23:59:59",
            b"9999-12-31T23:59:59-23:59",
            b"0001-01-01T00:00:00",
            b"0001-01-01T00:00:00+05:00",
            b"seq:99999999999999999999",
            b"seq:",
            b"seq:-1",
            b"seq:1e3",
            b'"seq:3"',
        ]
    ),
)
specific_ids = st.one_of(
    st.none(),
    header_bytes,
    st.lists(st.sampled_from([f"ZZ-GL123-{ref}" for ref in STAGED]) | codes, max_size=30).map(
        lambda refs: ",".join(f'"{r}"' for r in refs).encode()
    ),
    st.integers(0, 2_000).map(lambda n: ",".join(["x"] * n).encode()),
)


def test_pulls_never_fail(channel, fuzz_run):
    examples = fuzz_run.examples(default=40, chaos=800)
    serial = itertools.count()

    @fuzz_run.settings(examples)
    @given(
        endpoint=st.sampled_from(["config", "orders", "returns", "returns", "returns"]),
        continuation=continuations,
        ids=specific_ids,
    )
    @example(endpoint="returns", continuation=b"seq:9223372036854775807", ids=None)
    @example(endpoint="returns", continuation=b"seq:-9223372036854775808", ids=None)
    @example(endpoint="returns", continuation=b"9999-12-31T23:59:59+00:00", ids=None)
    @example(endpoint="returns", continuation=None, ids=b'"ZZ-GL123-R900001", ,"",x')
    def prop(endpoint: str, continuation: bytes | None, ids: bytes | None) -> None:
        headers: dict[str, Any] = channel.kcc_headers()
        if continuation is not None:
            headers["Sirion-Continuation"] = continuation
        if ids is not None:
            headers["SpecificIDs"] = ids
        response = channel.request(
            "GET", f"/khaos/{channel.tenant}/{endpoint}", headers=headers, count=PULLS
        )
        assert response.status_code == 200, (next(serial), channel.explain(response))
        document = response.json()
        if endpoint == "returns":
            assert isinstance(document["Returns"], list)
            assert document["ApiVersion"] == 1000
            assert "sirion-continuation" in response.headers

    _run_counted(channel, prop, fuzz_run, examples, PULLS)


# Found by this fuzzing: a `seq:<n>` beyond 64 bits, or a first-contact datetime that leaves
# datetime's range in UTC, used to answer 500; `_cursor_seq` now reads those from the start.


def cursor_out_of_range(continuation: bytes | None) -> bool:
    """Whether a Sirion-Continuation hits the known overflow in `_cursor_seq`."""
    value = (continuation or b"").decode("latin-1").strip().strip('"')
    if value.startswith("seq:"):
        try:
            return not -(2**63) <= int(value.removeprefix("seq:")) < 2**63
        except ValueError:
            return False
    try:
        since = datetime.fromisoformat(value)
        (since if since.tzinfo else since.replace(tzinfo=UTC)).astimezone(UTC)
    except ValueError:
        return False
    except OverflowError:
        return True
    return False


@pytest.mark.parametrize(
    "continuation",
    [b"seq:99999999999999999999", b"9999-12-31T23:59:59-23:59", b"0001-01-01T00:00:00+05:00"],
)
def test_cursor_out_of_range_is_read_from_the_start(channel, continuation):
    assert cursor_out_of_range(continuation)
    headers = channel.kcc_headers() | {"Sirion-Continuation": continuation}
    response = channel.request("GET", f"/khaos/{channel.tenant}/returns", headers=headers)
    assert response.status_code == 200, channel.explain(response)


def test_forged_pulls_are_refused(channel, fuzz_run):
    examples = fuzz_run.examples(default=20, chaos=200)

    @fuzz_run.settings(examples)
    @given(request=forged_auth(), endpoint=st.sampled_from(["config", "orders", "returns"]))
    def prop(request: tuple[str, dict[str, bytes]], endpoint: str) -> None:
        tenant, headers = request
        before = channel.counts()
        response = channel.request(
            "GET", f"/khaos/{tenant}/{endpoint}", headers=headers, count=PULLS
        )
        assert response.status_code == 401, channel.explain(response)
        assert channel.counts() == before

    _run_counted(channel, prop, fuzz_run, examples, PULLS)
