"""Who is calling: the auth mode turns a request's headers into a ``Caller``.

No Flask here: the API hands over the headers. Three modes (``RUNAI_SUBMIT_AUTH_MODE``, README "Security"):

* ``header``: ``RA-USER`` names the user, taken on trust; the service's own credentials act.
* ``impersonate``: as ``header``, but every API server call of the request carries ``Impersonate-User`` (and one
  ``Impersonate-Group`` per ``RA-GROUPS`` entry), so the cluster's RBAC decides for that user.
* ``token``: the caller's own bearer token goes on every API server call; a SelfSubjectReview made with it tells
  whose it is. Reviews are cached by a digest of the token (never the token itself).
"""
from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cachetools import TLRUCache

from .errors import Unauthorized

USER_HEADER = "RA-USER"
GROUPS_HEADER = "RA-GROUPS"
AUTHORIZATION = "Authorization"
IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_GROUP = "Impersonate-Group"

# RFC 6750 section 2.1: "Bearer" 1*SP b64token. Anything else is malformed; checking the shape also keeps
# anything that is not a token (spaces, commas, control characters) out of the header we forward.
_BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# How long a refused token is remembered: long enough to absorb a client retrying in a loop, short enough that
# a token which was not yet valid (clock skew, a just-created ServiceAccount) works moments later.
REFUSAL_SECONDS = 5.0
REVIEW_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Caller:
    """The identity a request acts with.

    ``credentials`` are the HTTP headers every API server call of the request carries (``Authorization``
    or ``Impersonate-*``); empty when the service's own credentials act. Never logged: ``repr=False``.
    ``key`` is a digest of the credentials, for caches of what the cluster said about this identity.
    ``claimed_user`` is an ``RA-USER`` that disagrees with the authenticated user: kept for the audit record only.
    """

    user: str
    groups: tuple[str, ...] = ()
    mode: str = "header"
    credentials: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)
    key: str = field(default="", repr=False, compare=False)
    claimed_user: str | None = None

    @property
    def acts_as_itself(self) -> bool:
        """True when the API server sees the caller's identity rather than the service's."""
        return bool(self.credentials)

    @property
    def carries_token(self) -> bool:
        """True when the credentials are the caller's own bearer token (the service's must then stay off)."""
        return any(name == AUTHORIZATION for name, _ in self.credentials)


ANONYMOUS = Caller(user="")


def digest(secret: str) -> str:
    """A cache key for a credential: SHA-256, so the credential itself is never kept."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def caller_from_headers(headers: Mapping[str, str], *, require_user: bool = True) -> Caller:
    """``header`` mode: RA-USER names the user; the service's credentials act."""
    user = ra_user(headers)
    if not user:
        if require_user:
            raise Unauthorized("The RA-USER header is required and must name the submitting user.")
        return ANONYMOUS
    return Caller(user=user)


def impersonating_caller(headers: Mapping[str, str]) -> Caller:
    """``impersonate`` mode: RA-USER (and RA-GROUPS) become Impersonate-* headers on every API call.

    https://kubernetes.io/docs/reference/access-authn-authz/authentication/#user-impersonation
    """
    user = ra_user(headers)
    if not user:
        raise Unauthorized("The RA-USER header is required: every call to the cluster is made as that user.")
    groups = tuple(dict.fromkeys(g.strip(" \t") for g in header_text(headers.get(GROUPS_HEADER)).split(",")
                                 if g.strip(" \t")))
    if _CONTROL.search(user) or any(_CONTROL.search(group) for group in groups):
        raise Unauthorized("RA-USER and RA-GROUPS must not contain control characters.")
    credentials = ((IMPERSONATE_USER, on_the_wire(user)),
                   *((IMPERSONATE_GROUP, on_the_wire(group)) for group in groups))
    return Caller(user=user, groups=groups, mode="impersonate", credentials=credentials,
                  key=digest("\n".join([user, *groups])))


def bearer_token(headers: Mapping[str, str]) -> str:
    """The token of ``Authorization: Bearer <token>``; a missing or malformed header is a 401."""
    value = (headers.get(AUTHORIZATION) or "").strip()
    if not value:
        raise TokenRequired("This service needs an 'Authorization: Bearer <token>' header with a token the "
                            "cluster accepts (a ServiceAccount token or an OIDC id-token).")
    match = _BEARER.fullmatch(value)
    if match is None:
        # Say what is wrong without repeating any of it: the header may hold a secret in another scheme.
        raise TokenRequired("The Authorization header must be 'Bearer <token>' with a single token.",
                            error="invalid_request")
    return match.group(1)


