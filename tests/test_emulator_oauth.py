"""The emulator's Google-like and Microsoft-like OAuth providers, and the backends that use them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.urls import reverse

from django_recall_calendar.testing.backends import EmulatedGoogleOAuth2, EmulatedMicrosoftOAuth2

REDIRECT = "https://app.example.com/social/complete/google-oauth2/"


def authorize_url(emulator, provider: str, **params: str) -> str:
    query = {"client_id": "cid", "redirect_uri": REDIRECT, "response_type": "code", "state": "s1"}
    return f"{emulator.base_url}/oauth/{provider}/authorize?{urlencode({**query, **params})}"


def code_from(location: str) -> str:
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def exchange(emulator, provider: str, code: str, redirect_uri: str = REDIRECT):
    return requests.post(
        f"{emulator.base_url}/oauth/{provider}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": "cid",
            "client_secret": "secret",
        },
        timeout=5,
    )


def test_consent_page_offers_allow_deny_and_an_editable_email(recall_emulator):
    recall_emulator.oauth_next_email = "preset@example.com"

    page = requests.get(authorize_url(recall_emulator, "google", scope="email calendar"), timeout=5)

    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'value="allow"' in page.text and 'value="deny"' in page.text
    assert 'name="email" value="preset@example.com"' in page.text
    assert 'name="state" value="s1"' in page.text
    assert "email calendar" in page.text


def test_consent_page_needs_a_client_and_a_redirect(recall_emulator):
    page = requests.get(f"{recall_emulator.base_url}/oauth/google/authorize", timeout=5)

    assert page.status_code == 400


def test_allow_redirects_with_a_code_and_deny_with_access_denied(recall_emulator):
    allowed = recall_emulator.oauth_consent(authorize_url(recall_emulator, "google"))
    denied = recall_emulator.oauth_consent(authorize_url(recall_emulator, "google"), allow=False)

    assert allowed.startswith(REDIRECT + "?") and code_from(allowed)
    assert parse_qs(urlsplit(denied).query) == {"error": ["access_denied"], "state": ["s1"]}


@pytest.mark.parametrize(
    ("provider", "params", "refresh"),
    [
        ("google", {"access_type": "offline", "scope": "email"}, True),
        ("google", {"scope": "email"}, False),
        ("microsoft", {"scope": "offline_access User.Read Calendars.Read"}, True),
        ("microsoft", {"scope": "User.Read Calendars.Read"}, False),
    ],
    ids=["google-offline", "google-online", "microsoft-offline", "microsoft-online"],
)
def test_refresh_tokens_follow_each_providers_rule(recall_emulator, provider, params, refresh):
    location = recall_emulator.oauth_consent(authorize_url(recall_emulator, provider, **params))

    answer = exchange(recall_emulator, provider, code_from(location))

    assert answer.status_code == 200
    body = answer.json()
    assert body["access_token"] and body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["scope"] == params["scope"]
    assert ("refresh_token" in body) is refresh


def test_codes_are_single_use_and_bound_to_the_redirect(recall_emulator):
    code = code_from(recall_emulator.oauth_consent(authorize_url(recall_emulator, "google")))
    other = code_from(recall_emulator.oauth_consent(authorize_url(recall_emulator, "google")))

    assert exchange(recall_emulator, "google", code).status_code == 200
    reused = exchange(recall_emulator, "google", code)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    mismatch = exchange(recall_emulator, "google", other, redirect_uri="https://evil.example/")
    assert mismatch.json()["error"] == "redirect_uri_mismatch"
    assert exchange(recall_emulator, "microsoft", "nonsense").status_code == 400


def test_refresh_grant_and_revocation(recall_emulator):
    url = authorize_url(recall_emulator, "google", access_type="offline")
    tokens = exchange(recall_emulator, "google", code_from(recall_emulator.oauth_consent(url)))
    refresh_token = tokens.json()["refresh_token"]
    token_url = f"{recall_emulator.base_url}/oauth/google/token"

    renewed = requests.post(
        token_url, data={"grant_type": "refresh_token", "refresh_token": refresh_token}, timeout=5
    )
    assert renewed.status_code == 200 and "refresh_token" not in renewed.json()

    revoked = requests.get(
        f"{recall_emulator.base_url}/oauth/google/revoke",
        params={"token": refresh_token},
        timeout=5,
    )
    assert revoked.status_code == 200
    again = requests.post(
        token_url, data={"grant_type": "refresh_token", "refresh_token": refresh_token}, timeout=5
    )
    assert again.json()["error"] == "invalid_grant"
    odd = requests.post(token_url, data={"grant_type": "password"}, timeout=5)
    assert odd.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    ("provider", "path", "expected"),
    [
        (
            "google",
            "/oauth/google/userinfo",
            {
                "email": "ada.lovelace@example.com",
                "email_verified": True,
                "name": "Ada Lovelace",
                "given_name": "Ada",
                "family_name": "Lovelace",
            },
        ),
        (
            "microsoft",
            "/oauth/microsoft/v1.0/me",
            {
                "mail": "ada.lovelace@example.com",
                "userPrincipalName": "ada.lovelace@example.com",
                "displayName": "Ada Lovelace",
                "givenName": "Ada",
                "surname": "Lovelace",
            },
        ),
    ],
)
def test_user_info_for_the_consenting_account(recall_emulator, provider, path, expected):
    location = recall_emulator.oauth_consent(
        authorize_url(recall_emulator, provider), email="ada.lovelace@example.com"
    )
    token = exchange(recall_emulator, provider, code_from(location)).json()["access_token"]

    info = requests.get(
        recall_emulator.base_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=5
    ).json()

    assert expected.items() <= info.items()
    assert info.get("sub") or info.get("id")
    refused = requests.get(
        recall_emulator.base_url + path, headers={"Authorization": "Bearer nope"}, timeout=5
    )
    assert refused.status_code == 401


def test_the_same_account_keeps_its_id(recall_emulator):
    def sub() -> str:
        location = recall_emulator.oauth_consent(
            authorize_url(recall_emulator, "google"), email="same@example.com"
        )
        token = exchange(recall_emulator, "google", code_from(location)).json()["access_token"]
        return requests.get(
            f"{recall_emulator.base_url}/oauth/google/userinfo",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        ).json()["sub"]

    assert sub() == sub()


def test_backends_keep_their_names_and_point_at_the_emulator(recall_emulator):
    assert EmulatedGoogleOAuth2.name == "google-oauth2"
    assert EmulatedMicrosoftOAuth2.name == "microsoft-graph"
    google = EmulatedGoogleOAuth2()
    microsoft = EmulatedMicrosoftOAuth2()

    assert google.authorization_url() == f"{recall_emulator.base_url}/oauth/google/authorize"
    assert google.access_token_url() == f"{recall_emulator.base_url}/oauth/google/token"
    assert microsoft.authorization_url() == f"{recall_emulator.base_url}/oauth/microsoft/authorize"
    assert microsoft.access_token_url() == f"{recall_emulator.base_url}/oauth/microsoft/token"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("backend", "offline_param"),
    [("google-oauth2", "access_type"), ("microsoft-graph", "scope")],
)
def test_social_auth_runs_end_to_end_against_the_emulator(
    recall_emulator, client, settings, django_user_model, backend, offline_param
):
    """social-auth's real views: begin, consent at the emulator, complete (token + user info)."""
    settings.SOCIAL_AUTH_PIPELINE = [
        step for step in settings.SOCIAL_AUTH_PIPELINE if "django_recall_calendar" not in step
    ]
    begin = client.post(reverse("social:begin", args=[backend]))
    assert begin.status_code == 302
    assert begin["Location"].startswith(recall_emulator.base_url + "/oauth/")
    assert offline_param in parse_qs(urlsplit(begin["Location"]).query)

    back = recall_emulator.oauth_consent(begin["Location"], email="grace.hopper@example.com")
    done = client.get(back.replace("http://testserver", ""))

    assert done.status_code == 302, done.content[:500]
    user = django_user_model.objects.get()
    assert user.email == "grace.hopper@example.com"
    social = user.social_auth.get()
    assert social.provider == backend
    assert social.extra_data["refresh_token"]
