"""Admin tokens: who may change flags, and (optionally) who may read the admin API.

GATEWAY_ADMIN_TOKENS="ops=6f1c...,deploy-bot=9a2e..."     # name=token pairs
GATEWAY_ADMIN_TOKENS_FILE=/run/secrets/gateway-tokens     # same pairs, one per line

access = AdminAccess(AdminTokens.from_settings(settings), reads_need_token=False)
async def change(who: Annotated[str, Depends(access.writer)]): ...

Tokens are compared in constant time and never logged or echoed; only their names are.
A client (its peer address) that sent too many wrong tokens is answered 429 before its
token is checked, and its refusals are logged once per window (see `throttle`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request

from gateway.admin.throttle import AdminThrottle
from gateway.exceptions import SettingsError
from gateway.settings import Settings

__all__ = ["MIN_TOKEN_LENGTH", "AdminAccess", "AdminTokens", "bearer", "refuse_query_tokens"]

log = logging.getLogger("gateway.auth")

MIN_TOKEN_LENGTH = 16
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_HOW_TO = (
    "Set GATEWAY_ADMIN_TOKENS='name=token' (comma-separated pairs for several) or "
    "GATEWAY_ADMIN_TOKENS_FILE=/path/to/file (one name=token per line) and restart the "
    "gateway; make a token with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
)


@dataclass(frozen=True)
class AdminTokens:
    """The configured tokens by name. `AdminTokens.from_settings(settings).identify(token)`."""

    by_name: Mapping[str, bytes]

    @classmethod
    def parse(cls, text: str, *, source: str = "GATEWAY_ADMIN_TOKENS") -> AdminTokens:
        """Parse `name=token` pairs separated by commas or newlines; `#` starts a comment."""
        tokens: dict[str, bytes] = {}
        lines = (line.split("#", 1)[0] for line in text.splitlines())
        pairs = [p.strip() for line in lines for p in line.split(",") if p.strip()]
        for number, pair in enumerate(pairs, start=1):
            name, sep, token = (part.strip() for part in pair.partition("="))
            # Never echo `pair`: it holds the secret.
            if not sep or not name or not token:
                raise SettingsError(
                    f"{source}: entry {number} is not name=token; expected e.g. ops=<token>."
                )
            if not _NAME.fullmatch(name):
                raise SettingsError(
                    f"{source}: token name {name!r} is invalid; expected 1-64 letters, digits "
                    "or _ . @ -"
                )
            if name in tokens:
                raise SettingsError(f"{source}: token name {name!r} appears twice; keep one.")
            if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
                raise SettingsError(
                    f"{source}: the token named {name!r} is too weak; expected at least "
                    f"{MIN_TOKEN_LENGTH} characters without spaces."
                )
            tokens[name] = token.encode()
        return cls(tokens)

    @classmethod
    def from_settings(cls, settings: Settings) -> AdminTokens:
        """Tokens from GATEWAY_ADMIN_TOKENS plus GATEWAY_ADMIN_TOKENS_FILE (names must differ)."""
        tokens = dict(cls.parse(settings.admin_tokens).by_name)
        if settings.admin_tokens_file:
            path = Path(settings.admin_tokens_file)
            try:
                text = path.read_text()
            except OSError as exc:
                raise SettingsError(
                    f"GATEWAY_ADMIN_TOKENS_FILE={str(path)!r} cannot be read: {exc.strerror}; "
                    "expected a readable file of name=token lines."
                ) from None
            for name, token in cls.parse(
                text, source=f"GATEWAY_ADMIN_TOKENS_FILE {path}"
            ).by_name.items():
                if name in tokens:
                    raise SettingsError(
                        f"Token name {name!r} is in both GATEWAY_ADMIN_TOKENS and "
                        f"GATEWAY_ADMIN_TOKENS_FILE; keep one."
                    )
                tokens[name] = token
        return cls(tokens)

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def appears_in(self, text: str) -> bool:
        """Whether any configured token occurs in `text` (a flip's reason, say)."""
        return any(known.decode() in text for known in self.by_name.values())

    def identify(self, token: str) -> str | None:
        """The name of the token equal to `token`, or None; every token is compared in full."""
        # Digests first, so the comparison does not even reveal the tokens' lengths.
        candidate = hashlib.sha256(token.encode()).digest()
        found = None
        for name, known in self.by_name.items():
            if hmac.compare_digest(candidate, hashlib.sha256(known).digest()):
                found = name
        return found


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


QUERY_TOKEN_NAMES = frozenset({"token", "access_token", "api_key", "apikey", "key"})


async def refuse_query_tokens(request: Request) -> None:
    """Answer 400 to an admin request that carries a token in its query string.

    A URL is written to access logs, proxies' logs and browser history; a token in it is a
    token leaked. Only the name of the parameter is echoed, never its value.
    """
    for name in request.query_params:
        if name.lower() in QUERY_TOKEN_NAMES:
            raise HTTPException(
                status_code=400,
                detail=f"Admin tokens are not accepted in the query string (found {name!r}); "
                "send 'Authorization: Bearer <token>' instead, and treat that token as leaked.",
            )


def _authenticate(
    tokens: AdminTokens, throttle: AdminThrottle, request: Request, action: str
) -> str:
    if not tokens:
        raise HTTPException(
            status_code=403,
            detail=f"Admin {action} are disabled because no admin token is configured. {_HOW_TO}",
        )
    client = _client(request)
    wait = throttle.blocked_for(client)
    if wait is not None:
        raise HTTPException(
            status_code=429,
            detail=f"Too many wrong admin tokens from {client}: {throttle.limit} within "
            f"{throttle.window:g} s, so no token from it is checked for {wait} s more; "
            "wait that long, then send a token from GATEWAY_ADMIN_TOKENS.",
            headers={"Retry-After": str(wait)},
        )
    token = bearer(request)
    if token is None:
        _refused(throttle, request, client, "no bearer token", wrong_token=False)
        raise HTTPException(
            status_code=401,
            detail=f"Admin {action} need a token: send 'Authorization: Bearer <token>' with a "
            "token from GATEWAY_ADMIN_TOKENS.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    name = tokens.identify(token)
    if name is None:
        _refused(
            throttle, request, client, "a token that matches none configured", wrong_token=True
        )
        raise HTTPException(
            status_code=401,
            detail="Invalid bearer token: it matches none in GATEWAY_ADMIN_TOKENS.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return name


def _client(request: Request) -> str:
    # The peer address (`request.client.host`, read without building an Address): uvicorn
    # puts X-Forwarded-For's there only when told to trust the proxy.
    peer = request.scope.get("client")
    return str(peer[0]) if peer else "?"


def _refused(
    throttle: AdminThrottle, request: Request, client: str, why: str, *, wrong_token: bool
) -> None:
    opening = throttle.refused(client, wrong_token=wrong_token)
    if opening is None:
        return
    log.warning(
        "admin request refused: %s %s from %s with %s; %s",
        request.method,
        request.url.path,
        client,
        why,
        opening.summary(),
    )


class AdminAccess:
    """Who may read and write the admin API; its two methods are FastAPI dependencies.

    access = AdminAccess(AdminTokens.from_settings(settings), reads_need_token=False)
    @router.put("/thing")
    async def change(actor: str = Depends(access.writer)): ...

    One `throttle` serves every router built on this object (the admin port's too), so a
    client's wrong tokens count the same on either port.
    """

    def __init__(
        self,
        tokens: AdminTokens,
        *,
        reads_need_token: bool = False,
        throttle: AdminThrottle | None = None,
    ) -> None:
        self.tokens = tokens
        self.reads_need_token = reads_need_token
        self.throttle = throttle if throttle is not None else AdminThrottle()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        tokens: AdminTokens | None = None,
        throttle: AdminThrottle | None = None,
    ) -> AdminAccess:
        """The access a Gateway serves: tokens and the failure limit from `settings`, unless
        given (tests pass their own)."""
        return cls(
            tokens if tokens is not None else AdminTokens.from_settings(settings),
            reads_need_token=settings.admin_read_requires_token,
            throttle=throttle
            if throttle is not None
            else AdminThrottle(settings.admin_failure_limit, settings.admin_failure_window),
        )

    async def writer(self, request: Request) -> str:
        """The token's name, or 403 (no tokens configured) / 429 (this client sent too many
        wrong tokens lately) / 401 (missing or wrong)."""
        return _authenticate(self.tokens, self.throttle, request, "writes")

    async def reader(self, request: Request) -> str | None:
        """None when reads are open (the default), else like `writer`.

        With GATEWAY_ADMIN_READ_REQUIRES_TOKEN=true reads need a token like writes do.
        """
        if not self.reads_need_token:
            return None
        return _authenticate(self.tokens, self.throttle, request, "reads")

    async def confidential(self, request: Request) -> str:
        """Like `writer`, for reads that may show users' data (shadow results), whatever
        GATEWAY_ADMIN_READ_REQUIRES_TOKEN says."""
        return _authenticate(self.tokens, self.throttle, request, "shadow results")
