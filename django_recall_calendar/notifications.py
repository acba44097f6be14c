"""The email telling a user that Recall lost access to their calendar, with a link to reconnect it.

It is sent by the refresh that finds the calendar disconnected, usually in a background task (the
webhook that reported it), where no request exists; the link is built from ``SITE_URL``.
"""

from __future__ import annotations

import logging

from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from . import conf
from .models import Calendar

logger = logging.getLogger(__name__)

SUBJECT_TEMPLATE = "recall_calendar/email/disconnected_subject.txt"
BODY_TEMPLATE = "recall_calendar/email/disconnected_body.txt"


def calendars_url() -> str:
    """Absolute URL of the "my calendars" page when SITE_URL is set, else its path."""
    path = reverse("recall_calendar:calendars")
    site_url = conf.get("SITE_URL")
    if not site_url:
        logger.warning("RECALL_CALENDAR['SITE_URL'] is not set; emails link to %s only.", path)
        return path
    return str(site_url).rstrip("/") + path


def send_disconnected_email(calendar: Calendar, reason: str = "") -> bool:
    """Email the calendar's owner (account email, else the calendar's); False if none is known."""
    recipient = getattr(calendar.user, "email", "") or calendar.oauth_email
    if not recipient:
        logger.info("Calendar %s disconnected; its owner has no email address.", calendar.recall_id)
        return False
    context = {
        "calendar": calendar,
        "user": calendar.user,
        "reason": reason or calendar.disconnect_reason,
        "reconnect_url": calendars_url(),
    }
    subject = " ".join(render_to_string(SUBJECT_TEMPLATE, context).split())
    body = render_to_string(BODY_TEMPLATE, context)
    send_mail(subject, body, None, [recipient])
    return True


def notify_disconnected(calendar: Calendar, reason: str = "") -> None:
    """Tell the owner to reconnect, when ``NOTIFY_DISCONNECTED_BY_EMAIL`` is on; a mail failure is
    logged and never breaks the sync that found the disconnection."""
    if not conf.get("NOTIFY_DISCONNECTED_BY_EMAIL"):
        return
    try:
        send_disconnected_email(calendar, reason)
    except OSError:
        logger.exception("Could not email the owner of disconnected calendar %s.", calendar.pk)
