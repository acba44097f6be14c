"""No error report shows a secret: Django's ExceptionReporter (the renderer of the debug page and
of the admins' error email, HTML and text) on real failures of the client, the connect code and the
pipeline step, with the API key, the OAuth client secrets and the tokens planted and looked for.

Reports hide variables only when DEBUG is off (Django's SafeExceptionReporterFilter), as in
production: the example project runs with DEBUG off unless told otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from django.core import mail
from django.db import IntegrityError
from django.db.models.signals import pre_save
from django.test import RequestFactory
from django.utils.log import AdminEmailHandler
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from django_recall_calendar import signals
from django_recall_calendar.calendars import connect_calendar_for
from django_recall_calendar.client import RecallClient
from django_recall_calendar.debug import RecallExceptionReporterFilter
from django_recall_calendar.exceptions import RecallError
from django_recall_calendar.models import Calendar

from .connect_support import PROVIDERS, oauth_connect

pytestmark = pytest.mark.django_db

API_KEY = "planted-api-key-6a1f9c"
CLIENT_SECRET = "planted-client-secret-0d93b7"
REFRESH_TOKEN = "planted-refresh-token-c4e2a8"
CREDENTIALS = {
    "oauth_client_id": "planted-client-id",
    "oauth_client_secret": CLIENT_SECRET,
    "oauth_refresh_token": REFRESH_TOKEN,
}
CONNECT_ARGS = (REFRESH_TOKEN, "planted-client-id", CLIENT_SECRET, "owner@work.example")
CLOSED_PORT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused


@pytest.fixture
def planted(settings, recall_emulator):
    """The API key and both providers' client secrets set to values a report is searched for."""
    recall_emulator.api_key = API_KEY
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "API_KEY": API_KEY}
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = CLIENT_SECRET
    settings.SOCIAL_AUTH_MICROSOFT_GRAPH_SECRET = CLIENT_SECRET
    return recall_emulator


@pytest.fixture
def recall_down(settings, planted):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "BASE_URL": CLOSED_PORT_URL}


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("owner", "owner@site.example")


def raised(call: Callable[[], object]) -> BaseException:
    """The exception ``call`` raises (with its traceback), caught here as a handler would."""
    try:
        call()
    except BaseException as exc:  # whatever it is, it is reported
        return exc
    raise AssertionError("expected a failure")


def django_reports(exc: BaseException) -> tuple[str, str]:
    """The HTML and text reports of ``exc`` with Django's own filter: our decorators alone."""
    request = RequestFactory().get("/recall/calendars/")
    request.exception_reporter_filter = SafeExceptionReporterFilter()
    reporter = ExceptionReporter(request, type(exc), exc, exc.__traceback__)
    return reporter.get_traceback_html(), reporter.get_traceback_text()


def assert_no_secret(html: str, text: str, secrets) -> None:
    assert "Traceback" in text and '<th scope="col">Variable</th>' in html  # frames, locals
    assert [secret for secret in secrets if secret in html or secret in text] == []


def test_the_client_with_recall_down_reports_no_secret(recall_down):
    client = RecallClient.from_settings()

    exc = raised(lambda: client.create_calendar(platform="google_calendar", **CREDENTIALS))

    assert isinstance(exc, RecallError)
    html, text = django_reports(exc)
    assert "Connection refused" in text  # the chained causes, with requests' frames, are shown
    assert_no_secret(html, text, [API_KEY, CLIENT_SECRET, REFRESH_TOKEN])


def test_the_client_with_recall_failing_reports_no_secret(planted):
    client = RecallClient.from_settings()
    calendar_id = planted.create_calendar("google_calendar")["id"]
    planted.inject_fault("503", count=50)

    exc = raised(lambda: client.update_calendar(calendar_id, **CREDENTIALS))

    assert isinstance(exc, RecallError)
    assert_no_secret(*django_reports(exc), [API_KEY, CLIENT_SECRET, REFRESH_TOKEN])


def test_connecting_with_recall_down_reports_no_secret(recall_down, owner):
    exc = raised(lambda: connect_calendar_for(owner, "google_calendar", *CONNECT_ARGS))

    assert isinstance(exc, RecallError)
    assert_no_secret(*django_reports(exc), [API_KEY, CLIENT_SECRET, REFRESH_TOKEN])


def test_a_failed_local_save_while_connecting_reports_no_secret(planted, owner):
    def refuse(sender, instance, **kwargs):
        raise IntegrityError("simulated: the database refused the row")

    pre_save.connect(refuse, sender=Calendar, dispatch_uid="refuse-all-calendars")
    try:
        exc = raised(lambda: connect_calendar_for(owner, "google_calendar", *CONNECT_ARGS))
    finally:
        pre_save.disconnect(sender=Calendar, dispatch_uid="refuse-all-calendars")

    assert isinstance(exc, IntegrityError)
    assert planted.calendars == {}  # Recall's calendar was deleted again
    assert_no_secret(*django_reports(exc), [API_KEY, CLIENT_SECRET, REFRESH_TOKEN])


