"""ZigZag Returns API: client (JWT, reads, refund PUT), wire schemas, mapping, webhook key."""

from __future__ import annotations
