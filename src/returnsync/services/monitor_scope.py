"""Which returns a monitor pass looks at: all of them, or only those that can have changed.

A full pass reconciles every return of the tenant and reads every credited return's
payment at the gateway: O(history) gateway calls. Between full passes (daily by
default) an incremental pass looks only at the returns whose findings can differ from
the last pass:

- returns our records changed since the last pass (with an overlap for commits that
  were still in flight when it started);
- returns not yet in a terminal state: the SLA rules (`received_not_credited`,
  `credit_note_without_refund`) fire on them as time passes, with no change at all;
- returns seen by polling only (`webhook_gap` fires 30 minutes after the last change);
- returns and documents with an open finding, so each is refreshed or closed;
- the return of every credit note Khaos pushed since the last pass (a second note on a
  closed return is a duplicate), and the notes that name no return;
- every return sharing an order with one of those: they share its payment, and a
  goodwill refund on it counts for the smallest of them.

What only a full pass sees: a refund made by hand in the gateway on the order of a
closed return, a refund that fails later, and a short refund on a closed return whose
SLA runs out with no change. docs/operations.md says so.

Reading the scope costs one light query of the tenant's returns and credit notes
(keys and timestamps, no snapshots); the snapshots, the rules and the gateway reads
are for the scope only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from returnsync.domain.states import TERMINAL
from returnsync.recon.findings import FindingKind
from returnsync.recon.linking import return_ref_for
from returnsync.storage.tables import credit_notes, findings, returns

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import Connection

    from returnsync.recon.snapshot import Refund

ORPHAN_KINDS = frozenset(
    {FindingKind.CREDIT_NOTE_WITHOUT_RETURN.value, FindingKind.REFUNDED_WITHOUT_CREDIT_NOTE.value}
)
_TERMINAL = frozenset(state.value for state in TERMINAL)
LAST_PASS, LAST_FULL_PASS = "monitor_pass", "monitor_full_pass"  # cursors: when they started


@dataclass(frozen=True, slots=True)
class Scope:
    """The returns and credit notes of one pass; `full` means every one of the tenant."""

    full: bool
    returns: frozenset[str] = frozenset()
    notes: frozenset[str] = frozenset()
    known_returns: frozenset[str] = frozenset()  # every return of the tenant
    known_notes: frozenset[str] = frozenset()  # every credit note of the tenant

    def keeps(self, refund: Refund, retailer_code: str | None) -> bool:
        """Whether a refund read from a payment in scope belongs in this pass: not when it
        names a return or credit note outside the scope (the full pass links those; here
        the refund would look unlinked)."""
        if self.full:
            return True
        named = return_ref_for(refund.return_ref, retailer_code) if refund.return_ref else ""
        if named in self.known_returns and named not in self.returns:
            return False
        return not (refund.credit_note in self.known_notes and refund.credit_note not in self.notes)

    def covers(self, return_ref: str, line_id: str, documents: frozenset[str]) -> bool:
        """Whether an open finding was re-checked by this pass (so closing it is right):
        its return is in scope, or it is about a document (`line_id`) the pass read."""
        return self.full or return_ref in self.returns or (bool(line_id) and line_id in documents)


def choose(
    conn: Connection, tenant: str, *, since: datetime | None, retailer_code: str | None
) -> Scope:
    """The scope of a pass: everything when `since` is None, else what can have changed
    since then (the module docstring lists the reasons)."""
    if since is None:
        return Scope(full=True)
    light = conn.execute(
        select(
            returns.c.return_ref,
            returns.c.order_ref,
            returns.c.state,
            returns.c.updated_at,
            returns.c.seen_by_poll,
            returns.c.seen_by_webhook,
        ).where(returns.c.tenant == tenant)
    ).all()
    known = frozenset(r.return_ref for r in light)
    chosen = {
        r.return_ref
        for r in light
        if r.updated_at >= since
        or r.state not in _TERMINAL
        or (r.seen_by_poll and not r.seen_by_webhook)
    }
    documents: set[str] = set()
    for kind, return_ref, line_id in conn.execute(
        select(findings.c.kind, findings.c.return_ref, findings.c.line_id).where(
            findings.c.tenant == tenant, findings.c.status == "open"
        )
    ):
        if return_ref in known:
            chosen.add(return_ref)
        if kind in ORPHAN_KINDS and line_id:
            documents.add(line_id)
    notes = conn.execute(
        select(
            credit_notes.c.code, credit_notes.c.associated_ref, credit_notes.c.observed_at
        ).where(credit_notes.c.tenant == tenant)
    ).all()
    note_return = {n.code: return_ref_for(n.associated_ref, retailer_code) for n in notes}
    for note in notes:
        if note.observed_at >= since:
            if note_return[note.code] in known:
                chosen.add(note_return[note.code])
            else:
                documents.add(note.code)
    orders = {r.order_ref for r in light if r.return_ref in chosen}
    chosen |= {r.return_ref for r in light if r.order_ref in orders}
    return Scope(
        full=False,
        returns=frozenset(chosen),
        notes=frozenset(c for c, ref in note_return.items() if ref in chosen or c in documents),
        known_returns=known,
        known_notes=frozenset(note_return),
    )
