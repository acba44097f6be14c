"""Recording policies: which meetings get a bot, and a readable reason when one does not.

Order of precedence: a "never" override (the meeting's own, else its series'), then what makes a
bot impossible (deleted, cancelled, ended, no meeting link, a disconnected calendar), then privacy
(a private or confidential event is recorded only with that meeting's own "always" override, never
by a series override or a policy), then an "always" override, then what is not a meeting (focus
time, out of office, working location, all-day events), then the calendar's options (skip declined,
title keywords, minimum attendees) and its policy. An override therefore wins over the policy both
ways, but "always" cannot bring back a meeting that has no bot to join.

Each decision names the rule that made it (:class:`Rule`), which the admin and the REST API show
for every skipped meeting.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .event_fields import ACCEPTED, DECLINED
from .models import EventKind, RecordingPolicy, RecordOverride, Sensitivity
from .utils import email_domain

if TYPE_CHECKING:
    from .models import Calendar, CalendarEvent


#: A calendar's options its owner sets (the "my calendars" page, the REST API).
POLICY_OPTIONS = ("recording_policy", "skip_declined", "min_attendees", "skip_title_keywords")
#: Every calendar field :func:`should_record` reads: a change to any re-applies the policy at once.
#: Series overrides are a JSON map, edited by staff in the admin only.
POLICY_FIELDS = (*POLICY_OPTIONS, "series_overrides")


class Rule(models.TextChoices):
    """The rule behind a decision: for a skipped meeting, the one that skipped it."""

    OVERRIDE = "override", _("The meeting's or its series' override")
    DELETED = "deleted", _("Deleted")
    CANCELLED = "cancelled", _("Cancelled")
    ENDED = "ended", _("Ended")
    NO_MEETING_LINK = "no_meeting_link", _("No meeting link")
    DISCONNECTED = "disconnected", _("The calendar is disconnected")
    PRIVATE = "private", _("Private or confidential")
    NOT_A_MEETING = "not_a_meeting", _("Not a meeting (focus time, out of office, all day…)")
    DECLINED = "declined", _("Declined by the calendar's owner")
    TITLE_KEYWORD = "title_keyword", _("A title keyword to skip")
    MIN_ATTENDEES = "min_attendees", _("Fewer attendees than the minimum")
    POLICY = "policy", _("The calendar's recording policy")


class Decision(NamedTuple):
    record: bool
    reason: str
    rule: str = ""


def _impossible(event: CalendarEvent, now: datetime | None) -> Decision | None:
    """The decision "no bot can be sent to ``event`` at all", or None when one can."""
    if event.is_deleted:
        return Decision(False, "deleted", Rule.DELETED)
    if event.is_cancelled:
        return Decision(False, "cancelled", Rule.CANCELLED)
    if event.end_time <= (now or timezone.now()):
        return Decision(False, "ended", Rule.ENDED)
    if not event.meeting_url:
        return Decision(False, "no meeting link", Rule.NO_MEETING_LINK)
    return None


def unrecordable_reason(event: CalendarEvent, now: datetime | None = None) -> str:
    """Why no bot can be sent to ``event`` at all ("" when one can)."""
    decision = _impossible(event, now)
    return decision.reason if decision else ""


def _not_a_meeting(event: CalendarEvent) -> str:
    """Why ``event`` is a block of time rather than a meeting ("" for a meeting)."""
    if event.kind and event.kind != EventKind.MEETING:
        return str(EventKind(event.kind).label).lower()
    if event.is_all_day:
        return "all-day event"
    return ""


#: Bounds of a calendar's title keywords: every sync reads them for each meeting.
MAX_KEYWORDS = 50
MAX_KEYWORD_LENGTH = 100


def clean_keywords(words: list[object]) -> list[str]:
    """Stripped, non-empty, distinct (case ignored) keywords; ValueError names a broken bound."""
    kept: list[str] = []
    seen: set[str] = set()
    for word in words:
        text = str(word).strip()
        if text and text.casefold() not in seen:
            kept.append(text)
            seen.add(text.casefold())
    if len(kept) > MAX_KEYWORDS:
        raise ValueError(f"At most {MAX_KEYWORDS} keywords.")
    if any(len(word) > MAX_KEYWORD_LENGTH for word in kept):
        raise ValueError(f"A keyword has at most {MAX_KEYWORD_LENGTH} characters.")
    return kept


def title_keyword(title: str, keywords: object) -> str:
    """The first of ``keywords`` found in ``title`` as a whole word or phrase, case ignored
    ("" when none is). Tolerates a malformed list: a keyword that is not text is skipped."""
    if not title or not isinstance(keywords, list | tuple):
        return ""
    folded = title.casefold()
    for keyword in keywords:
        word = keyword.strip().casefold() if isinstance(keyword, str) else ""
        if word and re.search(rf"(?<!\w){re.escape(word)}(?!\w)", folded):
            return keyword.strip()
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


def _options_decision(event: CalendarEvent, calendar: Calendar) -> Decision | None:
    """What the calendar's options (declined, title keywords, minimum attendees) skip, if any."""
    if calendar.skip_declined and _owner_response(event, calendar) == DECLINED:
        return Decision(False, "declined by the calendar's owner", Rule.DECLINED)
    keyword = title_keyword(event.title, calendar.skip_title_keywords)
    if keyword:
        return Decision(False, f"the title contains “{keyword}”", Rule.TITLE_KEYWORD)
    attendee_count = _people_count(event)
    if calendar.min_attendees and attendee_count < calendar.min_attendees:
        return Decision(
            False,
            f"{attendee_count} attendees, fewer than the minimum {calendar.min_attendees}",
            Rule.MIN_ATTENDEES,
        )
    return None


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
        return Decision(True, "policy: all meetings with a link", Rule.POLICY)
    if policy == RecordingPolicy.ORGANIZER:
        if event.is_organizer:
            return Decision(True, "policy: organized by the calendar's owner", Rule.POLICY)
        return Decision(False, "policy: not organized by the calendar's owner", Rule.POLICY)
    if policy == RecordingPolicy.EXTERNAL:
        own = email_domain(calendar.email)
        if not own:
            return Decision(
                False, "policy: the calendar's email domain is not known yet", Rule.POLICY
            )
        emails = [a.get("email") for a in event.attendees or [] if isinstance(a, dict)]
        if any(email_domain(e) not in ("", own) for e in [*emails, event.organizer_email]):
            return Decision(
                True, "policy: an attendee is outside the calendar's domain", Rule.POLICY
            )
        return Decision(False, "policy: no attendee outside the calendar's domain", Rule.POLICY)
    if policy == RecordingPolicy.ACCEPTED:
        if event.is_organizer or _owner_response(event, calendar) == ACCEPTED:
            return Decision(True, "policy: accepted by the calendar's owner", Rule.POLICY)
        return Decision(False, "policy: not accepted by the calendar's owner", Rule.POLICY)
    return Decision(False, "policy: recording is off", Rule.POLICY)


