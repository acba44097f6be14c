"""The WSGI door (``wsgi.WebhookReceiver``): what it answers itself, what it leaves to Django, and
that it keeps Django's request lifecycle. Its answers to deliveries are checked with the view's in
``test_webhook_endpoint.py`` (the ``door`` fixture); here, what only the door does."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from importlib import import_module
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import OperationalError, connection
from django.urls import set_script_prefix
from waitress import wasyncore
from waitress.server import create_server

from django_recall_calendar.models import DeliveryStatus, WebhookDelivery
from django_recall_calendar.wsgi import WebhookReceiver
from tests.webhook_doors import OTHER_SECRET, Door, envelope, environ, serve, sign

pytestmark = pytest.mark.django_db

WEBHOOK_PATH = "/recall/webhooks/"


class Behind:
    """A stand-in for the host's application: notes each request it gets and answers 204."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.answer = [b"from the application"]

    def __call__(self, request: dict[str, Any], start_response: Any) -> list[bytes]:
        self.got.append(request)
        start_response("204 No Content", [("X-From", "application")])
        return self.answer


@pytest.fixture
def behind() -> Behind:
    return Behind()


def _signed(**extra: Any) -> dict[str, Any]:
    body = envelope()
    return environ(body, sign(body), **extra)


def _without_content_length(**extra: Any) -> dict[str, Any]:
    request = _signed(**extra)
    del request["CONTENT_LENGTH"]
    return request


def _with_stream(data: bytes, **extra: Any) -> dict[str, Any]:
    body = envelope()
    return environ(b"", sign(body), **{"wsgi.input": io.BytesIO(data), **extra})


HOSTILE = {
    "Content-Length far over the limit": lambda: _with_stream(
        b"x" * 100, CONTENT_LENGTH=str(10**12)
    ),
    "Content-Length missing": lambda: _without_content_length(),
    "Content-Length negative": lambda: _signed(CONTENT_LENGTH="-1"),
    "Content-Length not a number": lambda: _signed(CONTENT_LENGTH="12abc"),
    "Content-Length longer than the body": lambda: _with_stream(b"{}", CONTENT_LENGTH="5000"),
    "Content-Length shorter than the body": lambda: _signed(CONTENT_LENGTH="10"),
    "chunked body with no length": lambda: _without_content_length(
        HTTP_TRANSFER_ENCODING="chunked"
    ),
    "wrong signature": lambda: environ(envelope(), sign(envelope(), secret=OTHER_SECRET)),
    "signed body not JSON": lambda: environ(b"not json", sign(b"not json")),
    "no signature headers": lambda: environ(envelope(), {}),
    "GET with a signed body": lambda: _signed(method="GET"),
    "PUT with a signed body": lambda: _signed(method="PUT"),
}


def _answer_and_logs(door: Door, request: dict[str, Any], caplog) -> tuple:
    caplog.clear()
    answered = door.send(request)
    logs = [
        (record.name, record.levelname, record.getMessage(), getattr(record, "status_code", None))
        for record in caplog.records
        if record.name.startswith(("django.request", "django_recall_calendar"))
    ]
    return answered.status_code, answered.headers.get("Content-Type"), answered.content, logs


