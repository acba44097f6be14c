"""What the webhook benchmark's HTTP servers (waitress, gunicorn) serve, in their own processes.

``/raw-insert/`` is the floor: a WSGI callable with no framework that stores the request body as
one row of the deliveries table with one autocommit INSERT, on a connection of its own per thread
(psycopg or sqlite3). ``/door/recall/webhooks/`` is the app's WSGI door (``WebhookReceiver``) in
front of the Django project, on a path of its own so ``/recall/webhooks/`` is still the Django
view. Every other path goes through the door (a method and path compared) to the Django project in
``benchmarks.settings``, on the scratch database the parent created (``BENCH_DATABASE_NAME``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

from django.conf import settings
from django.core.wsgi import get_wsgi_application

django_application = get_wsgi_application()

from django_recall_calendar.models import WebhookDelivery  # noqa: E402
from django_recall_calendar.wsgi import WebhookReceiver  # noqa: E402

RAW_PATH = "/raw-insert/"
DOOR_PATH = "/door/recall/webhooks/"
FLOOR_EVENT_TYPE = "bench.floor"
#: The rows of the Django view doing the floor's INSERT (``benchmarks.urls.django_insert``).
DJANGO_INSERT_EVENT_TYPE = "bench.django-insert"
_SQL = (
    f'INSERT INTO "{WebhookDelivery._meta.db_table}" '
    '("message_id", "event_type", "payload", "calendar_recall_id", "status", "attempts", '
    "\"last_error\", \"received_at\") VALUES ({0}, {0}, {1}, '', 'ignored', 0, '', {2})"
)
_local = threading.local()
logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" on every burst


def _connect() -> tuple[Any, str]:
    """A new autocommit connection to the scratch database and the INSERT in its dialect."""
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("postgresql"):
        import psycopg

        connection = psycopg.connect(
            host=database["HOST"],
            port=database["PORT"],
            user=database["USER"],
            dbname=database["NAME"],
            autocommit=True,
        )
        return connection, floor_insert("postgresql", "%s")
    connection = sqlite3.connect(database["NAME"], isolation_level=None, check_same_thread=False)
    return connection, floor_insert("sqlite", "?")


def floor_insert(vendor: str, placeholder: str) -> str:
    """The floor's INSERT for ``vendor``'s dialect, with ``placeholder`` for its parameters."""
    if vendor == "postgresql":
        return _SQL.format(placeholder, f"{placeholder}::jsonb", "now()")
    return _SQL.format(placeholder, placeholder, "strftime('%Y-%m-%d %H:%M:%f', 'now')")


def raw_insert(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """The floor: read the body, INSERT it (autocommit), answer 200."""
    if not hasattr(_local, "connection"):
        _local.connection, _local.sql = _connect()
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length).decode()
    message_id = environ.get("HTTP_WEBHOOK_ID") or environ.get("HTTP_SVIX_ID")
    _local.connection.execute(_local.sql, (message_id, FLOOR_EVENT_TYPE, body))
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]


#: The Django project behind the app's WSGI door, as a host would serve it.
door_application = WebhookReceiver(django_application, path=DOOR_PATH)


def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == RAW_PATH:
        return raw_insert(environ, start_response)
    return door_application(environ, start_response)
