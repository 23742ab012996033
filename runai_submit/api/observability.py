"""Per-request plumbing: request ids, one JSON access-log line per request, audit records, HTTP metrics."""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid

from flask import Flask, Response, current_app, g, has_request_context, request

from .. import metrics

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces: safe to log and echo

access_log = logging.getLogger("runai_submit.access")
audit_log = logging.getLogger("runai_submit.audit")


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every log record made while a request is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id") if has_request_context() else None
        return True


def manifests_digest(manifests: list[dict]) -> str:
    """A stable hash of what was (or would be) created, for the audit trail."""
    canonical = json.dumps(manifests, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def start_audit(event: str, user: str | None) -> dict:
    """Begin the audit record of this request; views fill it in, ``_finish`` emits it exactly once."""
    g.audit = {"event": event, "user": user}
    return g.audit


def _begin() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex


def _finish(response: Response) -> Response:
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    metrics.HTTP_SECONDS.labels(request.method, endpoint, str(response.status_code)).observe(elapsed)
    if request.endpoint == "jobs.submit_job":
        metrics.SUBMITS.labels(metrics.submit_outcome(response.status_code, g.get("dry_run", False)),
                               str(response.status_code)).inc()
    audit = g.pop("audit", None)
    who = g.get("caller")
    if audit is not None and who is not None and who.user:
        # The identity this request acted with (auth modes, README "Security"), not what RA-USER claimed.
        audit.update(user=who.user, groups=list(who.groups), auth_mode=who.mode)
        if who.claimed_user:
            audit["claimed_user"] = who.claimed_user
    elif who is None and _auth_mode() != "header":
        # Refused before the caller was authenticated: RA-USER is only a claim.
        if audit is not None and audit.get("user"):
            audit["claimed_user"], audit["user"] = audit["user"], None
    if audit is not None:
        audit_log.info("audit %s", audit["event"], extra={**audit, "status": response.status_code,
                                                           "outcome": "ok" if response.status_code < 300 else "error"})
    access_log.info(
        "%s %s %s", request.method, request.path, response.status_code,
        extra={"method": request.method, "path": request.path, "status": response.status_code,
               "duration_ms": round(elapsed * 1000, 3), "remote": request.remote_addr,
               "user": _logged_user(who)},
    )
    return response


def _auth_mode() -> str:
    return current_app.extensions["runai_submit"].settings.auth_mode


def _logged_user(who) -> str | None:
    """The access log's user: the authenticated one, or RA-USER where that is the identity (header mode)."""
    if who is not None and who.user:
        return who.user
    return (request.headers.get("RA-USER") or None) if _auth_mode() == "header" else None


def register_observability(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_finish)
