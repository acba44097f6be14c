"""The social-auth pipeline step that hands a freshly granted refresh token to Recall.

Place ``django_recall_calendar.pipeline.connect_calendar`` right after
``social_core.pipeline.social_auth.load_extra_data``. Failures raise ``AuthException`` subclasses
whose text is written for the end user: social-auth's exception middleware shows it as a message.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.utils.translation import gettext as _
from social_core.exceptions import AuthCredentialError, AuthException, AuthProviderError

from . import conf
from .calendars import connect_calendar_for
from .exceptions import MISCONFIGURED, RecallError, RecallInvalidRequestError

logger = logging.getLogger(__name__)


class CalendarConnectError(AuthException):
    """A calendar could not be connected; ``str()`` is the message shown to the user."""

    default_code = "unknown_error"

    def __init__(self, backend, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("stage", "pipeline")
        super().__init__(backend, **kwargs)
        self.user_message = message

    def __str__(self) -> str:
        return self.user_message


class MissingRefreshToken(CalendarConnectError, AuthCredentialError):
    """The provider gave no refresh token: without one Recall cannot read the calendar."""

    default_code = "reauthentication_required"


class RecallUnavailable(CalendarConnectError, AuthProviderError):
    """Recall failed or refused the calendar; nothing was kept locally."""

    default_code = "unavailable"


def account_email(response: dict[str, Any], details: dict[str, Any] | None = None) -> str:
    """The OAuth account's address: Google's ``email``, Microsoft's ``mail`` or its UPN."""
    for key in ("email", "mail", "userPrincipalName"):
        value = response.get(key)
        if isinstance(value, str) and "@" in value:
            return value
    return str((details or {}).get("email") or "")


def refresh_token_from(response: dict[str, Any], social=None) -> str:
    """The token response's refresh token, else the one social-auth stored earlier."""
    token = response.get("refresh_token")
    if not token and social is not None and isinstance(social.extra_data, dict):
        token = social.extra_data.get("refresh_token")
    return str(token or "")


def forget_refresh_token(social) -> None:
    """Drop social-auth's copy of the refresh token: Recall holds it, a second copy is a risk."""
    extra = getattr(social, "extra_data", None)
    if isinstance(extra, dict) and extra.pop("refresh_token", None) is not None:
        social.save(update_fields=["extra_data"])


def connect_calendar(backend, user=None, response=None, social=None, *args, **kwargs):
    """Create (or, for an account already connected, repair) the user's calendar at Recall.

    On failure a social-auth association made by this same run is removed again, so a failed
    connection leaves nothing half-made behind.
    """
    platform = conf.platform_for_backend(backend.name)
    if platform is None or user is None:
        return None
    try:
        calendar, created = _connect(backend, platform, user, response or {}, social, kwargs)
    except CalendarConnectError:
        if social is not None and kwargs.get("new_association"):
            social.delete()
        raise
    forget_refresh_token(social)
    logger.info(
        "%s calendar %s for user %s.",
        "Connected" if created else "Reconnected",
        calendar.recall_id,
        user.pk,
    )
    return {"recall_calendar": calendar}


def _connect(backend, platform: str, user, response: dict[str, Any], social, kwargs: dict):
    """Hand the token to Recall, translating every failure into a message for the user."""
    refresh_token = refresh_token_from(response, social)
    if not refresh_token:
        raise MissingRefreshToken(
            backend,
            _(
                "Your calendar was not connected: the provider did not grant offline access. "
                "Please connect again and allow offline access (keep every permission ticked)."
            ),
        )
    client_id, client_secret = backend.get_key_and_secret()
    email = account_email(response, kwargs.get("details"))
    try:
        return connect_calendar_for(
            user, platform, refresh_token, client_id, client_secret, email, social
        )
    except RecallInvalidRequestError as exc:
        logger.warning("Recall refused a calendar for user %s: %s", user.pk, exc)
        raise RecallUnavailable(
            backend,
            _("Your calendar could not be connected: %(reason)s Please try connecting again.")
            % {"reason": exc.message},
            status_code=exc.status_code,
        ) from exc
    except RecallError as exc:
        exc.log(logger, f"Connecting a calendar for user {user.pk}")
        raise RecallUnavailable(backend, _not_connected(exc.for_user())) from exc
    except ImproperlyConfigured as exc:  # e.g. no API key yet: the site's staff must set it
        logger.error("Connecting a calendar for user %s failed: %s", user.pk, exc)
        raise RecallUnavailable(backend, _not_connected(_(MISCONFIGURED))) from exc
    except DatabaseError as exc:
        logger.warning("Connecting a calendar for user %s failed: %s", user.pk, exc)
        raise RecallUnavailable(
            backend,
            _not_connected(_("Nothing was saved; please try again in a few minutes.")),
        ) from exc


def _not_connected(reason: str) -> str:
    return _("Your calendar could not be connected. %(reason)s") % {"reason": reason}
