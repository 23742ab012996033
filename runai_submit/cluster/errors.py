"""The one place where API server answers and transport failures become the service's errors."""
from __future__ import annotations

import json

import urllib3

from ..errors import ClusterError, ClusterRejected, ClusterUnavailable, Conflict, Forbidden, NotFound, ServiceError

# Transport failures where the request may have reached the API server (and so may have taken effect).
_AMBIGUOUS = (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError)


class NamespaceMissing(NotFound):
    """A create went to a namespace that does not exist (the project is unknown)."""

    def __init__(self, namespace: str) -> None:
        super().__init__(f"Namespace {namespace!r} does not exist.")
        self.namespace = namespace


class AlreadyExists(Conflict):
    """The API server refused a create because the name is taken."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


class CredentialsRefused(Forbidden):
    """The API server answered 401: it did not accept the credentials the call carried.

    With the service's own credentials this stays a refusal of the cluster (403, as before); a handle acting
    with a caller's token turns it into a 401 for the caller (``cluster.caller.CallerCluster``).
    """


def parse_status(body: bytes | str | None) -> dict:
    """The ``Status`` object of an error answer, or {} when the body is not one."""
    if not body:
        return {}
    try:
        status = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return status if isinstance(status, dict) else {}


def error_from_response(code: int, body: bytes, headers: dict, *, what: str, retry_after: int) -> ServiceError:
    """Translate a non-2xx answer for ``what`` (e.g. "create Service x") into a ServiceError."""
    status = parse_status(body)
    reason = status.get("reason", "")
    message = status.get("message") or f"HTTP {code}"
    details = status.get("details") or {}
    text = f"{what}: {message}"
    if code == 404 and details.get("kind") == "namespaces":
        return NamespaceMissing(details.get("name", ""))
    if code == 409 and reason == "AlreadyExists":
        return AlreadyExists(text, details.get("name", ""))
    if code == 409:
        return Conflict(text)
    if code == 404:
        return NotFound(text)
    if code == 401:
        return CredentialsRefused(f"The cluster refused to {what}: {message}", details=message)
    if code == 403:
        # The API server's own words name the user, verb, resource and namespace: keep them in the message.
        return Forbidden(f"The cluster refused to {what}: {message}", details=message)
    if code in (400, 422):
        causes = "; ".join(
            f"{cause.get('field', '')}: {cause.get('message', '')}".strip(": ") for cause in details.get("causes", [])
        )
        return ClusterRejected(f"The cluster rejected {what}.", details=causes or message)
    if code in (429, 503, 504):
        wait = _retry_after(headers, retry_after)
        error = ClusterUnavailable(f"The cluster is busy and could not {what}.", retry_after=wait, details=message)
        # A gateway timeout may hide a write that went through, or is still going through.
        error.maybe_applied = error.may_land_late = code == 504
        return error
    error = ClusterError(f"The cluster failed to {what} (HTTP {code}).", details=message)
    error.maybe_applied = True  # a 500 can come after the write was persisted
    return error


def error_from_transport(exc: Exception, *, what: str, retry_after: int) -> ClusterUnavailable:
    """Connection refused, DNS failure, timeout, dropped connection: the cluster is unavailable."""
    error = ClusterUnavailable(
        f"The cluster did not answer; could not {what}.",
        retry_after=retry_after,
        details=_describe(exc),
    )
    error.maybe_applied = error.may_land_late = isinstance(exc, _AMBIGUOUS) or isinstance(
        getattr(exc, "reason", None), _AMBIGUOUS
    )
    return error


def _retry_after(headers: dict, default: int) -> int:
    try:
        return max(1, int(float(headers.get("Retry-After", default))))
    except (TypeError, ValueError):
        return default


def _describe(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return f"{type(exc).__name__}: {reason or exc}"


TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)


# --- job insight -------------------------------------------------------------------------------------


class LogUnavailable(Conflict):
    """The API server has no log to give for that container yet (waiting to start, no previous instance)."""
