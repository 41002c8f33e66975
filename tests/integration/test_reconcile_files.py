"""reconcile_files over real files: exactly the planted gaps, and the same findings as the rules."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal

import pytest

from returnsync.recon import builders, files, generate, rules
from returnsync.recon.builders import credit, line, move, refund
from returnsync.recon.findings import FindingKind
from returnsync.recon.policy import ReconPolicy, TenantPolicy
from returnsync.recon.snapshot import CreditLine, Refund, ReturnLine, SkuLink, StockMovement

PLANT = dict.fromkeys(FindingKind, 3)
PENNY, ONE = Decimal("0.01"), Decimal(1)


def file_findings(export, policy, as_of):
    """Every finding of the DuckDB path, in its streamed order."""
    with files.reconcile_files(export, policy, as_of=as_of) as run:
        assert run.bad_rows == []
        return list(run.findings())


def exports(data):
    """The files of a generated dataset."""
    return files.ExportFiles(
        returns=data.returns,
        credits=data.credits,
        stock=data.stock,
        refunds=data.refunds,
        sku_map=data.sku_map,
    )


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """3,000 generated lines with every kind of gap planted three times."""
    return generate.generate(tmp_path_factory.mktemp("planted"), lines=3000, seed=11, plant=PLANT)


def test_it_reports_exactly_the_planted_gaps(planted):
    """Every planted gap is found, and nothing else (in-flight returns stay quiet)."""
    found = file_findings(exports(planted), ReconPolicy(), planted.as_of)
    assert {f.key for f in found} == planted.expected
    assert len(found) == len(planted.expected) == 3 * len(FindingKind)


def test_the_generated_dataset_is_deterministic(tmp_path, planted):
    """The same seed writes the same files and plants the same gaps."""
    again = generate.generate(tmp_path, lines=3000, seed=11, plant=PLANT)
    assert again.expected == planted.expected
    assert again.returns.read_bytes() == planted.returns.read_bytes()


def test_the_set_wise_path_agrees_with_the_pure_rules(planted):
    """DuckDB and `rules.reconcile` give equal findings, field for field, in the same order."""
    export = exports(planted)
    snapshot, bad = files.load_snapshot(export, ReconPolicy(), as_of=planted.as_of)
    assert bad == []
    expected = rules.reconcile(snapshot, ReconPolicy())
    assert file_findings(export, ReconPolicy(), planted.as_of) == expected


def messy(seed):
    """A small snapshot where anything may link to anything: the filter's hard cases."""
    rng = random.Random(seed)
    refs = [f"R{i}" for i in range(6)]
    skus = ["SKU-1", "SKU-2", "SKU-3", "sku-3 "]
    records = []
    for ref in refs[:4]:
        for sku in rng.sample(skus[:3], rng.randint(1, 3)):
            quantity = rng.randint(1, 3)
            records.append(
                line(
                    ref,
                    rng.choice([sku, sku.lower()]),
                    quantity,
                    f"{rng.randint(0, 3) * 5}.{rng.choice(['00', '01', '99'])}",
                    rng.choice(["RESALEABLE", "RESALEABLE", "WRITE_OFF", "RESALE_HOLD", ""]),
                    received=rng.randint(0, quantity + 1),
                    received_hours_ago=rng.choice([10, 47, 49, 100]),
                    tenant=rng.choice(["acme", "acme", "bolt"]),
                )
            )
    for index in range(rng.randint(0, 8)):
        ref = rng.choice(refs)
        records.append(
            credit(
                f"CN{rng.randint(0, 4)}",
                ref,
                rng.choice(skus),
                rng.randint(0, 3),
                f"{rng.randint(0, 3) * 5}.{rng.choice(['00', '01', '99'])}",
                reference=rng.choice([None, ref, f"ZZ-XX-{ref}"]),
                issued_hours_ago=rng.choice([5, 30, 90]) + index,
                tenant=rng.choice(["acme", "bolt"]),
            )
        )
    records += [
        move(
            rng.choice(refs), rng.choice(skus), rng.choice([1, 2, -1]), rng.choice(["MAIN", "HOLD"])
        )
        for _ in range(rng.randint(0, 6))
    ]
    for index in range(rng.randint(0, 6)):
        ref = rng.choice(refs)
        records.append(
            refund(
                f"re_{index}",
                rng.choice([ref, "", ""]),
                rng.choice(["", f"CN{rng.randint(0, 4)}"]),
                f"{rng.randint(0, 3) * 5}.{rng.choice(['00', '01'])}",
                payment_ref=rng.choice([f"pi_{ref}", f"ORD-{ref}", "pi_x"]),
                status=rng.choice(["succeeded", "succeeded", "pending", "failed"]),
                created_hours_ago=rng.choice([5, 23, 30, 150]),
                tenant=rng.choice(["acme", "bolt"]),
            )
        )
    links = None
    if rng.random() < 0.6:
        links = [SkuLink(tenant=t, sku=s, stock_code=s) for t in ("acme", "bolt") for s in skus[:2]]
        links += [SkuLink(tenant="acme", sku="SKU-3", stock_code=rng.choice(["SKU-3", "SC3"]))]
    return builders.snapshot(*records, sku_links=links)


