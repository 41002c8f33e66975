"""The envelope every vendor response travels in: `Request-Id`, and Stripe-shaped faults."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from returnsync.simulators.gateway.wire import StripeError

if TYPE_CHECKING:
    from collections.abc import Callable

    from returnsync.simulators.runtime import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_SCOPE_KEY = "returnsync.request_id"  # where handlers find the request's id


class StripeEnvelope:
    """Outermost ASGI middleware: what every `/v1` response carries, faulted or not.

    - a `Request-Id` (`req_...`) on every HTTP response, also put in the scope for handlers;
    - Stripe's error object on error answers made outside the vendor routes (the shared
      fault injector answers `{"error": "<text>"}`, which the stripe SDK cannot parse):
      5xx become `api_error`, 429 becomes `rate_limit`.
    """

    def __init__(self, app: ASGIApp, new_id: Callable[[], str]) -> None:
        self.app = app
        self._new_id = new_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stamp the request id, and reshape plain-text errors into Stripe's shape."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._new_id()
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        vendor = not str(scope.get("path", "")).startswith("/_sim")
        held: Message | None = None

        async def send_enveloped(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"request-id", request_id.encode())]
                message = {**message, "headers": headers}
                if vendor and message["status"] >= 400:
                    held = message  # wait for the body: it may need reshaping
                    return
            elif message["type"] == "http.response.body" and held is not None:
                start, held = held, None
                if not message.get("more_body", False):
                    start, message = _stripe_shaped(start, message)
                await send(start)
            await send(message)

        await self.app(scope, receive, send_enveloped)


def _stripe_shaped(start: Message, body: Message) -> tuple[Message, Message]:
    """Rewrite `{"error": "text"}` as a Stripe error object; anything else passes as is."""
    try:
        payload = json.loads(body.get("body", b""))
    except ValueError:
        return start, body
    if not isinstance(payload, dict) or not isinstance(payload.get("error"), str):
        return start, body
    status = int(start["status"])
    if status == 429:
        error = StripeError(
            429,
            "Too many requests hit the API too quickly. We recommend an exponential backoff "
            "of your requests.",
            code="rate_limit",
        )
    else:
        error = StripeError(status, f"{payload['error']} (simulated)", type_="api_error")
    raw = json.dumps(error.body()).encode()
    headers = [
        (name, str(len(raw)).encode() if name.lower() == b"content-length" else value)
        for name, value in start["headers"]
    ]
    return {**start, "headers": headers}, {**body, "body": raw}