class TokenRequired(Unauthorized):
    """401 with ``WWW-Authenticate: Bearer`` (RFC 6750 section 3), so clients know what to send."""

    def __init__(self, message: str, *, error: str | None = None, details: str = "") -> None:
        challenge = 'Bearer realm="runai-submit"'
        if error:
            challenge += f', error="{error}"'
        super().__init__(message, details=details, headers={"WWW-Authenticate": challenge})


class TokenRejected(TokenRequired):
    """The API server does not accept the token (expired, revoked, unknown issuer, garbage)."""

    def __init__(self, details: str = "") -> None:
        super().__init__("The cluster did not accept the bearer token.", error="invalid_token",
                         details=details or "Get a fresh token; it must be one the cluster's API server accepts.")


@dataclass(frozen=True)
class Identity:
    """What a SelfSubjectReview said about a token."""

    user: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class _Refusal:
    """A token the API server refused (kept briefly, so a client retrying in a loop costs no round trips)."""

    details: str


# A review: the identity the API server sees for a Caller's credentials (SelfSubjectReview), or a ServiceError.
Review = Callable[[Caller], Identity]


class Authenticator:
    """Turns a request's headers into a Caller in the configured mode; token reviews are cached.

    The cache holds an Identity (for ``ttl`` seconds) or the refusal (for at most REFUSAL_SECONDS) under the
    SHA-256 of the token. It can grant nothing: every API call still carries the token, and the API server
    authenticates each one; the cache only saves the review's round trip and names the user.
    """

    def __init__(self, mode: str, review: Review, *, ttl: float, clock: Callable[[], float] = time.monotonic,
                 maxsize: int = REVIEW_CACHE_SIZE) -> None:
        self.mode = mode
        self._review = review
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cache: TLRUCache = TLRUCache(maxsize=maxsize, ttu=self._expires, timer=clock)

    def _expires(self, _key: str, value: Identity | _Refusal, now: float) -> float:
        return now + (self._ttl if isinstance(value, Identity) else min(self._ttl, REFUSAL_SECONDS))

    def caller(self, headers: Mapping[str, str], *, require_user: bool = True) -> Caller:
        if self.mode == "token":
            return self._token_caller(headers)
        if self.mode == "impersonate":
            return impersonating_caller(headers)
        return caller_from_headers(headers, require_user=require_user)

    def _token_caller(self, headers: Mapping[str, str]) -> Caller:
        token = bearer_token(headers)
        key = digest(token)
        credentials = ((AUTHORIZATION, f"Bearer {token}"),)
        with self._lock:
            found = self._cache.get(key)
        if found is None:
            try:
                found = self._review(Caller(user="", mode="token", credentials=credentials, key=key))
            except TokenRejected as exc:
                found = _Refusal(exc.details)
            # Anything else (the cluster is down, a 5xx) says nothing about the token: answer it, cache nothing.
            with self._lock:
                self._cache[key] = found
        if isinstance(found, _Refusal):
            raise TokenRejected(found.details)
        claimed = ra_user(headers)
        return Caller(user=found.user, groups=found.groups, mode="token", credentials=credentials, key=key,
                      claimed_user=claimed if claimed and claimed != found.user else None)


def ra_user(headers: Mapping[str, str]) -> str:
    """RA-USER as the client wrote it (``""`` when absent or blank); see ``header_text``."""
    return header_text(headers.get(USER_HEADER))


def on_the_wire(text: str) -> str:
    """``text`` as a header value for http.client, which sends each character as one latin-1 byte: its UTF-8
    bytes, as the API server (Go: a header is bytes, a user name a UTF-8 string) reads them."""
    return text.encode("utf-8").decode("latin-1")


def header_text(value: str | None) -> str:
    """A header's text without the whitespace around it, UTF-8 as clients send it.

    WSGI hands header values over as latin-1 strings, one character per byte (PEP 3333, "native strings"),
    so "Jöhn" arrives as "JÃ¶hn"; such a value is decoded again as UTF-8, and kept as it is when it is not
    UTF-8. Only HTTP's own whitespace (space, tab: RFC 9110 section 5.5) is stripped: ``str.strip`` would
    also take a no-break space (0xA0), which is the last byte of many UTF-8 characters (张 is E5 BC A0).
    """
    text = (value or "").strip(" \t")
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8").strip(" \t")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
