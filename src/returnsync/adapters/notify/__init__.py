"""Notifiers: ConsoleNotifier (logging) and FakeNotifier (records alerts)."""

from __future__ import annotations
