"""Reconciliation: find every gap between ZigZag, Khaos Control and the payment gateway.

Gather -> decide -> apply. The decision is pure: `rules.reconcile(snapshot, policy)`
turns a `snapshot.Snapshot` into `findings.Finding` values. Files of any size go
through `files.reconcile_files`, which gathers the same facts with DuckDB and
calls the same rules. Applying findings (recording, alerting, auto-closing) is
not here yet.

    findings   Finding, FindingKind, Severity, Owner, FindingKey
    snapshot   the records of the three systems (ReturnLine, CreditLine, ...)
    policy     SLAs, tolerance, sites and dispositions per tenant
    linking    how records link to a return (the one place), with SQL twins
    facts      what the rules decide over, per match line, return or orphan
    gather     facts from a Snapshot (index: its working index)
    rules      the decisions; evidence: severity, owner, action, evidence
    columns    the export files' columns; cells: reading and checking them
    loading    files into DuckDB, bad rows with lines (lines: line numbers)
    summary    the fast pass over all rows; sql, candidates: exact facts
    files      reconcile_files and load_snapshot
    render     table, JSON, CSV and xlsx output; cli: `reconcile-files`
    generate   seeded datasets with planted gaps (shapes, emit); builders: tests
"""
