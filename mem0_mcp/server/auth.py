"""Bearer tokens for the HTTP transports: each token maps to one principal (a user_id).

The principal is the only user_id a caller may touch; the server forces it into every scope.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings

from mem0_mcp.errors import ConfigError

SCOPE = "memory"


class StaticTokenVerifier(TokenVerifier):
    """Checks a presented token against a fixed token -> principal table, in constant time."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        for token, principal in tokens.items():
            if len(token) < 16:
                raise ConfigError(
                    "auth_tokens: every token must be at least 16 characters "
                    "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
                )
            if not principal.strip():
                raise ConfigError("auth_tokens: a token maps to an empty principal (user_id)")
        # Digests of equal length make compare_digest's timing independent of the token.
        self._table = [(hashlib.sha256(t.encode()).digest(), p) for t, p in tokens.items()]

    async def verify_token(self, token: str) -> AccessToken | None:
        digest = hashlib.sha256(token.encode()).digest()
        found: str | None = None
        for candidate, principal in self._table:
            if hmac.compare_digest(candidate, digest):
                found = principal
        if found is None:
            return None
        return AccessToken(token=token, client_id=found, subject=found, scopes=[SCOPE])


def auth_settings(host: str, port: int) -> AuthSettings:
    # No OAuth server and no resource metadata: static tokens are provisioned out of band.
    return AuthSettings(
        issuer_url=f"http://{_url_host(host)}:{port}",  # type: ignore[arg-type]
        resource_server_url=None,
        required_scopes=[SCOPE],
    )


def current_principal() -> str | None:
    """The user_id of the authenticated caller, or None on stdio and unauthenticated loopback."""
    token = get_access_token()
    if token is None:
        return None
    return token.subject or token.client_id


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
