"""Signed deliveries, and the webhook endpoint's two doors, driven alike as a WSGI server would.

The Django view is served by Django's own WSGI handler (every middleware of the test settings, CSRF
enforced as for a browser); the WSGI door by ``WebhookReceiver`` around the same handler. Both get
the same environ, and their answer is read, then closed, as a server does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import RequestFactory
from django.urls import reverse
from svix.webhooks import Webhook

from django_recall_calendar.wsgi import WebhookReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"


def sign(
    body: bytes,
    *,
    secret: str = SECRET,
    msg_id: str | None = None,
    timestamp: datetime | None = None,
    legacy: bool = False,
) -> dict[str, str]:
    """Headers Recall would send with ``body`` (webhook-* or legacy svix-*)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = timestamp or datetime.now(tz=UTC)
    signature = Webhook(secret).sign(msg_id, timestamp, body)  # byte for byte, UTF-8 or not
    prefix = "svix" if legacy else "webhook"
    return {
        f"{prefix}-id": msg_id,
        f"{prefix}-timestamp": str(int(timestamp.timestamp())),
        f"{prefix}-signature": signature,
    }


def envelope(event: str = "calendar.update", **data) -> bytes:
    data.setdefault("calendar_id", str(uuid.uuid4()))
    return json.dumps({"event": event, "data": data}).encode()


def environ(
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
    path: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The WSGI environ of a request to the webhook URL (``extra``: environ keys to set)."""
    return (
        RequestFactory()
        .generic(
            method,
            path or reverse("recall_calendar:webhook"),
            data=body,
            content_type="application/json",
            headers=headers or {},
            **extra,
        )
        .environ
    )


@contextmanager
def keeping_test_transaction() -> Iterator[None]:
    """As Django's test client: ``close_old_connections`` on the request signals would close the
    connection holding the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@dataclass
class Answered:
    """An answer read from a WSGI application, not yet closed unless :meth:`close` ran."""

    status_code: int
    headers: dict[str, str]
    content: bytes
    iterable: Any = field(repr=False)

    def json(self) -> Any:
        return json.loads(self.content)

    def close(self) -> None:
        if hasattr(self.iterable, "close"):
            with keeping_test_transaction():
                self.iterable.close()


def serve(application: Any, request: dict[str, Any]) -> Answered:
    """Call ``application`` with the environ ``request`` and read its answer (not closed)."""
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.append((status, headers))

    with keeping_test_transaction():
        iterable = application(request, start_response)
        content = b"".join(iterable)
    [(status, headers)] = started
    return Answered(int(status.split()[0]), dict(headers), content, iterable)


@dataclass
class Door:
    """One door of the webhook endpoint: Django's WSGI handler alone (the view), or with
    ``WebhookReceiver`` in front (``wsgi`` true). The application is built per request, so settings
    a test changes (``MIDDLEWARE``) apply."""

    name: str
    wsgi: bool

    def open(self, request: dict[str, Any]) -> Answered:
        """The answer to the environ ``request``, read but not closed."""
        django = get_wsgi_application()
        if not self.wsgi:
            return serve(django, request)
        reached_django = []

        def behind_the_door(environ: dict[str, Any], start_response: Any) -> Any:
            reached_django.append(environ)
            return django(environ, start_response)

        answered = serve(WebhookReceiver(behind_the_door), request)
        webhook = (request["REQUEST_METHOD"], request["PATH_INFO"]) == (
            "POST",
            reverse("recall_calendar:webhook"),
        )
        # Else the view would answer in its place, and every test would pass without the door.
        assert reached_django == ([] if webhook else [request]), "the door answered wrongly"
        return answered

    def send(self, request: dict[str, Any]) -> Answered:
        """The answer to the environ ``request``, read and closed."""
        answered = self.open(request)
        answered.close()
        return answered

    def post(self, body: bytes, headers: dict[str, str], **extra: Any) -> Answered:
        """A POST of ``body`` with ``headers`` to the webhook URL, answered and closed."""
        return self.send(environ(body, headers, **extra))