def provider_tokens(emulator) -> list[str]:
    """Every token the emulated providers issued, and those Recall holds."""
    tokens = emulator.oauth.issued_tokens()
    tokens |= {c["oauth_refresh_token"] for c in emulator.calendars.values()}
    assert tokens
    return sorted(tokens)


@pytest.fixture
def mailed_errors(settings) -> Iterator[Callable[[str], list]]:
    """Errors of a logger mailed to the site's admins by AdminEmailHandler, as in production."""
    settings.ADMINS = [("Admin", "admin@site.example")]
    handler = AdminEmailHandler(include_html=True)
    handler.setLevel(logging.ERROR)
    attached: list[logging.Logger] = []

    def watch(name: str) -> list:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        attached.append(logger)
        return mail.outbox

    yield watch
    for logger in attached:
        logger.removeHandler(handler)


def mailed_report(outbox) -> tuple[str, str]:
    [email] = outbox
    [(html, _)] = email.alternatives
    return html, email.body


@pytest.mark.parametrize(("backend", "platform"), PROVIDERS)
def test_a_connect_with_recall_down_is_logged_by_social_auth_without_secrets(
    planted, alice_client, mailed_errors, backend, platform
):
    """social-auth's middleware logs a 5xx failure with its whole traceback, social-auth's frames
    (which hold the provider's tokens and the client secret) included."""
    outbox = mailed_errors("social")
    planted.inject_fault("503", count=50, path="/api/v2/calendars/")

    oauth_connect(alice_client, planted, backend, "alice@work.example")

    html, text = mailed_report(outbox)
    assert "RecallUnavailable" in text
    assert_no_secret(html, text, [API_KEY, CLIENT_SECRET, *provider_tokens(planted)])


@pytest.mark.parametrize(("backend", "platform"), PROVIDERS)
def test_a_connect_failure_escaping_as_a_500_reports_no_secret(
    planted, settings, alice_client, backend, platform
):
    """A host without SocialAuthExceptionMiddleware (or with RAISE_EXCEPTIONS) answers the
    pipeline's exception with a 500, reported with every frame."""
    settings.SOCIAL_AUTH_RAISE_EXCEPTIONS = True
    planted.inject_fault("503", count=50, path="/api/v2/calendars/")

    exc = raised(lambda: oauth_connect(alice_client, planted, backend, "alice@work.example"))

    assert "try again in a few minutes" in str(exc)
    request = RequestFactory().get("/social/complete/")
    request.exception_reporter_filter = RecallExceptionReporterFilter()
    reporter = ExceptionReporter(request, type(exc), exc, exc.__traceback__)
    html, text = reporter.get_traceback_html(), reporter.get_traceback_text()
    assert_no_secret(html, text, [API_KEY, CLIENT_SECRET, *provider_tokens(planted)])


def test_social_auths_frames_do_show_secrets_with_djangos_filter_alone(
    planted, settings, alice_client
):
    """Why the README asks for RecallExceptionReporterFilter: without it, social-auth's own
    frames give the provider's access token away."""
    settings.SOCIAL_AUTH_RAISE_EXCEPTIONS = True
    planted.inject_fault("503", count=50, path="/api/v2/calendars/")

    exc = raised(lambda: oauth_connect(alice_client, planted, "google-oauth2", "a@work.example"))

    html, _ = django_reports(exc)
    assert CLIENT_SECRET in html
    assert REFRESH_TOKEN not in html


def test_an_unexpected_failure_in_a_reconnect_is_mailed_without_secrets(
    planted, alice_client, mailed_errors
):
    """A host's receiver failing during the reconnect's re-read: the step turns it into a message
    for the user and an error email for the admins, with every frame's secrets hidden."""
    outbox = mailed_errors("django_recall_calendar")
    planted.webhook_url = None  # the calendar stays "connecting" here until the reconnect
    oauth_connect(alice_client, planted, "google-oauth2", "alice@work.example")
    planted.connect_calendar(str(Calendar.objects.get().recall_id), email="alice@work.example")

    def broken_receiver(sender, calendar, **kwargs):
        raise ValueError("the host's receiver failed")

    signals.calendar_connected.connect(broken_receiver, dispatch_uid="broken")
    try:
        oauth_connect(alice_client, planted, "google-oauth2", "alice@work.example")
    finally:
        signals.calendar_connected.disconnect(dispatch_uid="broken")

    html, text = mailed_report(outbox)
    assert "the host's receiver failed" in text
    assert_no_secret(html, text, [API_KEY, CLIENT_SECRET, *provider_tokens(planted)])