def should_record(
    event: CalendarEvent, calendar: Calendar | None = None, *, now: datetime | None = None
) -> Decision:
    """Whether ``event`` should have a bot, and why (or why not)."""
    calendar = calendar or event.calendar
    override, source = _override(event, calendar)
    if override == RecordOverride.NEVER:
        return Decision(False, f"never record ({source})", Rule.OVERRIDE)
    impossible = _impossible(event, now)
    if impossible:
        return impossible
    if calendar.is_disconnected:
        return Decision(False, "the calendar is disconnected", Rule.DISCONNECTED)
    if event.sensitivity and event.sensitivity != Sensitivity.NORMAL:
        if event.record_override == RecordOverride.ALWAYS:
            reason = f"{event.sensitivity} event, always record (meeting override)"
            return Decision(True, reason, Rule.OVERRIDE)
        return Decision(False, f"{event.sensitivity} event", Rule.PRIVATE)
    if override == RecordOverride.ALWAYS:
        return Decision(True, f"always record ({source})", Rule.OVERRIDE)
    not_a_meeting = _not_a_meeting(event)
    if not_a_meeting:
        return Decision(False, f"not a meeting: {not_a_meeting}", Rule.NOT_A_MEETING)
    return _options_decision(event, calendar) or _policy_decision(event, calendar)


def skip_rule(event: CalendarEvent, calendar: Calendar | None = None) -> Decision:
    """The decision :func:`should_record` made, or would have made, just before ``event`` began:
    for a meeting that has ended, which rule kept (or would have kept) a bot away."""
    return should_record(event, calendar, now=event.start_time - timedelta(seconds=1))
