"""Google-like and Microsoft-like OAuth 2 providers, so social-auth's real flow runs offline.

Each provider has a consent page (Allow / Deny, with the account's email editable so a demo can
connect several accounts), a token endpoint and a user-info endpoint. Refresh tokens follow the real
rules: Google issues one only for ``access_type=offline``, Microsoft only for the scope
``offline_access``.
"""

from __future__ import annotations

import html
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from .server import Request, Response, Router

DEFAULT_EMAIL = "alice@example.com"


@dataclass(frozen=True)
class Provider:
    """What differs between the two providers."""

    slug: str
    title: str
    userinfo_path: str

    def wants_refresh_token(self, params: dict[str, str]) -> bool:
        if self.slug == "google":
            return params.get("access_type") == "offline"
        return "offline_access" in params.get("scope", "").split()

    def user_info(self, email: str, account_id: str) -> dict[str, Any]:
        local = email.split("@")[0]
        given, _, family = local.replace("_", ".").partition(".")
        given, family = given.title(), family.replace(".", " ").title() or "User"
        name = f"{given} {family}"
        if self.slug == "google":
            return {
                "sub": account_id,
                "email": email,
                "email_verified": True,
                "name": name,
                "given_name": given,
                "family_name": family,
                "picture": f"https://lh3.googleusercontent.com/a/{account_id}",
            }
        return {
            "id": account_id,
            "mail": email,
            "userPrincipalName": email,
            "displayName": name,
            "givenName": given,
            "surname": family,
        }


PROVIDERS = (
    Provider("google", "Google", "/oauth/google/userinfo"),
    Provider("microsoft", "Microsoft", "/oauth/microsoft/v1.0/me"),
)

_PAGE = """<!doctype html>
<html><head><title>Sign in with {title} (emulated)</title></head>
<body>
<h1>{title} (emulated)</h1>
<p>Application <strong>{client_id}</strong> wants access to: <code>{scope}</code></p>
<form method="post" action="{action}">
{hidden}
<label>Account email <input type="email" name="email" value="{email}"></label>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</body></html>
"""


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return Response.json(status, {"error": error, "error_description": description})


