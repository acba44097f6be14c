"""Recording policies: which meetings get a bot, and a readable reason when one does not.

Order of precedence: a "never" override (the meeting's own, else its series'), then what makes a
bot impossible (deleted, cancelled, ended, no meeting link, a disconnected calendar), then an
"always" override, then the calendar's options (skip declined, minimum attendees) and its policy.
An override therefore wins over the policy both ways, but "always" cannot bring back a meeting
that has no bot to join.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from django.utils import timezone

from .event_fields import ACCEPTED, DECLINED
from .models import RecordingPolicy, RecordOverride
from .utils import email_domain

if TYPE_CHECKING:
    from .models import Calendar, CalendarEvent


#: A calendar's options its owner sets (the "my calendars" page, the REST API).
POLICY_OPTIONS = ("recording_policy", "skip_declined", "min_attendees")
#: Every calendar field :func:`should_record` reads: a change to any re-applies the policy at once.
#: Series overrides are a JSON map, edited by staff in the admin only.
POLICY_FIELDS = (*POLICY_OPTIONS, "series_overrides")


class Decision(NamedTuple):
    record: bool
    reason: str


def unrecordable_reason(event: CalendarEvent, now: datetime | None = None) -> str:
    """Why no bot can be sent to ``event`` at all ("" when one can)."""
    if event.is_deleted:
        return "deleted"
    if event.is_cancelled:
        return "cancelled"
    if event.end_time <= (now or timezone.now()):
        return "ended"
    if not event.meeting_url:
        return "no meeting link"
    return ""


def _people_count(event: CalendarEvent) -> int:
    """Distinct people in the meeting, the organizer included: Google lists the organizer among
    the attendees and Microsoft Graph does not, so counting attendees alone differs by provider."""
    emails = {
        str(attendee.get("email") or "").lower() or f"#{index}"
        for index, attendee in enumerate(event.attendees or [])
        if isinstance(attendee, dict)
    }
    if event.organizer_email:
        emails.add(event.organizer_email.lower())
    return len(emails)


def _owner_response(event: CalendarEvent, calendar: Calendar) -> str:
    """The calendar owner's own response to the invitation ("" when they are not listed)."""
    owner = (calendar.email or "").lower()
    for attendee in event.attendees or []:
        if not isinstance(attendee, dict):
            continue
        if owner and (attendee.get("email") or "").lower() == owner:
            return str(attendee.get("response") or "").lower()
    return ""


def _override(event: CalendarEvent, calendar: Calendar) -> tuple[str, str]:
    """The meeting's override, else its series' override, with where it came from."""
    if event.record_override in (RecordOverride.ALWAYS, RecordOverride.NEVER):
        return event.record_override, "meeting override"
    series = (calendar.series_overrides or {}).get(event.recurring_event_id or "")
    if event.recurring_event_id and series in (RecordOverride.ALWAYS, RecordOverride.NEVER):
        return series, "series override"
    return "", ""


def _policy_decision(event: CalendarEvent, calendar: Calendar) -> Decision:
    policy = calendar.recording_policy
    if policy == RecordingPolicy.ALL:
        return Decision(True, "policy: all meetings with a link")
    if policy == RecordingPolicy.ORGANIZER:
        if event.is_organizer:
            return Decision(True, "policy: organized by the calendar's owner")
        return Decision(False, "policy: not organized by the calendar's owner")
    if policy == RecordingPolicy.EXTERNAL:
        own = email_domain(calendar.email)
        if not own:
            return Decision(False, "policy: the calendar's email domain is not known yet")
        emails = [a.get("email") for a in event.attendees or [] if isinstance(a, dict)]
        if any(email_domain(e) not in ("", own) for e in [*emails, event.organizer_email]):
            return Decision(True, "policy: an attendee is outside the calendar's domain")
        return Decision(False, "policy: no attendee outside the calendar's domain")
    if policy == RecordingPolicy.ACCEPTED:
        if event.is_organizer or _owner_response(event, calendar) == ACCEPTED:
            return Decision(True, "policy: accepted by the calendar's owner")
        return Decision(False, "policy: not accepted by the calendar's owner")
    return Decision(False, "policy: recording is off")


def should_record(
    event: CalendarEvent, calendar: Calendar | None = None, *, now: datetime | None = None
) -> Decision:
    """Whether ``event`` should have a bot, and why (or why not)."""
    calendar = calendar or event.calendar
    override, source = _override(event, calendar)
    if override == RecordOverride.NEVER:
        return Decision(False, f"never record ({source})")
    impossible = unrecordable_reason(event, now)
    if impossible:
        return Decision(False, impossible)
    if calendar.is_disconnected:
        return Decision(False, "the calendar is disconnected")
    if override == RecordOverride.ALWAYS:
        return Decision(True, f"always record ({source})")
    if calendar.skip_declined and _owner_response(event, calendar) == DECLINED:
        return Decision(False, "declined by the calendar's owner")
    attendee_count = _people_count(event)
    if calendar.min_attendees and attendee_count < calendar.min_attendees:
        return Decision(
            False, f"{attendee_count} attendees, fewer than the minimum {calendar.min_attendees}"
        )
    return _policy_decision(event, calendar)
