"""Bearer tokens for the HTTP transports: each token maps to one principal (a user_id).

The principal is the only user_id a caller may touch; the server forces it into every scope.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Mapping

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings

from mem0_mcp.config import Settings
from mem0_mcp.errors import ConfigError

logger = logging.getLogger(__name__)

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


def http_auth(settings: Settings) -> tuple[StaticTokenVerifier | None, AuthSettings | None]:
    """Token verifier and auth settings for the HTTP transports; (None, None) on loopback without auth.

    Raises:
        ConfigError: no tokens and no loopback opt-out, or the opt-out on a non-loopback host.
    """
    tokens = settings.load_tokens()
    if settings.allow_unauthenticated_loopback and not is_loopback(settings.host):
        raise ConfigError(
            f"allow_unauthenticated_loopback: only accepted with a loopback host, not {settings.host!r}; "
            "set MEM0_MCP_AUTH_TOKENS instead"
        )
    if tokens:
        if settings.allow_unauthenticated_loopback:
            logger.warning("auth tokens are configured: allow_unauthenticated_loopback is ignored")
        return StaticTokenVerifier(tokens), auth_settings(settings.host, settings.port)
    if settings.allow_unauthenticated_loopback:
        logger.warning("serving HTTP WITHOUT authentication on %s (loopback only)", settings.host)
        return None, None
    raise ConfigError(
        "auth_tokens: the HTTP transports need bearer tokens; set "
        'MEM0_MCP_AUTH_TOKENS=\'{"<token>": "<user_id>"}\' or MEM0_MCP_AUTH_TOKENS_FILE, '
        "or MEM0_MCP_ALLOW_UNAUTHENTICATED_LOOPBACK=true for a loopback-only test server"
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
