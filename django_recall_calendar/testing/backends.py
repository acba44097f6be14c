"""social-auth backends that talk to the emulator's OAuth providers instead of Google and Microsoft.

Same ``name`` as the real backends, so settings (``SOCIAL_AUTH_GOOGLE_OAUTH2_KEY``...), the
pipeline and the ``PLATFORMS`` map work unchanged. The emulator serves OAuth on the port of its
Recall API, so URLs come from ``conf.base_url()`` at call time (the ``recall_emulator`` fixture
sets it).
"""

from __future__ import annotations

from typing import Any

from social_core.backends.google import GoogleOAuth2
from social_core.backends.microsoft import MicrosoftOAuth2

from django_recall_calendar import conf


def _url(path: str) -> str:
    return f"{conf.base_url()}/oauth/{path}"


class EmulatedGoogleOAuth2(GoogleOAuth2):
    """Google's OAuth 2 flow against ``/oauth/google/``."""

    def authorization_url(self) -> str:
        return _url("google/authorize")

    def access_token_url(self) -> str:
        return _url("google/token")

    def revoke_token_url(self, token: Any, uid: Any) -> str:
        return _url("google/revoke")

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        response = self.get_json(
            _url("google/userinfo"), headers={"Authorization": f"Bearer {access_token}"}
        )
        self.validate_email_verified(response)
        return response


class EmulatedMicrosoftOAuth2(MicrosoftOAuth2):
    """Microsoft's OAuth 2 flow against ``/oauth/microsoft/`` (Graph's ``/me`` included)."""

    def authorization_url(self) -> str:
        return _url("microsoft/authorize")

    def access_token_url(self) -> str:
        return _url("microsoft/token")

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        return self.get_json(
            _url("microsoft/v1.0/me"),
            headers={"Accept": "application/json", "Authorization": f"Bearer {access_token}"},
        )
