"""Adapters: one package per outside system (zigzag, khaos, payments, notify) plus http.py."""

from __future__ import annotations