@pytest.mark.parametrize("build", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_requests_get_exactly_the_views_answer_and_log_lines(secret, build, caplog):
    """Status, content type, body, and the log lines (ours, and Django's "Bad Request: /path")."""
    caplog.set_level(logging.INFO)

    by_view = _answer_and_logs(Door("django view", wsgi=False), build(), caplog)
    by_door = _answer_and_logs(Door("wsgi door", wsgi=True), build(), caplog)

    assert by_door == by_view
    assert by_view[0] >= 400 and by_view[3]  # refused, and said so in the log
    assert not WebhookDelivery.objects.exists()


class Signals:
    """Counts Django's request signals as the door sends them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def started(self, sender: Any, environ: dict, **kwargs: Any) -> None:
        self.sent.append(("started", environ["PATH_INFO"]))

    def finished(self, sender: Any, **kwargs: Any) -> None:
        self.sent.append(("finished", sender))

    def exception(self, sender: Any, request: Any, **kwargs: Any) -> None:
        self.sent.append(("exception", request.path))


@pytest.fixture
def signals() -> Iterator[Signals]:
    counted = Signals()
    request_started.connect(counted.started)
    request_finished.connect(counted.finished)
    got_request_exception.connect(counted.exception)
    yield counted
    request_started.disconnect(counted.started)
    request_finished.disconnect(counted.finished)
    got_request_exception.disconnect(counted.exception)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", WEBHOOK_PATH),
        ("HEAD", WEBHOOK_PATH),
        ("PUT", WEBHOOK_PATH),
        ("POST", "/recall/webhooks"),
        ("POST", "/elsewhere/recall/webhooks/"),
        ("POST", "/recall/calendars/"),
        ("GET", "/"),
    ],
)
def test_other_requests_go_to_the_application_untouched(secret, behind, signals, method, path):
    request = _signed(method=method, path=path)

    result = WebhookReceiver(behind)(request, _start_response)

    assert len(behind.got) == 1 and behind.got[0] is request
    assert result is behind.answer  # the application's own answer, not wrapped
    assert signals.sent == []  # the application sends Django's request signals itself
    assert not WebhookDelivery.objects.exists()


def _start_response(status: str, headers: list, exc_info: Any = None) -> None:
    """A WSGI server's start_response, for calls whose answer a test does not read."""


def test_django_answers_what_the_door_passes_on(secret, client):
    """A GET of the webhook URL gets Django's 405, another URL its normal page."""
    door = Door("wsgi door", wsgi=True)

    not_allowed = door.send(environ(method="GET"))
    page = door.send(environ(method="GET", path="/recall/calendars/"))

    assert (not_allowed.status_code, not_allowed.headers["Allow"]) == (405, "POST")
    alone = client.get("/recall/calendars/")
    assert (page.status_code, page.headers["Location"]) == (302, alone["Location"])


def test_an_explicit_path_is_served_and_the_default_one_left_to_the_application(secret, behind):
    door = WebhookReceiver(behind, path="/hooks/recall/")
    body = envelope("recording.done")

    answered = serve(door, environ(body, sign(body), path="/hooks/recall/"))
    answered.close()
    serve(door, _signed()).close()

    assert (answered.status_code, answered.json()) == (200, {"status": "ignored"})
    assert WebhookDelivery.objects.get().payload["event"] == "recording.done"
    assert [request["PATH_INFO"] for request in behind.got] == [WEBHOOK_PATH]


@pytest.fixture
def mounted_at_site():
    """The script prefix a Django request under ``/site`` leaves in its thread."""
    set_script_prefix("/site/")
    yield
    set_script_prefix("/")


def test_the_default_path_is_found_when_the_site_is_mounted_under_a_prefix(
    secret, behind, mounted_at_site
):
    """WSGI servers put the mount point in SCRIPT_NAME; PATH_INFO is the URL Django resolves."""
    door = WebhookReceiver(behind)
    body = envelope("recording.done")

    answered = serve(door, environ(body, sign(body), path=WEBHOOK_PATH, SCRIPT_NAME="/site"))
    answered.close()

    assert (answered.status_code, behind.got) == (200, [])
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.parametrize(
    "build", [_signed, lambda: environ(b"{}", {})], ids=["stored delivery", "refused delivery"]
)
def test_request_started_and_finished_are_sent_once_per_webhook_request(
    secret, behind, signals, build
):
    """As for any Django request: close_old_connections (CONN_MAX_AGE, broken connections) and
    the host's receivers run; finished only once the answer is closed."""
    answered = serve(WebhookReceiver(behind), build())
    assert signals.sent == [("started", WEBHOOK_PATH)]

    answered.close()

    assert signals.sent == [("started", WEBHOOK_PATH), ("finished", WebhookReceiver)]
    assert behind.got == []


def test_an_unexpected_error_answers_500_json_logged_and_reported_as_django_does(
    secret, behind, signals, caplog
):
    """Recall retries a 5xx, so the delivery is stored once the database is back; the answer
    tells the sender nothing of the error."""
    door = WebhookReceiver(behind)
    body = envelope("recording.done")
    headers = sign(body)

    with connection.execute_wrapper(_failing_inserts):
        answered = serve(door, environ(body, headers))
    answered.close()
    retried = serve(door, environ(body, headers))
    retried.close()

    assert (answered.status_code, answered.json()) == (500, {"detail": "Internal server error."})
    assert answered.headers["Content-Type"] == "application/json"
    assert b"hunter2" not in answered.content and b"db.internal" not in answered.content
    [logged] = [record for record in caplog.records if record.name == "django.request"]
    assert (logged.levelname, logged.getMessage()) == (
        "ERROR",
        f"Internal Server Error: {WEBHOOK_PATH}",
    )
    assert (logged.status_code, logged.request.path) == (500, WEBHOOK_PATH)
    assert logged.exc_info[0] is OperationalError
    assert signals.sent == [
        ("started", WEBHOOK_PATH),
        ("exception", WEBHOOK_PATH),
        ("finished", WebhookReceiver),
        ("started", WEBHOOK_PATH),
        ("finished", WebhookReceiver),
    ]
    assert (retried.status_code, retried.json()) == (200, {"status": "ignored"})
    assert WebhookDelivery.objects.get().status == DeliveryStatus.IGNORED


def _failing_inserts(execute, sql, params, many, context):
    """Every INSERT fails as with the database gone, the error naming a host and a password."""
    if sql.lstrip().upper().startswith("INSERT"):
        raise OperationalError("connection to db.internal:5432 lost (password=hunter2)")
    return execute(sql, params, many, context)


@pytest.fixture
def waitress_serving():
    """``WebhookReceiver(get_wsgi_application())`` served by waitress on a free local port, with
    Django's request signals connected as in production; yields its base URL."""
    from django.core.wsgi import get_wsgi_application

    sockets: dict = {}
    server = create_server(
        WebhookReceiver(get_wsgi_application()), host="127.0.0.1", port=0, map=sockets, threads=2
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.task_dispatcher.shutdown()
    wasyncore.close_all(sockets)
    thread.join(timeout=10)


def test_over_http_a_signed_delivery_is_stored_once_and_enqueued_once(
    transactional_db, secret, queued, waitress_serving
):
    """Served as in production, Django's request signals connected (``close_old_connections``
    closes each server thread's connection when its answer is closed, ``CONN_MAX_AGE`` being 0).
    The ``queued`` backend keeps the task unprocessed; each server thread has its own instance, so
    what they enqueue is counted by the task framework's ``task_enqueued`` signal."""
    enqueued, finished = [], threading.Event()
    task_enqueued = import_module(f"{django_settings.TASKS_MODULE}.signals").task_enqueued
    task_enqueued.connect(
        lambda task_result, **kwargs: enqueued.append(task_result.args),
        weak=False,
        dispatch_uid="door",
    )
    request_finished.connect(lambda **kwargs: finished.set(), weak=False, dispatch_uid="door")
    body = envelope("calendar.sync_events")
    headers = {**sign(body), "Content-Type": "application/json"}
    url = waitress_serving + WEBHOOK_PATH
    try:
        first = requests.post(url, data=body, headers=headers, timeout=10)
        assert finished.wait(timeout=10)  # the server closed the answer: enqueued by then
        second = requests.post(url, data=body, headers=headers, timeout=10)
        get = requests.get(url, timeout=10)
    finally:
        request_finished.disconnect(dispatch_uid="door")
        task_enqueued.disconnect(dispatch_uid="door")

    assert (first.status_code, first.json()) == (200, {"status": "received"})
    assert (second.status_code, second.json()) == (200, {"status": "duplicate"})
    assert get.status_code == 405
    delivery = WebhookDelivery.objects.get()
    assert enqueued == [[[delivery.pk]]]
