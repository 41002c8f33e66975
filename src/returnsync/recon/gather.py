"""Gather facts from an in-memory `Snapshot`, following `recon.linking` to the letter.

This is the reference gatherer: plain dicts, easy to read, for unit tests and small
data. `recon.files` computes the same facts with DuckDB for files of any size; a
test runs both over one dataset and compares.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from returnsync.recon import linking
from returnsync.recon.facts import (
    LineFacts,
    OrphanCreditNoteFacts,
    OrphanRefundFacts,
    ReturnFacts,
)
from returnsync.recon.index import SnapshotIndex
from returnsync.recon.policy import COUNTED_REFUND_STATUSES

if TYPE_CHECKING:
    from datetime import datetime

    from returnsync.recon.index import NoteKey, ReturnKey
    from returnsync.recon.policy import ReconPolicy
    from returnsync.recon.snapshot import Refund, ReturnLine, Snapshot

ZERO = Decimal("0.00")
norm = linking.normalise_code


@dataclass(kw_only=True)
class Facts:
    """Every fact the rules decide over."""

    lines: list[LineFacts] = field(default_factory=list)
    returns: list[ReturnFacts] = field(default_factory=list)
    orphan_credit_notes: list[OrphanCreditNoteFacts] = field(default_factory=list)
    orphan_refunds: list[OrphanRefundFacts] = field(default_factory=list)


def gather(snapshot: Snapshot, policy: ReconPolicy) -> Facts:
    """The facts of `snapshot` under `policy` (codes, sites and links per `recon.linking`)."""
    index = SnapshotIndex.build(snapshot, policy)
    _link_credit_notes(index)
    _link_stock(snapshot, index)
    facts = Facts(orphan_refunds=_link_refunds(snapshot.refunds, index))
    for key in index.lines:
        ret = _return_facts(key, index)
        facts.returns.append(ret)
        facts.lines += _line_facts(key, ret, index)
    for note in index.notes:
        if note not in index.note_return:
            facts.orphan_credit_notes.append(_orphan_note(note, index))
    return facts


def _link_credit_notes(index: SnapshotIndex) -> None:
    """Rule 5: link each note part to the return its lines name; mark duplicates per return."""
    for part in index.notes:
        tenant, _, ref = part
        if (tenant, ref) in index.lines:
            index.note_return[part] = (tenant, ref)
            index.return_notes[tenant, ref].append(part)
            index.traced.add((tenant, ref))
    for key, notes in index.return_notes.items():
        seen: set[tuple[tuple[str, int, Decimal], ...]] = set()
        for note in sorted(notes, key=lambda n: (index.issued_at(n), n[1])):
            lines = index.notes[note]
            signature = tuple(sorted((norm(n.stock_code), n.quantity, n.gross) for n in lines))
            if signature in seen:
                index.duplicates.add(note)
                continue
            seen.add(signature)
            for line in lines:
                index.credited[*key, norm(line.stock_code)].append(line)


def _link_stock(snapshot: Snapshot, index: SnapshotIndex) -> None:
    """Rule 7: net units moved to a saleable site, per return and stock code."""
    for move in snapshot.stock:
        tenant_policy = index.policy.for_tenant(move.tenant)
        ref = linking.return_ref_for(move.reference, tenant_policy.retailer_code)
        if (move.tenant, ref) not in index.lines:
            continue
        index.traced.add((move.tenant, ref))
        if norm(move.site) in tenant_policy.saleable_sites:
            index.saleable[move.tenant, ref, norm(move.stock_code)] += move.quantity


def _refund_target(refund: Refund, named: str, index: SnapshotIndex) -> ReturnKey | None:
    """Rule 8: the return a refund names, else the smallest return its credit note names."""
    if named and (refund.tenant, named) in index.lines:
        return (refund.tenant, named)
    parts = index.parts.get((refund.tenant, refund.credit_note), [])
    linked = [index.note_return[part] for part in parts if part in index.note_return]
    return min(linked, default=None)


def _link_refunds(refunds: tuple[Refund, ...], index: SnapshotIndex) -> list[OrphanRefundFacts]:
    """Rules 8 and 9: attach counted refunds to returns; the rest are orphans."""
    payments: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (tenant, ref), lines in index.lines.items():
        payments[tenant, min(line.order_ref for line in lines)].add(ref)
    unlinked: list[tuple[Refund, str]] = []
    for refund in refunds:
        code = index.policy.for_tenant(refund.tenant).retailer_code
        named = linking.return_ref_for(refund.return_ref, code) if refund.return_ref else ""
        target = _refund_target(refund, named, index)
        if target is not None:
            index.traced.add(target)
            payments[refund.tenant, refund.payment_ref].add(target[1])
        if refund.status.strip(" ").lower() not in COUNTED_REFUND_STATUSES:
            continue
        parts = index.parts.get((refund.tenant, refund.credit_note))
        if target is not None:
            index.refunds[target].append((refund, False))
        elif parts:
            index.note_refunds[parts[0]].append(refund.refund_id)  # rides with an orphan note
        else:
            unlinked.append((refund, named))
    orphans: list[OrphanRefundFacts] = []
    for refund, named in unlinked:
        candidates = payments.get((refund.tenant, refund.payment_ref))
        if not refund.return_ref and not refund.credit_note and candidates:
            index.refunds[refund.tenant, min(candidates)].append((refund, True))
            continue
        orphans.append(
            OrphanRefundFacts(
                tenant=refund.tenant,
                refund_id=refund.refund_id,
                payment_ref=refund.payment_ref,
                return_ref=named,
                credit_note=refund.credit_note,
                amount=refund.amount,
                currency=refund.currency,
                created_at=refund.created_at,
            )
        )
    return orphans


def _return_facts(key: ReturnKey, index: SnapshotIndex) -> ReturnFacts:
    lines = index.lines[key]
    received = [line for line in lines if line.received_quantity > 0 and line.received_at]
    notes = index.effective_notes(key)
    duplicates = sorted(n for n in index.return_notes.get(key, []) if n in index.duplicates)
    matched = {code for code, _ in index.match_lines(key) if code is not None}
    credited = [line for note in notes for line in index.notes[note]]
    stray = [line for line in credited if norm(line.stock_code) not in matched]
    refunds = sorted(index.refunds.get(key, []), key=lambda r: (r[0].created_at, r[0].refund_id))
    issued = [index.issued_at(note) for note in notes]
    return ReturnFacts(
        tenant=key[0],
        return_ref=key[1],
        order_ref=min(line.order_ref for line in lines),
        currency=min(line.currency for line in lines),
        received_quantity=sum(line.received_quantity for line in lines),
        expected_amount=sum((line.refund_amount for line in lines), ZERO),
        first_received_at=min(
            (line.received_at for line in received if line.received_at), default=None
        ),
        has_unmatched_sku=any(index.stock_code(key[0], line.sku) is None for line in lines),
        traced=key in index.traced,
        credit_notes=tuple(part[1] for part in notes),
        credit_line_count=len(credited),
        credited_amount=sum((line.gross for line in credited), ZERO),
        first_issued_at=min(issued, default=None),
        last_issued_at=max(issued, default=None),
        duplicate_credit_notes=tuple(part[1] for part in duplicates),
        duplicate_amount=sum((line.gross for n in duplicates for line in index.notes[n]), ZERO),
        unmatched_stock_codes=tuple(sorted({norm(line.stock_code) for line in stray})),
        unmatched_amount=sum((line.gross for line in stray), ZERO),
        refunds=tuple(sorted(refund.refund_id for refund, _ in refunds)),
        goodwill_refunds=tuple(sorted(refund.refund_id for refund, manual in refunds if manual)),
        refunded_amount=sum((refund.amount for refund, _ in refunds), ZERO),
        first_refund_amount=refunds[0][0].amount if refunds else ZERO,
    )


def _line_facts(key: ReturnKey, ret: ReturnFacts, index: SnapshotIndex) -> list[LineFacts]:
    """Rule 6: one fact per match line (stock code), one per unmatched line."""
    refunded_at = min((r.created_at for r, _ in index.refunds.get(key, [])), default=None)
    return [
        _one_line(key, code, lines, ret=ret, index=index, refunded_at=refunded_at)
        for code, lines in index.match_lines(key)
    ]


def _one_line(
    key: ReturnKey,
    code: str | None,
    lines: list[ReturnLine],
    *,
    ret: ReturnFacts,
    index: SnapshotIndex,
    refunded_at: datetime | None,
) -> LineFacts:
    tenant, ref = key
    credited = index.credited.get((tenant, ref, code), []) if code else []
    received = [line for line in lines if line.received_quantity > 0]
    restock, forbidden = index.policy.restock_dispositions, index.policy.forbidden_dispositions
    return LineFacts(
        tenant=tenant,
        return_ref=ref,
        line_id=min(line.line_id for line in lines),
        line_ids=tuple(sorted(line.line_id for line in lines)),
        sku=min(norm(line.sku) for line in lines),
        stock_code=code,
        sku_candidates=() if code else index.candidates(tenant, lines[0].sku),
        currency=ret.currency,
        quantity=sum(line.quantity for line in lines),
        received_quantity=sum(line.received_quantity for line in lines),
        expected_amount=sum((line.refund_amount for line in lines), ZERO),
        first_received_at=min((ln.received_at for ln in received if ln.received_at), default=None),
        restock_quantity=sum(
            ln.received_quantity for ln in lines if norm(ln.disposition) in restock
        ),
        forbidden_quantity=sum(
            ln.received_quantity for ln in lines if norm(ln.disposition) in forbidden
        ),
        forbidden_dispositions=tuple(sorted({norm(ln.disposition) for ln in received} & forbidden)),
        credit_notes=tuple(sorted({line.credit_note for line in credited})),
        credited_quantity=sum(line.quantity for line in credited),
        credited_amount=sum((line.gross for line in credited), ZERO),
        saleable_quantity=index.saleable.get((tenant, ref, code), 0) if code else 0,
        return_traced=ret.traced,
        return_refunded_at=refunded_at,
    )


def _orphan_note(key: NoteKey, index: SnapshotIndex) -> OrphanCreditNoteFacts:
    note = index.notes[key]
    return OrphanCreditNoteFacts(
        tenant=key[0],
        credit_note=key[1],
        associated_ref=min(line.associated_ref for line in note),
        return_ref=key[2],
        currency=min(line.currency for line in note),
        gross=sum((line.gross for line in note), ZERO),
        line_count=len(note),
        issued_at=index.issued_at(key),
        refunds=tuple(sorted(index.note_refunds.get(key, []))),
    )
