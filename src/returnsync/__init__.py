"""returnsync: keeps ZigZag returns, Khaos Control credit notes and gateway refunds in step."""

from __future__ import annotations

__version__ = "0.1.0"
