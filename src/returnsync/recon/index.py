"""The working index the in-memory gatherer fills while it follows the links."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from returnsync.recon import linking

if TYPE_CHECKING:
    from datetime import datetime

    from returnsync.recon.policy import ReconPolicy
    from returnsync.recon.snapshot import CreditLine, Refund, ReturnLine, Snapshot

ReturnKey = tuple[str, str]  # (tenant, return_ref)
NoteKey = tuple[str, str, str]  # (tenant, credit_note, return ref its lines name): a note part
CodeKey = tuple[str, str, str]  # (tenant, return_ref, stock_code)


@dataclass(kw_only=True)
class SnapshotIndex:
    """Records of one snapshot by key, and what linking found so far."""

    policy: ReconPolicy
    lines: dict[ReturnKey, list[ReturnLine]]
    notes: dict[NoteKey, list[CreditLine]]
    sku_links: dict[str, dict[str, frozenset[str]]] | None
    parts: dict[tuple[str, str], list[NoteKey]] = field(default_factory=dict)
    note_return: dict[NoteKey, ReturnKey] = field(default_factory=dict)
    return_notes: defaultdict[ReturnKey, list[NoteKey]] = field(
        default_factory=lambda: defaultdict(list)
    )
    duplicates: set[NoteKey] = field(default_factory=set)
    credited: defaultdict[CodeKey, list[CreditLine]] = field(
        default_factory=lambda: defaultdict(list)
    )
    traced: set[ReturnKey] = field(default_factory=set)
    saleable: defaultdict[CodeKey, int] = field(default_factory=lambda: defaultdict(int))
    refunds: defaultdict[ReturnKey, list[tuple[Refund, bool]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    note_refunds: defaultdict[NoteKey, list[str]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def build(cls, snapshot: Snapshot, policy: ReconPolicy) -> SnapshotIndex:
        """Index the returns, credit notes and SKU map of `snapshot`."""
        lines: dict[ReturnKey, list[ReturnLine]] = defaultdict(list)
        for line in snapshot.returns:
            lines[line.tenant, line.return_ref].append(line)
        notes: dict[NoteKey, list[CreditLine]] = defaultdict(list)
        for credit in snapshot.credits:
            code = policy.for_tenant(credit.tenant).retailer_code
            ref = linking.return_ref_for(credit.associated_ref, code)
            notes[credit.tenant, credit.credit_note, ref].append(credit)
        parts: dict[tuple[str, str], list[NoteKey]] = defaultdict(list)
        for part in sorted(notes):
            parts[part[0], part[1]].append(part)
        sku_links: dict[str, dict[str, frozenset[str]]] | None = None
        if snapshot.sku_links is not None:
            found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
            for link in snapshot.sku_links:
                sku, code = (
                    linking.normalise_code(link.sku),
                    linking.normalise_code(link.stock_code),
                )
                found[link.tenant][sku].add(code)
            sku_links = {
                tenant: {sku: frozenset(codes) for sku, codes in skus.items()}
                for tenant, skus in found.items()
            }
        return cls(
            policy=policy,
            lines=dict(lines),
            notes=dict(notes),
            parts=dict(parts),
            sku_links=sku_links,
        )

    def stock_code(self, tenant: str, sku: str) -> str | None:
        """The stock code `sku` resolves to for `tenant` (linking rule 4)."""
        links = None if self.sku_links is None else self.sku_links.get(tenant, {})
        return linking.resolve_sku(sku, links)

    def candidates(self, tenant: str, sku: str) -> tuple[str, ...]:
        """The stock codes an ambiguous SKU maps to (empty when it maps to none)."""
        if self.sku_links is None:
            return ()
        codes = self.sku_links.get(tenant, {}).get(linking.normalise_code(sku), frozenset())
        return tuple(sorted(codes)) if len(codes) > 1 else ()

    def match_lines(self, key: ReturnKey) -> list[tuple[str | None, list[ReturnLine]]]:
        """The return's lines grouped by stock code; each unmatched line on its own."""
        grouped: dict[str, list[ReturnLine]] = defaultdict(list)
        unmatched: list[tuple[str | None, list[ReturnLine]]] = []
        for line in self.lines[key]:
            code = self.stock_code(key[0], line.sku)
            if code is None:
                unmatched.append((None, [line]))
            else:
                grouped[code].append(line)
        return [*grouped.items(), *unmatched]

    def issued_at(self, key: NoteKey) -> datetime:
        """When a credit note (part) was issued: its earliest line."""
        return min(line.issued_at for line in self.notes[key])

    def effective_notes(self, key: ReturnKey) -> list[NoteKey]:
        """The return's credit notes (parts) that are not duplicates, by number."""
        return sorted(note for note in self.return_notes[key] if note not in self.duplicates)
