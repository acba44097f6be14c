"""Signed webhook deliveries as Recall sends them through Svix.

Each delivery gets its own ``msg_...`` id and is signed with the svix library; a redelivery keeps
the id (that is what receivers deduplicate on). Targets: a URL (POST over HTTP), a callable
``(body, headers) -> status`` for in-process tests, or None (recorded only).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from svix.webhooks import Webhook

WebhookTarget = str | Callable[[bytes, dict[str, str]], int] | None

DEFAULT_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(13)


def signed_headers(
    secret: str,
    body: bytes | str,
    *,
    message_id: str | None = None,
    timestamp: datetime | float | None = None,
    legacy: bool = False,
) -> dict[str, str]:
    """The three signature headers for a body (``webhook-*``, or ``svix-*`` when legacy)."""
    message_id = message_id or new_message_id()
    if timestamp is None:
        moment = datetime.now(UTC)
    elif isinstance(timestamp, datetime):
        moment = timestamp
    else:
        moment = datetime.fromtimestamp(timestamp, UTC)
    text = body.decode() if isinstance(body, bytes) else body
    signature = Webhook(secret).sign(message_id, moment, text)
    prefix = "svix" if legacy else "webhook"
    return {
        f"{prefix}-id": message_id,
        f"{prefix}-timestamp": str(int(moment.timestamp())),
        f"{prefix}-signature": signature,
        "content-type": "application/json",
    }


@dataclass
class Delivery:
    """One attempt to deliver a webhook, with what the receiver answered."""

    id: str
    event: str
    payload: dict[str, Any]
    body: bytes
    headers: dict[str, str]
    status: int | None = None
    error: str | None = None
    delivered_at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookSender:
    """Builds, signs, sends and records deliveries."""

    def __init__(self, secret: str, target: WebhookTarget, legacy_headers: bool) -> None:
        self.secret = secret
        self.target = target
        self.legacy_headers = legacy_headers
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()

    def build(
        self,
        event: str,
        data: dict[str, Any],
        *,
        message_id: str | None = None,
        timestamp: datetime | float | None = None,
        secret: str | None = None,
        legacy_headers: bool | None = None,
        bad_signature: bool = False,
        tamper: bool = False,
    ) -> Delivery:
        """A signed delivery (``bad_signature``: wrong key; ``tamper``: body edited once signed)."""
        payload = {"event": event, "data": data}
        body = json.dumps(payload).encode()
        key = secret or self.secret
        if bad_signature:
            key = "whsec_" + "A" * 32 if key != "whsec_" + "A" * 32 else "whsec_" + "B" * 32
        legacy = self.legacy_headers if legacy_headers is None else legacy_headers
        headers = signed_headers(
            key, body, message_id=message_id, timestamp=timestamp, legacy=legacy
        )
        if tamper:
            body = body.replace(b"}}", b', "tampered": true}}')
        return Delivery(
            headers[("svix" if legacy else "webhook") + "-id"], event, payload, body, headers
        )

    def deliver(self, delivery: Delivery) -> Delivery:
        """Send it to the target now and record the answer (errors are recorded, never raised)."""
        target = self.target
        try:
            if callable(target):
                delivery.status = int(target(delivery.body, dict(delivery.headers)))
            elif isinstance(target, str):
                answer = requests.post(
                    target, data=delivery.body, headers=delivery.headers, timeout=30
                )
                delivery.status = answer.status_code
        except Exception as exc:  # a receiver's failure is data for the test, not a crash
            delivery.error = f"{type(exc).__name__}: {exc}"
        delivery.delivered_at = time.time()
        with self._lock:
            self.deliveries.append(delivery)
        return delivery

    def resign(self, delivery: Delivery) -> Delivery:
        """The same message (same id and body) signed afresh, as Svix retries it."""
        legacy = "svix-id" in delivery.headers
        headers = signed_headers(self.secret, delivery.body, message_id=delivery.id, legacy=legacy)
        return Delivery(delivery.id, delivery.event, delivery.payload, delivery.body, headers)
