"""Khaos Control Cloud channel wire: push schemas, mapping, CustomerReturn, Basic auth."""

from __future__ import annotations
