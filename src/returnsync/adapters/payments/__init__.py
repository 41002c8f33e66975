"""Payment gateway: StripeGateway over the official SDK, its mapping, and FakeGateway."""

from __future__ import annotations
