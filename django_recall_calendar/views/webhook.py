"""The webhook endpoint Recall posts to: read the raw body (bounded), verify, record, answer 2xx.

It does no processing itself: ``webhooks.record`` enqueues a task once the row is committed, so the
answer is fast whatever the task backend does later.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import conf, webhooks

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


class WebhookView(APIView):
    """POST only. No authentication, permissions, throttling or parsers: the signature is the auth.

    No secret configured answers 503, not 400: the fault is the host's configuration, not the
    sender's request, and Recall keeps retrying a 5xx, so nothing is lost once the secret is set.
    """

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
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
        return Response({"status": delivery.status}, status=status.HTTP_200_OK)
