"""The webhook endpoint Recall posts to: read the raw body (bounded), verify, record, answer 2xx.

It does no processing itself. The delivery's row is committed before the answer; its processing is
enqueued only once the answer is sent (when the server closes the response), so a slow task queue
never delays Recall, and deliveries the process stores meanwhile go in the same task
(``tasks.Handoff``). If the process dies in between, the row stays ``received`` and
``manage.py recall_webhooks --retry-failed`` processes it (see ``webhooks.due_deliveries``).

A plain Django view, not a DRF one: DRF's request wrapping, content negotiation and rendering were a
sixth of the endpoint's time, and it needs none of them (the signature is the authentication, and
the answer is JSON whatever ``Accept`` says: a 406 would refuse a signed delivery unrecorded).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from .. import conf, tasks, webhooks
from ..models import DeliveryStatus

logger = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    """The request body exceeds WEBHOOK_MAX_BODY_SIZE."""


def read_body(request: HttpRequest, limit: int) -> bytes:
    """The raw body, refusing (without reading it whole) one longer than ``limit`` bytes.

    Content-Length is checked first; the stream is then read for at most ``limit + 1`` bytes, which
    also catches a body longer than its declared length.
    """
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise BodyTooLarge
    body = request.read(limit + 1)
    if len(body) > limit:
        raise BodyTooLarge
    return body


def signature_headers(request: HttpRequest) -> dict[str, str]:
    """The signature headers straight from ``META``: building ``request.headers`` (every header
    of the request) cost more than the signature check."""
    meta = request.META
    return {
        name: meta[key]
        for name in webhooks.SIGNATURE_HEADERS
        if (key := "HTTP_" + name.upper().replace("-", "_")) in meta
    }


#: The answer to a delivery stored for processing, encoded once rather than on every request.
RECEIVED = json.dumps({"status": DeliveryStatus.RECEIVED}).encode()


class AnsweredThen(HttpResponse):
    """A JSON answer that runs ``then`` when the server closes it, i.e. once it has been sent."""

    def __init__(self, content: bytes, then: Callable[[], None]) -> None:
        super().__init__(content, content_type="application/json")
        self.then = then

    def close(self) -> None:
        try:
            self.then()
        finally:
            super().close()


class WebhookView(View):
    """POST only. No secret configured answers 503, not 400: the fault is the host's
    configuration, not the sender's request, and Recall keeps retrying a 5xx, so nothing is lost
    once the secret is set."""

    http_method_names = ["post"]

    @classmethod
    def as_view(cls, **initkwargs: object) -> Callable[..., HttpResponse]:
        """Recall is not a browser and has no session: the Svix signature is the only credential,
        so the view is exempt from CSRF and from Django's LoginRequiredMiddleware. Marked on the
        view function once, not with ``method_decorator`` on ``dispatch``, which wrapped the
        method anew on every request."""
        return csrf_exempt(login_not_required(super().as_view(**initkwargs)))

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            body = read_body(request, conf.get("WEBHOOK_MAX_BODY_SIZE"))
        except BodyTooLarge:
            return JsonResponse({"detail": "Request body is too large."}, status=413)
        try:
            verified = webhooks.verify(body, signature_headers(request))
            delivery = webhooks.record(verified)
        except webhooks.WebhookNotConfigured as exc:
            logger.error("Refused a Recall webhook delivery: %s", exc)
            return JsonResponse({"detail": "Webhook secret is not configured."}, status=503)
        except webhooks.WebhookRejected as exc:
            # Worth a line in the log: a wrong secret is the commonest integration mistake.
            logger.warning("Rejected a Recall webhook delivery: %s", exc)
            return JsonResponse({"detail": str(exc)}, status=400)
        if delivery is None:
            return JsonResponse({"status": "duplicate"})
        if delivery.status != DeliveryStatus.RECEIVED:
            return JsonResponse({"status": delivery.status})
        return AnsweredThen(
            RECEIVED,
            lambda: tasks.process_after_commit([delivery.pk], using=delivery.using),
        )
