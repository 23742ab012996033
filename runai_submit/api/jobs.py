"""Submit, list, read and delete jobs (contract §1-§6). Views are thin: parse, call the service, answer."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request

from .. import schemas
from ..errors import BadRequest, ServiceError
from ..metrics import DELETES
from ..schemas import load_job_ref
from ..service.idempotency import KEY_HEADER, REPLAYED_HEADER, IdempotencyKey, read_key
from .common import caller, check_job_ref, check_project, flag, identity_fields, json_body, service
from .observability import audit_log, manifests_digest, start_audit
from .spec import BOOL_QUERY, IDEMPOTENCY_KEY, JOB_NAME_PATH, PROJECT_PATH, REPLAYED, USER_FILTER, USER_HEADER, ok

blueprint = Blueprint("jobs", __name__)


@blueprint.post("/api/job")
@blueprint.post("/api/v1/job")
@blueprint.post("/api/v1/jobs")
def submit_job() -> tuple[dict, int, dict]:
    """Submit one job; answers its final name (and, with ?dryRun=true, the manifests it would create)."""
    audit = start_audit("submit", request.headers.get("RA-USER", "").strip() or None)
    jobs = service()
    audit["user"] = caller().user
    g.dry_run = dry_run = flag("dryRun")
    key = read_key(request.headers.get(KEY_HEADER))
    payload = json_body()
    _audit_requested(audit, payload)
    audit["dry_run"] = dry_run
    result = jobs.submit_request(payload, caller().user, dry_run=dry_run,
                                 key=IdempotencyKey(key) if key is not None else None)
    audit.update(job=result.name, namespace=result.namespace, manifests=manifests_digest(result.manifests),
                 objects=[f"{obj.kind} {obj.name}" for obj in result.objects])
    if result.replayed:  # an earlier request with this Idempotency-Key created the job; this one created nothing
        audit["replayed"] = True
        return result.to_dict(with_manifests=dry_run), 200, {REPLAYED_HEADER: "true"}
    return result.to_dict(with_manifests=dry_run), 200, {}


@blueprint.get("/api/job")
@blueprint.get("/api/v1/jobs")
def list_jobs() -> dict:
    """Jobs of ``?project=`` (all projects without it), optionally only those of ``?user=``."""
    project = request.args.get("project") or None
    if project is not None:
        check_project(project)
    return {"data": service(require_user=False).list_jobs(project, request.args.get("user") or None)}


@blueprint.get("/api/v1/job/<project>")
def list_project_jobs(project: str) -> dict:
    check_project(project)
    return {"data": service(require_user=False).list_jobs(project, request.args.get("user") or None)}


@blueprint.get("/api/v1/job/<project>/<name>")
def get_job(project: str, name: str) -> dict:
    """The job with its status, statusReason, pods and events (job insight: service/insight.py)."""
    check_job_ref(project, name)
    return service(require_user=False).describe_job(project, name)


@blueprint.delete("/api/job")
@blueprint.delete("/api/v1/jobs")
def delete_jobs() -> tuple[list, int]:
    """Delete each ``{name, project}``; one result per item, so one bad item does not fail the others."""
    jobs = service()
    who = identity_fields(caller())
    delete_pvcs = flag("deletePvcs")
    items = json_body()
    if not isinstance(items, list):
        raise BadRequest("The request body must be a JSON array of {\"name\": ..., \"project\": ...}.")
    results = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        project = item.get("project") if isinstance(item, dict) else None
        result: dict = {"name": _text(name), "project": _text(project), "ok": True, "error": None}
        try:
            project, name = load_job_ref(item)
            result["deleted"] = jobs.delete_job(project, name, delete_pvcs=delete_pvcs)
        except ServiceError as exc:
            result.update(ok=False, error=exc.to_dict())
        results.append(result)
        DELETES.labels("ok" if result["ok"] else "error").inc()
        audit_log.info("audit delete", extra={
            "event": "delete", **who, "project": result["project"], "job": result["name"],
            "outcome": "ok" if result["ok"] else "error", "deleted": result.get("deleted", []),
            "status": result["error"]["status"] if result["error"] else 200,
        })
    return results, 200


def _audit_requested(audit: dict, payload: Any) -> None:
    """Record what was asked for even when it will not validate: who tried to submit what, where."""
    job = payload.get("job") if isinstance(payload, dict) else None
    if isinstance(job, dict):
        for field, key in (("project", "project"), ("job", "name")):
            if isinstance(job.get(key), str):
                audit[field] = job[key][:253]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --- the OpenAPI description of the views above ----------------------------------------------------

SUBMIT = {
    "summary": "Submit a job",
    "description": "Validates every parameter, renders the job's objects and creates them all or none.",
    "parameters": [USER_HEADER, {"name": "dryRun", "in": "query", "schema": BOOL_QUERY,
                                 "description": "validate, render and dry-run on the API server; create nothing"},
                   IDEMPOTENCY_KEY],
    "requestBody": {"required": True, "content": {"application/json": {"schema": "SubmitRequest"}}},
    "responses": ok("SubmitResponse", "The job was created (or, with dryRun, would be).", headers=REPLAYED),
}
LIST = {"summary": "List jobs", "parameters": [{"name": "project", "in": "query", "schema": {"type": "string"}},
                                               USER_FILTER],
        "responses": ok("JobList")}
DELETE = {
    "summary": "Delete jobs",
    "description": "One result per item; the workload goes with its Service and Ingress, PVCs only when asked.",
    "parameters": [USER_HEADER, {"name": "deletePvcs", "in": "query", "schema": BOOL_QUERY}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "array",
                                                                                  "items": "JobRef"}}}},
    "responses": ok({"type": "array", "items": "DeleteResult"}),
}

OPERATIONS: dict[str, dict[str, dict]] = {
    "/api/job": {"post": SUBMIT, "get": LIST, "delete": DELETE},
    "/api/v1/job": {"post": SUBMIT},
    "/api/v1/jobs": {"post": SUBMIT, "get": LIST, "delete": DELETE},
    "/api/v1/job/{project}": {"get": {"summary": "List a project's jobs", "parameters": [PROJECT_PATH, USER_FILTER],
                                      "responses": ok("JobList")}},
    "/api/v1/job/{project}/{name}": {"get": {"summary": "One job with its status",
                                             "parameters": [PROJECT_PATH, JOB_NAME_PATH], "responses": ok("JobDetail")}},
}

COMPONENTS = {
    "Job": schemas.JobSchema,
    "SubmitRequest": schemas.SubmitRequestSchema,
    "SubmitResponse": schemas.SubmitResponseSchema,
    "Error": schemas.ErrorSchema,
    "JobView": schemas.JobViewSchema,
    "JobList": schemas.JobListSchema,
    "JobRef": schemas.JobRefSchema,
    "DeleteResult": schemas.DeleteResultSchema,
}