@pytest.mark.parametrize("seed", range(20))
def test_the_paths_agree_on_random_messy_snapshots(tmp_path, seed):
    """Shared payments, split notes, unknown refs, ambiguous SKUs, per-tenant sites: equal."""
    snapshot = messy(seed)
    bolt = TenantPolicy(retailer_code="AC1", saleable_sites=frozenset({"MAIN", "HOLD"}))
    policy = ReconPolicy(tenants={"bolt": bolt})
    export = builders.write_files(snapshot, tmp_path)
    loaded, bad = files.load_snapshot(export, policy, as_of=snapshot.as_of)
    assert bad == []
    expected = rules.reconcile(replace(loaded, as_of=snapshot.as_of), policy)
    assert file_findings(export, policy, snapshot.as_of) == expected
    assert expected == rules.reconcile(snapshot, policy)


def perturbed(seed):
    """Clean returns, each bent once or twice: the cases where clean and not-clean touch."""
    rng = random.Random(seed)
    records = []
    for index in range(5):
        ref = f"R{index}"
        skus = ("SKU-1", "SKU-2")[: rng.randint(1, 2)]
        items = [
            (sku, rng.randint(1, 3), f"{rng.randint(1, 9)}.{rng.choice(['00', '50'])}")
            for sku in skus
        ]
        ret = builders.clean_return(ref, *items)
        for _ in range(rng.randint(0, 2)):
            ret = bend(rng, ref, ret)
        records += ret
    return builders.snapshot(*records)


def bend(rng, ref, records):  # noqa: C901, PLR0912 - one small change per case, read as a table
    """One random small change to a return's records."""
    notes = [r for r in records if isinstance(r, CreditLine)]
    match rng.randrange(16):
        case 0:
            return _each(records, CreditLine, gross=lambda c: c.gross - rng.choice([PENNY, ONE]))
        case 1:
            return _each(records, CreditLine, quantity=lambda c: c.quantity + 1)
        case 2:
            return [*records, *[replace(c, credit_note="DUP") for c in notes]]
        case 3:
            return [r for r in records if not isinstance(r, StockMovement)]
        case 4:
            return [
                *records,
                move(ref, rng.choice(["SKU-1", "SKU-2"]), 1, rng.choice(["MAIN", "HOLD"])),
            ]
        case 5:
            bump = rng.choice([PENNY, -2 * PENNY, 2 * ONE])
            return _each(records, Refund, amount=lambda f: f.amount + bump)
        case 6:
            payment = rng.choice([f"pi_{ref}", f"ORD-R{rng.randint(0, 4)}"])
            gift = refund(f"gw-{rng.randrange(10**9)}", "", "", "1.00", payment_ref=payment)
            return [*records, gift]
        case 7:
            return [*records, refund(f"f-{rng.randrange(10**9)}", ref, "", "1.00", status="failed")]
        case 8:
            return _each(records, Refund, return_ref=lambda _: "")
        case 9:
            disposition = rng.choice(["WRITE_OFF", "RESALE_HOLD", ""])
            return _each(records, ReturnLine, disposition=lambda _: disposition)
        case 10:
            return _each(
                records, ReturnLine, received_quantity=lambda r: max(0, r.received_quantity - 1)
            )
        case 11:
            return _each(records, ReturnLine, sku=lambda r: r.sku.lower())
        case 12:
            other = f"ZZ-AC1-R{rng.randint(0, 6)}"
            return _each(records, CreditLine, associated_ref=lambda _: other)
        case 13:
            return [r for r in records if not isinstance(r, Refund)]
        case 14:
            return [r for r in records if not isinstance(r, CreditLine)]
        case _:
            moment = builders.ago(rng.choice([2, 23, 25]))
            return _each(records, Refund, created_at=lambda _: moment)


def _each(records, kind, **changes):
    """Every record of `kind` with `changes` (functions of the record) applied."""
    return [
        replace(r, **{k: f(r) for k, f in changes.items()}) if isinstance(r, kind) else r
        for r in records
    ]


@pytest.mark.parametrize("seed", range(20))
def test_the_paths_agree_on_clean_returns_bent_slightly(tmp_path, seed):
    """Near-clean data is where a fast filter could wrongly call a return clean."""
    snapshot = perturbed(seed)
    export = builders.write_files(snapshot, tmp_path)
    expected = rules.reconcile(snapshot, ReconPolicy())
    assert file_findings(export, ReconPolicy(), snapshot.as_of) == expected
