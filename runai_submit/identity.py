"""Who is calling: the auth mode turns a request's headers into a ``Caller``.

No Flask here: the API hands over the headers. In ``header`` mode (the default) ``RA-USER`` names the user
and the service's own credentials act, so a Caller carries no credentials of its own.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import Unauthorized

USER_HEADER = "RA-USER"


@dataclass(frozen=True)
class Caller:
    """The identity a request acts with.

    ``credentials`` are the HTTP headers every API server call of the request carries (``Authorization``
    or ``Impersonate-*``); empty when the service's own credentials act. Never logged: ``repr=False``.
    """

    user: str
    groups: tuple[str, ...] = ()
    mode: str = "header"
    credentials: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)

    @property
    def acts_as_itself(self) -> bool:
        """True when the API server sees the caller's identity rather than the service's."""
        return bool(self.credentials)


ANONYMOUS = Caller(user="")


def caller_from_headers(headers: Mapping[str, str], *, require_user: bool = True) -> Caller:
    """``header`` mode: RA-USER names the user; the service's credentials act."""
    user = (headers.get(USER_HEADER) or "").strip()
    if not user:
        if require_user:
            raise Unauthorized("The RA-USER header is required and must name the submitting user.")
        return ANONYMOUS
    return Caller(user=user)
