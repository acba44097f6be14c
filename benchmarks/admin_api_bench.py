"""Admin events changelist and the events API at 100 and at 100,000 events.

The rows are bulk-created (a sync would write the same columns); each page is requested as a
logged-in user through Django's test client, its SQL queries counted and its median time taken.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_recall_calendar.models import Calendar, CalendarEvent

from .harness import median_time
from .table import print_goal, print_table

SIZES = (100, 100_000)
BATCH = 2_000
REPEAT = 5
PAGES = {
    "admin events changelist": "/admin/recall_calendar/calendarevent/",
    "API events list": "/recall/api/events/",
}


def add_events(calendar: Calendar, count: int, start_index: int) -> None:
    """``count`` upcoming events with a realistic Google payload, in batches."""
    now = timezone.now().replace(microsecond=0)
    for first in range(start_index, start_index + count, BATCH):
        rows = []
        for index in range(first, min(first + BATCH, start_index + count)):
            start = now + timedelta(minutes=30 * index)
            rows.append(
                CalendarEvent(
                    calendar=calendar,
                    recall_id=uuid.uuid4(),
                    start_time=start,
                    end_time=start + timedelta(minutes=30),
                    meeting_url=f"https://zoom.us/j/{1_000_000_000 + index}",
                    meeting_platform="zoom",
                    platform="google_calendar",
                    platform_id=f"evt{index}",
                    ical_uid=f"evt{index}@google.com",
                    raw={"summary": f"Meeting {index}", "status": "confirmed"},
                    title=f"Meeting {index}",
                    organizer_email="owner@example.com",
                    attendees=[{"email": "owner@example.com", "response": "accepted"}],
                    recall_updated_at=start,
                )
            )
        with transaction.atomic():
            CalendarEvent.objects.bulk_create(rows)


def measure(client: Client, url: str) -> tuple[int, float]:
    """(queries, median seconds) of one GET, which must answer 200."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(queries), median_time(lambda: client.get(url), REPEAT)


def run(database: str) -> None:
    user = get_user_model().objects.create_superuser("admin", "owner@example.com", "x")
    calendar = Calendar.objects.create(
        user=user,
        recall_id=uuid.uuid4(),
        platform="google_calendar",
        platform_email="owner@example.com",
        status="connected",
    )
    client = Client()
    client.force_login(user)
    results: dict[str, list[tuple[int, float]]] = {name: [] for name in PAGES}
    present = 0
    for size in SIZES:
        add_events(calendar, size - present, present)
        present = size
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        for name, url in PAGES.items():
            results[name].append(measure(client, url))

    rows = []
    for name, ((queries_small, time_small), (queries_big, time_big)) in results.items():
        rows.append([name, queries_small, queries_big, time_small * 1000, time_big * 1000])
    print_table(
        f"Admin and API pages at {SIZES[0]:,} and {SIZES[1]:,} events ({database})",
        [
            "page",
            f"queries @{SIZES[0]:,}",
            f"queries @{SIZES[1]:,}",
            f"ms @{SIZES[0]:,}",
            f"ms @{SIZES[1]:,}",
        ],
        rows,
    )
    growth = SIZES[1] // SIZES[0]
    for name, queries_small, queries_big, time_small, time_big in rows:
        ratio = time_big / time_small
        print_goal(
            f"{name} ({database})",
            f"same queries at {growth:,}x the rows, time growing far slower (< 10x)",
            queries_small == queries_big and ratio < 10,
            f"{queries_small} -> {queries_big} queries, time x{ratio:.1f}",
        )
