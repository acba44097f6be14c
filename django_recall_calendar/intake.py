"""The webhook endpoint's work, without an HTTP framework: read, verify, record, say what to answer.

Two doors serve Recall's POSTs and both call :func:`receive`: the Django view
(``views/webhook.py``, the default) and the WSGI door in front of the whole application
(``wsgi.py``, for high-volume sites). Each only turns the :class:`Answer` into its own response, so
the statuses, the JSON bodies, the log lines and the hand-off to the task queue are the same
whichever door a delivery came through.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from . import conf, tasks, webhooks
from .models import DeliveryStatus

logger = logging.getLogger(__name__)


class Readable(Protocol):
    """What the body is read from: a Django request, or a WSGI input bounded by Content-Length."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Answer:
    """A JSON answer, and what to run once the server has sent it (``then``)."""

    status: int
    body: bytes
    then: Callable[[], None] | None = None


def _json(status: int, data: Mapping[str, str]) -> Answer:
    return Answer(status, json.dumps(data).encode())


#: The fixed answers, encoded once rather than on every request.
RECEIVED = _json(200, {"status": DeliveryStatus.RECEIVED})
DUPLICATE = _json(200, {"status": "duplicate"})
TOO_LARGE = _json(413, {"detail": "Request body is too large."})
NOT_CONFIGURED = _json(503, {"detail": "Webhook secret is not configured."})


class BodyTooLarge(Exception):
    """The request body exceeds WEBHOOK_MAX_BODY_SIZE."""


def declared_length(content_length: str | None) -> int:
    """The request's Content-Length as Django reads it: 0 when missing or not a number."""
    try:
        return int(content_length or 0)
    except ValueError:
        return 0


def read_body(stream: Readable, content_length: str | None, limit: int) -> bytes:
    """The raw body, refusing (without reading it whole) one longer than ``limit`` bytes.

    The declared Content-Length is checked first; the stream is then read for at most
    ``limit + 1`` bytes, which also catches a body longer than its declared length.
    """
    if declared_length(content_length) > limit:
        raise BodyTooLarge
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise BodyTooLarge
    return body


def signature_headers(environ: Mapping[str, str]) -> dict[str, str]:
    """The signature headers straight from the WSGI environ (a Django request's ``META``):
    building ``request.headers`` (every header of the request) cost more than the signature
    check."""
    return {
        name: environ[key]
        for name in webhooks.SIGNATURE_HEADERS
        if (key := "HTTP_" + name.upper().replace("-", "_")) in environ
    }


def receive(stream: Readable, environ: Mapping[str, str]) -> Answer:
    """Answer one POST of a delivery: ``stream`` is its body, ``environ`` its WSGI environ.

    The row is committed before this returns; a delivery to process is handed to the task queue
    by ``then``, which the door runs once the answer is sent (when the server closes the
    response), so a slow task queue never delays Recall. No secret configured answers 503, not
    400: the fault is the host's configuration, not the sender's request, and Recall keeps
    retrying a 5xx, so nothing is lost once the secret is set.
    """
    try:
        body = read_body(stream, environ.get("CONTENT_LENGTH"), conf.get("WEBHOOK_MAX_BODY_SIZE"))
    except BodyTooLarge:
        return TOO_LARGE
    try:
        verified = webhooks.verify(body, signature_headers(environ))
        delivery = webhooks.record(verified)
    except webhooks.WebhookNotConfigured as exc:
        logger.error("Refused a Recall webhook delivery: %s", exc)
        return NOT_CONFIGURED
    except webhooks.WebhookRejected as exc:
        # Worth a line in the log: a wrong secret is the commonest integration mistake.
        logger.warning("Rejected a Recall webhook delivery: %s", exc)
        return _json(400, {"detail": str(exc)})
    if delivery is None:
        return DUPLICATE
    if delivery.status != DeliveryStatus.RECEIVED:
        return _json(200, {"status": delivery.status})
    return Answer(RECEIVED.status, RECEIVED.body, _enqueue_once(delivery))


def _enqueue_once(delivery: webhooks.Recorded) -> Callable[[], None]:
    """The hand-off of ``delivery`` to the task queue, done by the first call only: a server that
    closed an answer twice must not enqueue its delivery twice."""
    waiting = [delivery.pk]

    def enqueue() -> None:
        if waiting:
            tasks.process_after_commit([waiting.pop()], using=delivery.using)

    return enqueue
