"""The example project's own pages: sign up, and meetings (upcoming, with a record switch each,
and recent ones with what their bot did).

"My calendars" (connect, reconnect, disconnect, policy) comes from the app; the record switch calls
the same function as the REST API's ``events/{id}/bot/``, so both behave alike.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from django_recall_calendar import bot_status, scheduling
from django_recall_calendar.exceptions import RecallError
from django_recall_calendar.models import CalendarEvent, RecordOverride

STATE_LABELS = {"scheduled": "Bot scheduled", "none": "No bot", "not_possible": "Not possible"}
RESULT_LABELS = {"recorded": "Recorded", "failed": "Failed", "in_progress": "In the meeting"}
#: How far back "Recent meetings" goes.
RECENT = timedelta(days=7)
SWITCH_MESSAGES = {
    RecordOverride.ALWAYS: "A bot will record “{event}”.",
    RecordOverride.NEVER: "No bot will record “{event}”.",
    RecordOverride.DEFAULT: "“{event}” follows your calendar's recording policy again.",
}


def home(request: HttpRequest) -> HttpResponse:
    return redirect("meetings" if request.user.is_authenticated else "login")


def signup(request: HttpRequest) -> HttpResponse:
    """A username and a password are all the demo asks; calendars are connected afterwards."""
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome! Connect a calendar to see your meetings.")
        return redirect("recall_calendar:calendars")
    return render(request, "registration/signup.html", {"form": form})


def _row(event: CalendarEvent) -> dict:
    """What the page shows of a meeting: its bot state or, once the bot reported, its outcome."""
    state, reason = scheduling.bot_state(event)
    label = STATE_LABELS.get(state, state)
    if event.bot_outcome is not None:
        state = event.bot_outcome.result
        label = RESULT_LABELS.get(state, state)
        reason = bot_status.describe(event.bot_outcome, with_time=True)
    return {
        "event": event,
        "state": state,
        "label": label,
        "reason": reason,
        "minutes": int(event.duration.total_seconds() // 60),
    }


@login_required
def meetings(request: HttpRequest) -> HttpResponse:
    """The user's upcoming meetings, soonest first, each with its bot state and a switch; then
    the last week's, latest first, with what their bot did. Times are in the viewer's zone."""
    mine = CalendarEvent.objects.for_user(request.user).select_related("calendar", "bot_outcome")
    events = scheduling.with_bot_records(mine.upcoming().order_by("start_time", "pk"))
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    now = timezone.now()
    recent = scheduling.with_bot_records(
        mine.filter(is_deleted=False, end_time__lte=now, end_time__gt=now - RECENT).order_by(
            "-start_time", "-pk"
        )
    )[:50]
    context = {
        "page": page,
        "rows": [_row(event) for event in page],
        "recent": [_row(event) for event in recent],
        "has_calendar": request.user.recall_calendars.exists(),
    }
    return render(request, "example/meetings.html", context)


@login_required
@require_POST
def meeting_record(request: HttpRequest, pk: int) -> HttpResponse:
    """The record / don't-record switch of one meeting (another user's meeting is a 404)."""
    event = get_object_or_404(CalendarEvent, pk=pk, calendar__user=request.user)
    override = request.POST.get("override", "")
    if override not in RecordOverride.values:
        messages.error(request, "Unknown choice.")
        return redirect("meetings")
    try:
        scheduling.set_record_override(event, override)
    except scheduling.SchedulingError as exc:
        messages.error(request, str(exc))
    except RecallError as exc:
        messages.error(request, f"Recall did not complete the request: {exc.message}")
    else:
        messages.success(request, SWITCH_MESSAGES[override].format(event=event.title or event))
    return redirect("meetings")