class OAuthProvider:
    """Both providers' endpoints, and the codes and tokens they have issued."""

    def __init__(self, base_url: Callable[[], str]) -> None:
        self.base_url = base_url
        self.next_email: str | None = None
        self._lock = threading.Lock()
        self._codes: dict[str, dict[str, Any]] = {}
        self._access_tokens: dict[str, dict[str, Any]] = {}
        self._refresh_tokens: dict[str, dict[str, Any]] = {}
        self._accounts: dict[str, str] = {}

    def register(self, router: Router) -> None:
        for provider in PROVIDERS:
            base = f"/oauth/{provider.slug}"
            router.add(
                f"{base}/authorize",
                {
                    "GET": lambda r, p=provider: self.consent_page(p, r),
                    "POST": lambda r, p=provider: self.decide(p, r),
                },
                authenticated=False,
            )
            router.add(
                f"{base}/token",
                {"POST": lambda r, p=provider: self.token(p, r)},
                authenticated=False,
            )
            router.add(
                f"{base}/revoke",
                {"GET": self.revoke, "POST": self.revoke},
                authenticated=False,
            )
            router.add(
                provider.userinfo_path,
                {"GET": lambda r, p=provider: self.userinfo(p, r)},
                authenticated=False,
            )

    def issued_tokens(self) -> set[str]:
        """Every access and refresh token still valid: tests look for them where none may be."""
        with self._lock:
            return set(self._access_tokens) | set(self._refresh_tokens)

    def email_for_refresh_token(self, token: str) -> str | None:
        """The account a refresh token was issued to (the demo connects calendars with it)."""
        with self._lock:
            grant = self._refresh_tokens.get(token)
        return grant["email"] if grant else None

    # ----- endpoints -----------------------------------------------------------------------
    def consent_page(self, provider: Provider, request: Request) -> Response:
        params = request.flat_query
        missing = [name for name in ("client_id", "redirect_uri") if not params.get(name)]
        if missing:
            return Response.html(
                400, f"<h1>Error 400: invalid_request</h1><p>Missing {missing}</p>"
            )
        hidden = "\n".join(
            f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
            for name, value in params.items()
        )
        page = _PAGE.format(
            title=html.escape(provider.title),
            client_id=html.escape(params["client_id"]),
            scope=html.escape(params.get("scope", "")),
            action=f"/oauth/{provider.slug}/authorize",
            hidden=hidden,
            email=html.escape(self.next_email or DEFAULT_EMAIL),
        )
        return Response.html(200, page)

    def decide(self, provider: Provider, request: Request) -> Response:
        """The consent form's answer: redirect back with a code, or with ``access_denied``."""
        form = request.form()
        redirect_uri = form.get("redirect_uri")
        if not redirect_uri:
            return Response.html(400, "<h1>Error 400: redirect_uri missing</h1>")
        state = {"state": form["state"]} if "state" in form else {}
        if form.get("decision") != "allow":
            return Response.redirect(_with_query(redirect_uri, {"error": "access_denied", **state}))
        email = (form.get("email") or self.next_email or DEFAULT_EMAIL).strip()
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {
                "provider": provider.slug,
                "client_id": form.get("client_id"),
                "redirect_uri": redirect_uri,
                "scope": form.get("scope", ""),
                "email": email,
                "offline": provider.wants_refresh_token(form),
            }
        return Response.redirect(_with_query(redirect_uri, {"code": code, **state}))

    def _account_id(self, email: str) -> str:
        return self._accounts.setdefault(email, str(10**20 + len(self._accounts)))

    def token(self, provider: Provider, request: Request) -> Response:
        form = request.form()
        grant_type = form.get("grant_type")
        with self._lock:
            if grant_type == "authorization_code":
                grant = self._codes.pop(form.get("code", ""), None)
                if grant is None or grant["provider"] != provider.slug:
                    return _oauth_error("invalid_grant", "Malformed auth code.")
                if form.get("redirect_uri") and form["redirect_uri"] != grant["redirect_uri"]:
                    return _oauth_error("redirect_uri_mismatch", "Bad Request")
            elif grant_type == "refresh_token":
                grant = self._refresh_tokens.get(form.get("refresh_token", ""))
                if grant is None or grant["provider"] != provider.slug:
                    return _oauth_error("invalid_grant", "Token has been expired or revoked.")
                grant = {**grant, "offline": False}
            else:
                return _oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
            access_token = f"{provider.slug}-access-{secrets.token_urlsafe(24)}"
            self._access_tokens[access_token] = grant
            answer: dict[str, Any] = {
                "access_token": access_token,
                "expires_in": 3599,
                "token_type": "Bearer",
                "scope": grant["scope"],
            }
            if grant["offline"]:
                refresh_token = f"{provider.slug}-refresh-{secrets.token_urlsafe(32)}"
                self._refresh_tokens[refresh_token] = grant
                answer["refresh_token"] = refresh_token
        return Response.json(200, answer)

    def revoke(self, request: Request) -> Response:
        """Forget a token (either kind), as the user revoking the app's access would."""
        token = request.arg("token") or request.form().get("token", "")
        with self._lock:
            found = self._access_tokens.pop(token, None) or self._refresh_tokens.pop(token, None)
        if found is None:
            return _oauth_error("invalid_token", "Token expired or revoked")
        return Response.json(200, {})

    def userinfo(self, provider: Provider, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip()
        with self._lock:
            grant = self._access_tokens.get(token)
            if grant is None or grant["provider"] != provider.slug:
                return _oauth_error("invalid_token", "Invalid Credentials", 401)
            account_id = self._account_id(grant["email"])
        return Response.json(200, provider.user_info(grant["email"], account_id))
