"""A WSGI door for Recall's webhooks, in front of the whole Django application (opt-in).

In the host's ``wsgi.py``::

    from django.core.wsgi import get_wsgi_application
    from django_recall_calendar.wsgi import WebhookReceiver

    application = WebhookReceiver(get_wsgi_application())

Like WhiteNoise for static files, it answers one kind of request itself, POSTs to the webhook URL,
and hands every other request to the application unchanged. A delivery costs about half the CPU
it costs through ``views.webhook.WebhookView`` (the default door, which stays routed): no Django
request object, no middleware, no URL resolving, none of which a signed server-to-server POST
needs (the signature is its only credential). The answers are ``intake.receive``'s, as the view's
are. Django's request signals still fire, so connection hygiene (``CONN_MAX_AGE``, health checks)
and the host's receivers behave as for any request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.wsgi import LimitedStream, WSGIRequest
from django.core.signals import got_request_exception, request_finished, request_started
from django.http import HttpResponse
from django.urls import NoReverseMatch, get_script_prefix, reverse
from django.utils.log import log_response

from . import intake

WSGIApplication = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: What an unexpected error answers: never the exception's text (Recall retries any 5xx).
SERVER_ERROR = intake.Answer(500, b'{"detail": "Internal server error."}')


class WebhookReceiver:
    """A WSGI middleware answering POSTs to ``path`` with ``intake.receive``.

    ``path`` defaults to the ``recall_calendar:webhook`` URL, reversed on the first POST rather
    than here: the host's URLconf may not be importable yet when its ``wsgi.py`` is. It is compared
    with ``PATH_INFO`` (what follows the mount point, ``SCRIPT_NAME``), as Django resolves URLs.
    """

    def __init__(self, application: WSGIApplication, *, path: str | None = None) -> None:
        self.application = application
        self._path = path

    @property
    def path(self) -> str:
        if self._path is None:
            try:
                url = reverse("recall_calendar:webhook")
            except NoReverseMatch:
                raise ImproperlyConfigured(
                    "WebhookReceiver finds no URL named 'recall_calendar:webhook': include "
                    "django_recall_calendar.urls in the URLconf, or pass path=."
                ) from None
            # reverse() puts the script prefix first; PATH_INFO does not have it.
            self._path = "/" + url.removeprefix(get_script_prefix())
        return self._path

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != self.path:
            return self.application(environ, start_response)
        # As Django's WSGIHandler: close_old_connections and the host's receivers run.
        request_started.send(sender=self.__class__, environ=environ)
        answer = _answer(environ)
        start_response(
            f"{answer.status} {HTTPStatus(answer.status).phrase}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(answer.body)))],
        )
        return Sent(answer, sender=self.__class__)


def _answer(environ: dict[str, Any]) -> intake.Answer:
    """``intake.receive``'s answer, logged on ``django.request`` as Django logs a view's 4xx/5xx."""
    # Bounded by Content-Length as Django bounds a request's body: a server need not end the
    # stream there, and reading past it may wait for bytes that never come.
    length = intake.declared_length(environ.get("CONTENT_LENGTH"))
    try:
        answer = intake.receive(LimitedStream(environ["wsgi.input"], length), environ)
    except Exception as exc:
        request = WSGIRequest(environ)
        got_request_exception.send(sender=None, request=request)
        _log(request, SERVER_ERROR.status, exc)
        return SERVER_ERROR
    if answer.status >= 400:
        _log(WSGIRequest(environ), answer.status)
    return answer


def _log(request: WSGIRequest, status: int, exception: Exception | None = None) -> None:
    """The line Django's handler writes for a view's error answer ("Bad Request: /path", the
    traceback of an unexpected error), so the host's logging and error reporting see the same."""
    response = HttpResponse(status=status)
    log_response(
        "%s: %s",
        response.reason_phrase,
        request.path,
        response=response,
        request=request,
        exception=exception,
    )


class Sent:
    """The answer's body for the server. Closing it (the server does once the answer is sent)
    runs the answer's ``then`` and ends the request as Django does, with ``request_finished``."""

    def __init__(self, answer: intake.Answer, sender: type) -> None:
        self.answer = answer
        self.sender = sender

    def __iter__(self) -> Iterator[bytes]:
        return iter((self.answer.body,))

    def close(self) -> None:
        try:
            if self.answer.then is not None:
                self.answer.then()
        finally:
            request_finished.send(sender=self.sender)
