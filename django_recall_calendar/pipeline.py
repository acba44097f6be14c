"""The social-auth pipeline steps that connect a calendar for the signed-in user.

Place ``require_logged_in_user`` before ``social_core.pipeline.social_auth.social_user`` (connecting
is never a way to sign up or sign in) and ``connect_calendar`` right after
``social_core.pipeline.social_auth.load_extra_data``. Failures raise ``AuthException`` subclasses
whose text is written for the end user: social-auth's exception middleware shows it as a message.

The OAuth tokens are dropped as soon as Recall has the refresh token, on every path, and every
function here that holds one is ``sensitive_variables``, so no error report shows them.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables
from social_core.exceptions import (
    AuthCredentialError,
    AuthException,
    AuthPolicyError,
    AuthProviderError,
)

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


class LoginRequired(CalendarConnectError, AuthPolicyError):
    """Nobody was signed in: a consent must not create a user, nor log into a linked one."""

    default_code = "authentication_disallowed"


#: What social-auth stores from the token response that is a credential: Recall holds the refresh
#: token, and nothing of this app uses the others.
TOKEN_KEYS = ("refresh_token", "access_token", "id_token")


def require_logged_in_user(backend, user=None, *args, **kwargs):
    """Refuse a calendar consent completed by nobody signed in, before any user is made.

    Placed before ``social_user``: that step would log the visitor into whichever user the
    provider account is linked to, and ``create_user`` would sign a stranger up. Backends not in
    ``PLATFORMS`` (a "Sign in with GitHub") are left to the host's own login flow.
    """
    if conf.platform_for_backend(backend.name) is None:
        return None
    if user is None or not getattr(user, "is_authenticated", False):
        raise LoginRequired(
            backend,
            _("Please sign in first, then connect your calendar from your account's page."),
        )
    return None


def account_email(response: dict[str, Any], details: dict[str, Any] | None = None) -> str:
    """The OAuth account's address: Google's ``email``, Microsoft's ``mail`` or its UPN."""
    for key in ("email", "mail", "userPrincipalName"):
        value = response.get(key)
        if isinstance(value, str) and "@" in value:
            return value
    return str((details or {}).get("email") or "")


@sensitive_variables()
def refresh_token_from(response: dict[str, Any], social=None) -> str:
    """The token response's refresh token, else the one social-auth stored earlier."""
    token = response.get("refresh_token")
    if not token and social is not None and isinstance(social.extra_data, dict):
        token = social.extra_data.get("refresh_token")
    return str(token or "")


def forget_tokens(social, response: dict[str, Any]) -> None:
    """Drop every copy of the OAuth tokens this run can reach: social-auth's stored ones (readable
    in its admin) and those in the token response, which social-auth's own frames still hold (an
    error report of a later failure would show them). Steps after this one get no token."""
    for key in TOKEN_KEYS:
        response.pop(key, None)
    extra = getattr(social, "extra_data", None)
    if not isinstance(extra, dict):
        return
    dropped = [extra.pop(key) for key in TOKEN_KEYS if key in extra]
    if dropped and social.pk is not None:
        social.save(update_fields=["extra_data"])


@sensitive_variables()
def connect_calendar(backend, user=None, response=None, social=None, *args, **kwargs):
    """Create (or, for an account already connected, repair) the user's calendar at Recall.

    On failure a social-auth association made by this same run is removed again, so a failed
    connection leaves nothing half-made behind; on every path the tokens are dropped.
    """
    platform = conf.platform_for_backend(backend.name)
    if platform is None or user is None:
        return None
    response = response if response is not None else {}
    try:
        calendar, created = _connect(backend, platform, user, response, social, kwargs)
    except CalendarConnectError:
        if social is not None and kwargs.get("new_association"):
            social.delete()
        raise
    finally:
        forget_tokens(social, response)
    logger.info(
        "%s calendar %s for user %s.",
        "Connected" if created else "Reconnected",
        calendar.recall_id,
        user.pk,
    )
    return {"recall_calendar": calendar}


@sensitive_variables()
def _connect(backend, platform: str, user, response: dict[str, Any], social, kwargs: dict):
    """Hand the token to Recall, translating every failure into a message for the user.

    Any failure, not only Recall's, becomes a :class:`RecallUnavailable` (logged here with its
    traceback): an exception escaping the pipeline would be reported with social-auth's own
    frames, which hold the user's tokens and which no decorator of ours can cleanse.
    """
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
    except Exception as exc:
        if isinstance(exc, DatabaseError):
            logger.warning("Connecting a calendar for user %s failed: %s", user.pk, exc)
        else:  # a bug, or a host's receiver failing: staff get the traceback (secrets hidden)
            logger.exception("Connecting a calendar for user %s failed.", user.pk)
        raise RecallUnavailable(
            backend,
            _not_connected(_("Nothing was saved; please try again in a few minutes.")),
        ) from exc


def _not_connected(reason: str) -> str:
    return _("Your calendar could not be connected. %(reason)s") % {"reason": reason}
