"""The webhook endpoint Recall posts to, as a Django view: the default door of ``intake.receive``.

It does no processing itself. The delivery's row is committed before the answer; its processing is
enqueued only once the answer is sent (when the server closes the response), so a slow task queue
never delays Recall, and deliveries the process stores meanwhile go in the same task
(``tasks.Handoff``). If the process dies in between, the row stays ``received`` and
``manage.py recall_webhooks --retry-failed`` processes it (see ``webhooks.due_deliveries``).

A plain Django view, not a DRF one: DRF's request wrapping, content negotiation and rendering were a
sixth of the endpoint's time, and it needs none of them (the signature is the authentication, and
the answer is JSON whatever ``Accept`` says: a 406 would refuse a signed delivery unrecorded).
High-volume sites can put ``wsgi.WebhookReceiver`` in front of Django instead, which calls the
same ``intake.receive`` without Django's request, middleware and URL resolving.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from .. import intake


class Answered(HttpResponse):
    """An ``intake.Answer`` as a response; its ``then`` runs when the server closes it, i.e. once
    it has been sent."""

    def __init__(self, answer: intake.Answer) -> None:
        super().__init__(answer.body, status=answer.status, content_type="application/json")
        self.then = answer.then

    def close(self) -> None:
        try:
            if self.then is not None:
                self.then()
        finally:
            super().close()


class WebhookView(View):
    """POST only; every answer is ``intake.receive``'s."""

    http_method_names = ["post"]

    @classmethod
    def as_view(cls, **initkwargs: object) -> Callable[..., HttpResponse]:
        """Recall is not a browser and has no session: the Svix signature is the only credential,
        so the view is exempt from CSRF and from Django's LoginRequiredMiddleware. Marked on the
        view function once, not with ``method_decorator`` on ``dispatch``, which wrapped the
        method anew on every request."""
        return csrf_exempt(login_not_required(super().as_view(**initkwargs)))

    def post(self, request: HttpRequest) -> HttpResponse:
        return Answered(intake.receive(request, request.META))
