"""Per-request plumbing: request ids, one JSON access-log line per request, audit records, HTTP metrics."""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid

import orjson
from flask import Flask, Response, current_app, g, has_request_context, request

from .. import metrics
from ..identity import ra_user
from .jsonprovider import same_as_json_dumps

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
    """A stable hash of what was (or would be) created, for the audit trail.

    The hash of ``json.dumps(manifests, sort_keys=True, separators=(",", ":"))``. orjson writes the same
    bytes at a fraction of the cost, except where ``same_as_json_dumps`` says otherwise (non-ASCII text, a
    few tiny floats): those take json.dumps itself.
    """
    canonical = orjson.dumps(manifests, option=orjson.OPT_SORT_KEYS)
    if not same_as_json_dumps(canonical):
        canonical = json.dumps(manifests, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def start_audit(event: str, user: str | None) -> dict:
    """Begin the audit record of this request; views fill it in, ``_finish`` emits it exactly once."""
    g.audit = {"event": event, "user": user}
    return g.audit


def _begin() -> None:
    ctx = g._get_current_object()  # type: ignore[attr-defined]  # one context lookup, not one per attribute
    ctx.started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    ctx.request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex


def _finish(response: Response) -> Response:
    # The request and g behind their proxies, looked up once (each proxied attribute is a context lookup).
    req, ctx = request._get_current_object(), g._get_current_object()  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - ctx.get("started", time.perf_counter())
    endpoint = req.url_rule.rule if req.url_rule is not None else "unmatched"
    status = response.status_code
    code = str(status)
    response.headers[REQUEST_ID_HEADER] = ctx.get("request_id", "")
    metrics.child(metrics.HTTP_SECONDS, req.method, endpoint, code).observe(elapsed)
    if req.endpoint == "jobs.submit_job":
        metrics.child(metrics.SUBMITS, metrics.submit_outcome(status, ctx.get("dry_run", False)), code).inc()
    audit = ctx.pop("audit", None)
    who = ctx.get("caller")
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
        audit_log.info("audit %s", audit["event"], extra={**audit, "status": status,
                                                           "outcome": "ok" if status < 300 else "error"})
    method, path = req.method, req.path
    access_log.info(
        "%s %s %s", method, path, status,
        extra={"method": method, "path": path, "status": status, "duration_ms": round(elapsed * 1000, 3),
               "remote": req.remote_addr, "user": _logged_user(who)},
    )
    return response


def _auth_mode() -> str:
    return current_app.extensions["runai_submit"].settings.auth_mode


def _logged_user(who) -> str | None:
    """The access log's user: the authenticated one, or RA-USER where that is the identity (header mode)."""
    if who is not None and who.user:
        return who.user
    return (ra_user(request.headers) or None) if _auth_mode() == "header" else None


def register_observability(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_finish)
