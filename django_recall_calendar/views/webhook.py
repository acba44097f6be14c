"""The webhook endpoint Recall posts to: read the raw body (bounded), verify, record, answer 2xx.

It does no processing itself: the stored delivery is handed to a task once its row is committed, so
the answer is fast whatever the task backend does later.
"""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

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


class AlwaysJSON(BaseContentNegotiation):
    """Answer JSON whatever ``Accept`` says: a 406 would refuse a signed delivery unrecorded."""

    def select_parser(self, request: Request, parsers: list) -> None:
        return None

    def select_renderer(
        self, request: Request, renderers: list, format_suffix: str | None = None
    ) -> tuple:
        return renderers[0], renderers[0].media_type


# Recall is not a browser and has no session: the Svix signature is the only credential, so the
# view is exempt from CSRF (DRF's as_view() already is; stated here so nobody has to know) and from
# Django's LoginRequiredMiddleware.
@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class WebhookView(APIView):
    """POST only; the signature is the authentication.

    No secret configured answers 503, not 400: the fault is the host's configuration, not the
    sender's request, and Recall keeps retrying a 5xx, so nothing is lost once the secret is set.
    """

    # No user to authenticate; DRF's SessionAuthentication would also demand a CSRF token.
    authentication_classes: list = []
    # Whoever holds the secret may post; there is no user to grant or deny anything.
    permission_classes: list = []
    # A host's DEFAULT_THROTTLE_CLASSES must never answer Recall 429: a refused burst is retried
    # late and the deliveries lose their order against the meetings they announce.
    throttle_classes: list = []
    # The signature covers the exact bytes: the body is read raw (bounded), never parsed by DRF.
    parser_classes: list = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = AlwaysJSON
    http_method_names = ["post"]

    def post(self, request: Request) -> Response:
        try:
            body = read_body(request._request, conf.get("WEBHOOK_MAX_BODY_SIZE"))
        except BodyTooLarge:
            return Response(
                {"detail": "Request body is too large."},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        try:
            verified = webhooks.verify(body, request.headers)
            delivery = webhooks.record(verified)
        except webhooks.WebhookNotConfigured as exc:
            logger.error("Refused a Recall webhook delivery: %s", exc)
            return Response(
                {"detail": "Webhook secret is not configured."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        except webhooks.WebhookRejected as exc:
            # Worth a line in the log: a wrong secret is the commonest integration mistake.
            logger.warning("Rejected a Recall webhook delivery: %s", exc)
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        if delivery is None:
            return Response({"status": "duplicate"}, status=status.HTTP_200_OK)
        if delivery.status == DeliveryStatus.RECEIVED:
            tasks.process_after_commit([delivery.pk], using=delivery._state.db)
        return Response({"status": delivery.status}, status=status.HTTP_200_OK)
