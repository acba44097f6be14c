"""schemathesis against the REST API's own OpenAPI document, as a signed-in user.

Every operation gets generated requests, valid and not; each answer must be no 5xx and a status,
content type and body the document declares (so the document lists every status the API answers:
400, 403, 404, 409, 429, 502...). Recall is the emulator; the number of examples is bounded.
"""

from __future__ import annotations

import base64

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import missing_required_header, positive_data_acceptance

from tests import builders

from .test_api_bots import hours_from_now
from .test_api_cost import connected_calendar

pytestmark = pytest.mark.django_db

SCHEMA_PATH = "/recall/api/schema/?format=json"


def basic_auth_document() -> dict:
    """The API's document as served, but for clients that sign in with HTTP Basic (DRF's default
    classes include it, and it needs no CSRF token): the session cookie scheme is left out, so
    schemathesis never generates a cookie of its own and takes Basic as the one way in."""
    document = Client().get(SCHEMA_PATH).json()
    document["components"]["securitySchemes"].pop("cookieAuth", None)
    for operations in document["paths"].values():
        for operation in operations.values():
            operation["security"] = [
                requirement
                for requirement in operation.get("security", [])
                if "cookieAuth" not in requirement
            ]
    return document


schema = schemathesis.openapi.from_dict(basic_auth_document())
schema.app = get_wsgi_application()


@pytest.fixture
def alices_meetings(alice, recall_emulator):
    """Alice's calendar and two upcoming meetings: some generated ids are hers."""
    calendar = connected_calendar(recall_emulator, alice)
    return builders.synced_events(recall_emulator, calendar, hours_from_now(2), hours_from_now(30))


@pytest.fixture(autouse=True)
def test_database_kept_open():
    """schemathesis calls the WSGI app itself, not through Django's test client, so each request's
    end would close the database connection that holds the test's transaction (PostgreSQL then
    answers every later request with a 500); the test client disconnects the same receivers."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# alice (tests/conftest.py) signs in with her password.
ALICE = {"Authorization": "Basic " + base64.b64encode(b"alice:pw").decode()}


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_answers_as_its_schema_says(case, alices_meetings):
    # Which of 401 and 403 a request without credentials gets depends on the host's first
    # authentication class (here the session's: 403); the document lists both.
    excluded = [missing_required_header]
    if case.operation.label == "GET /recall/api/events/":
        # calendar= must be one of alice's calendars, which no schema can say: another id is
        # valid by the document and answers 400 naming the parameter, as the README says.
        excluded.append(positive_data_acceptance)
    case.call_and_validate(headers=ALICE, excluded_checks=excluded)
