"""Helpers for the connect tests: run social-auth's real OAuth flow against the emulator."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib.messages import get_messages
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client
from django.urls import reverse

CALENDARS_URL = "/recall/calendars/"

#: (social-auth backend, Recall platform), the two providers every connect test runs for.
PROVIDERS = [("google-oauth2", "google_calendar"), ("microsoft-graph", "microsoft_outlook")]


def oauth_connect(client: Client, emulator, backend: str, email: str, *, allow: bool = True):
    """Connect as a user would: POST to social:begin, consent at the provider, come back.

    Returns the response of the calendars page the flow ends on (redirects followed).
    """
    begin = client.post(reverse("social:begin", args=[backend]), {"next": CALENDARS_URL})
    assert begin.status_code == 302, begin
    back = urlsplit(emulator.oauth_consent(begin["Location"], email=email, allow=allow))
    assert back.path == reverse("social:complete", args=[backend])
    return client.get(f"{back.path}?{back.query}", follow=True)


def messages_of(response) -> list[str]:
    """The texts of the messages shown on a page."""
    return [str(message) for message in get_messages(response.wsgi_request)]


class UnreachableMailServer(BaseEmailBackend):
    """An email backend whose server refuses every connection, as a down SMTP server does."""

    def send_messages(self, email_messages) -> int:
        raise ConnectionRefusedError("mail server unreachable")
