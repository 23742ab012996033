"""Submit, list, read and delete jobs (contract §1-§6). Views are thin: parse, call the service, answer."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request

from .. import schemas
from ..errors import BadRequest, ServiceError
from ..identity import ra_user
from ..metrics import DELETES
from ..schemas import load_job_refs
from ..schemas.params import DeleteQuerySchema, JobPathSchema, ListQuerySchema, ProjectPathSchema, \
    SubmitQuerySchema, UserFilterSchema
from ..service.idempotency import KEY_HEADER, REPLAYED_HEADER, IdempotencyKey, read_key
from .common import caller, check_job_ref, identity_fields, json_body, parameters, service
from .observability import audit_log, manifests_digest, start_audit
from .spec import BAD_PARAMETER, CLUSTER, IDEMPOTENCY_KEY, NEEDS_USER, REPLAYED, RETRY_AFTER_409, USER_HEADER, \
    responses

blueprint = Blueprint("jobs", __name__)

_SUBMIT_QUERY, _DELETE_QUERY = SubmitQuerySchema(), DeleteQuerySchema()
_LIST_QUERY, _USER_FILTER = ListQuerySchema(), UserFilterSchema()
_PROJECT_PATH = ProjectPathSchema()


@blueprint.post("/api/job")
@blueprint.post("/api/v1/job")
@blueprint.post("/api/v1/jobs")
def submit_job() -> tuple[dict, int, dict]:
    """Submit one job; answers its final name (and, with ?dryRun=true, the manifests it would create)."""
    audit = start_audit("submit", ra_user(request.headers) or None)
    jobs = service()
    audit["user"] = user = caller().user
    g.dry_run = dry_run = parameters(_SUBMIT_QUERY, request.args, error=BadRequest).get("dryRun", False)
    key = read_key(request.headers.get(KEY_HEADER))
    payload = json_body()
    _audit_requested(audit, payload)
    audit["dry_run"] = dry_run
    result = jobs.submit_request(payload, user, dry_run=dry_run,
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
    query = parameters(_LIST_QUERY, request.args)
    return {"data": service(require_user=False).list_jobs(query.get("project"), query.get("user") or None)}


@blueprint.get("/api/v1/job/<project>")
def list_project_jobs(project: str) -> dict:
    parameters(_PROJECT_PATH, {"project": project})
    user = parameters(_USER_FILTER, request.args).get("user") or None
    return {"data": service(require_user=False).list_jobs(project, user)}


@blueprint.get("/api/v1/job/<project>/<name>")
def get_job(project: str, name: str) -> dict:
    """The job with its status, statusReason, pods and events (job insight: service/insight.py)."""
    check_job_ref(project, name)
    return service(require_user=False).describe_job(project, name)


@blueprint.delete("/api/job")
@blueprint.delete("/api/v1/jobs")
def delete_jobs() -> tuple[list, int]:
    """Delete each ``{name, project}``: a malformed body deletes nothing (422 naming every bad item); then one
    result per item, so one that fails in the cluster (absent, forbidden) does not fail the others."""
    jobs = service()
    who = identity_fields(caller())
    delete_pvcs = parameters(_DELETE_QUERY, request.args, error=BadRequest).get("deletePvcs", False)
    items = json_body()
    if not isinstance(items, list):
        raise BadRequest("The request body must be a JSON array of {\"name\": ..., \"project\": ...}.")
    results = []
    for project, name in load_job_refs(items):
        result: dict = {"name": name, "project": project, "ok": True, "error": None}
        try:
            result["deleted"] = jobs.delete_job(project, name, delete_pvcs=delete_pvcs)
        except ServiceError as exc:
            result.update(ok=False, error=exc.to_dict())
        results.append(result)
        DELETES.labels("ok" if result["ok"] else "error").inc()
        audit_log.info("audit delete", extra={
            "event": "delete", **who, "project": project, "job": name,
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


# --- the OpenAPI description of the views above ----------------------------------------------------

SUBMIT = {
    "tags": ["jobs"],
    "summary": "Submit a job",
    "description": "Validates every parameter, renders the job's objects and creates them all or none. Rules that "
                   "span fields are stated in the fields' descriptions (and listed under x-rules); every broken "
                   "rule is answered at once, each with a JSON pointer into the body.",
    "parameters": [USER_HEADER, {"in": "query", "schema": SubmitQuerySchema}, IDEMPOTENCY_KEY],
    "requestBody": {"required": True, "content": {"application/json": {"schema": "SubmitRequest"}}},
    "responses": responses("SubmitResponse", "The job was created (or, with dryRun, would be; or, replayed, was).",
                           headers={200: REPLAYED, **RETRY_AFTER_409}, errors={
        400: "The body is not JSON, not an object with a job object, dryRun is not true/false, or the "
             "Idempotency-Key is not 1 to 255 printable ASCII characters.",
        **NEEDS_USER,
        404: "The project has no namespace.",
        409: "The name is taken by an object the job needs (nothing was touched), no generated name was free, or "
             "the Idempotency-Key's job is being created or deleted right now (Retry-After).",
        413: "The body is larger than the configured limit.",
        422: "A parameter breaks a rule or is unknown (every problem, each with a JSON pointer), the API server "
             "refused an object, or the Idempotency-Key was used for a different job.",
        **CLUSTER,
    }),
}
LIST = {
    "tags": ["jobs"],
    "summary": "List jobs",
    "parameters": [{"in": "query", "schema": ListQuerySchema}],
    "responses": responses("JobList", errors={404: "The project has no namespace.", **BAD_PARAMETER, **CLUSTER}),
}
DELETE = {
    "tags": ["jobs"],
    "summary": "Delete jobs",
    "description": "A body with any malformed item deletes nothing (422 naming each bad item). Otherwise one result "
                   "per item, in order: the workload goes with its Service and Ingress, the job's claims only with "
                   "deletePvcs=true; an item that fails in the cluster (absent, forbidden, unreachable) answers "
                   "ok: false with its error and does not stop the others.",
    "parameters": [USER_HEADER, {"in": "query", "schema": DeleteQuerySchema}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "array",
                                                                                  "items": "JobRef"}}}},
    "responses": responses({"type": "array", "items": "DeleteResult"}, "One result per item.", errors={
        400: "The body is not a JSON array, or deletePvcs is not true/false.",
        **NEEDS_USER,
        413: "The body is larger than the configured limit.",
        422: "An item is not {name, project} with valid names: nothing was deleted.",
    }),
}

OPERATIONS: dict[str, dict[str, dict]] = {
    "/api/job": {"post": {**SUBMIT, "operationId": "submitJob"}, "get": {**LIST, "operationId": "listJobs"},
                 "delete": {**DELETE, "operationId": "deleteJobs"}},
    # The aliases of the contract (§1): the same operations, named apart as OpenAPI requires.
    "/api/v1/job": {"post": {**SUBMIT, "operationId": "submitJobV1"}},
    "/api/v1/jobs": {"post": {**SUBMIT, "operationId": "submitJobV1Jobs"}, "get": {**LIST, "operationId": "listJobsV1"},
                     "delete": {**DELETE, "operationId": "deleteJobsV1"}},
    "/api/v1/job/{project}": {"get": {
        "operationId": "listProjectJobs", "tags": ["jobs"],
        "summary": "List a project's jobs",
        "parameters": [{"in": "path", "schema": ProjectPathSchema}, {"in": "query", "schema": UserFilterSchema}],
        "responses": responses("JobList", errors={404: "The project has no namespace.", **BAD_PARAMETER, **CLUSTER}),
    }},
    "/api/v1/job/{project}/{name}": {"get": {
        "operationId": "getJob", "tags": ["jobs"],
        "summary": "One job with its status, its reason, its pods and events",
        "parameters": [{"in": "path", "schema": JobPathSchema}],
        "responses": responses("JobDetail", errors={404: "The project has no namespace, or it has no such job.",
                                                  **BAD_PARAMETER, **CLUSTER}),
    }},
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
