"""Views: read the request, call the service, answer. Errors are raised and mapped by api.errors."""
from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, g, request

from .. import __version__
from ..errors import (
    BadRequest,
    FieldError,
    JobNotFound,
    PayloadTooLarge,
    ServiceError,
    Unauthorized,
    ValidationFailed,
)
from ..metrics import DELETES, exposition, timed
from ..render.names import DNS1123_LABEL, DNS1123_SUBDOMAIN
from ..schemas import load_job_ref, load_submit_request
from .observability import audit_log, manifests_digest, start_audit

blueprint = Blueprint("api", __name__)

USER_HEADER = "RA-USER"
_TRUE = ("true", "1", "all", "yes")
_FALSE = ("false", "0", "no", "")


def _state() -> Any:
    return current_app.extensions["runai_submit"]


def _user() -> str:
    user = (request.headers.get(USER_HEADER) or "").strip()
    if not user:
        raise Unauthorized("The RA-USER header is required and must name the submitting user.")
    return user


def _json_body() -> Any:
    # Werkzeug answers 413 for a declared Content-Length over the limit; a chunked body has none,
    # so read one byte past the limit and refuse it here.
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    chunks, size = [], 0
    while size <= limit:
        chunk = request.stream.read(limit + 1 - size)  # reads may come back short: loop to EOF
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    raw = b"".join(chunks)
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The request body is not valid JSON.", details=str(exc)) from None
    except RecursionError:
        raise BadRequest("The request body is nested too deeply.") from None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _flag(name: str) -> bool:
    value = request.args.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadRequest(f"Query parameter {name} must be true or false, not {value!r}.")


@blueprint.post("/api/job")
@blueprint.post("/api/v1/job")
@blueprint.post("/api/v1/jobs")
def submit_job() -> tuple[dict, int]:
    """Submit one job; answers its final name (and, with ?dryRun=true, the manifests it would create)."""
    audit = start_audit("submit", request.headers.get(USER_HEADER, "").strip() or None)
    user = _user()
    g.dry_run = dry_run = _flag("dryRun")
    payload = _json_body()
    _audit_requested(audit, payload)
    with timed("validate"):
        spec = load_submit_request(payload)
    audit["dry_run"] = dry_run
    result = _state().service.submit(spec, user, dry_run=dry_run)
    audit.update(job=result.name, namespace=result.namespace, manifests=manifests_digest(result.manifests),
                 objects=[f"{obj.kind} {obj.name}" for obj in result.objects])
    return result.to_dict(with_manifests=dry_run), 200


@blueprint.get("/api/job")
@blueprint.get("/api/v1/jobs")
def list_jobs() -> dict:
    """Jobs of ``?project=`` (all projects without it), optionally only those of ``?user=``."""
    project = request.args.get("project") or None
    if project is not None:
        _check_project(project)
    return {"data": _state().service.list_jobs(project, request.args.get("user") or None)}


@blueprint.get("/api/v1/job/<project>")
def list_project_jobs(project: str) -> dict:
    _check_project(project)
    return {"data": _state().service.list_jobs(project, request.args.get("user") or None)}


@blueprint.get("/api/v1/job/<project>/<name>")
def get_job(project: str, name: str) -> dict:
    _check_project(project)
    if not DNS1123_SUBDOMAIN.match(name) or len(name) > 253:
        raise JobNotFound(project, name)  # not an object name: no such job can exist
    return _state().service.get_job(project, name)


@blueprint.delete("/api/job")
@blueprint.delete("/api/v1/jobs")
def delete_jobs() -> tuple[list, int]:
    """Delete each ``{name, project}``; one result per item, so one bad item does not fail the others."""
    user = _user()
    delete_pvcs = _flag("deletePvcs")
    items = _json_body()
    if not isinstance(items, list):
        raise BadRequest("The request body must be a JSON array of {\"name\": ..., \"project\": ...}.")
    service = _state().service
    results = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        project = item.get("project") if isinstance(item, dict) else None
        result: dict = {"name": _text(name), "project": _text(project), "ok": True, "error": None}
        try:
            project, name = load_job_ref(item)
            result["deleted"] = service.delete_job(project, name, delete_pvcs=delete_pvcs)
        except ServiceError as exc:
            result.update(ok=False, error=exc.to_dict())
        results.append(result)
        DELETES.labels("ok" if result["ok"] else "error").inc()
        audit_log.info("audit delete", extra={
            "event": "delete", "user": user, "project": result["project"], "job": result["name"],
            "outcome": "ok" if result["ok"] else "error", "deleted": result.get("deleted", []),
            "status": result["error"]["status"] if result["error"] else 200,
        })
    return results, 200


@blueprint.get("/api/v1/projects")
def list_projects() -> dict:
    return {"data": _state().service.projects()}


@blueprint.get("/api/v1/version")
def version() -> dict:
    cluster = _state().cluster
    return {"version": __version__, "kubernetes": cluster.version().get("gitVersion", ""), "backend": cluster.backend}


def _audit_requested(audit: dict, payload: Any) -> None:
    """Record what was asked for even when it will not validate: who tried to submit what, where."""
    job = payload.get("job") if isinstance(payload, dict) else None
    if isinstance(job, dict):
        for field, key in (("project", "project"), ("job", "name")):
            if isinstance(job.get(key), str):
                audit[field] = job[key][:253]


def _check_project(project: str) -> None:
    if not DNS1123_LABEL.match(project) or len(project) > 63:
        raise ValidationFailed(f"{project!r} is not a project name.",
                               errors=[FieldError("/project", "must be a DNS-1123 label")])


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@blueprint.get("/healthz")
def healthz() -> dict:
    """Liveness: the process answers. It does not ask the cluster (a cluster outage is not a restart cause)."""
    return {"status": "ok"}


@blueprint.get("/metrics")
def prometheus_metrics() -> Response:
    body, content_type = exposition()
    return Response(body, content_type=content_type)


@blueprint.get("/readyz")
def readyz() -> dict:
    """Readiness: the API server answered within the ready timeout (the result is cached briefly)."""
    return _state().readiness()
