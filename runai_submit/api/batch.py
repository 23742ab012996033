"""Batch submit: ``POST /api/v1/jobs/batch`` with ``{"jobs": [...]}``; one audit record per job."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request

from ..schemas.batch import BatchErrorSchema, BatchRequestSchema, BatchResponseSchema
from ..service.batch import BatchItem, BatchResult
from ..service.idempotency import KEY_HEADER, read_key
from ..errors import BadRequest
from ..schemas.params import BatchQuerySchema
from .common import caller, identity_fields, json_body, parameters, service
from .errors import error_response
from .observability import audit_log, manifests_digest
from .spec import CLUSTER, IDEMPOTENCY_KEY, NEEDS_USER, RETRY_AFTER_409, USER_HEADER, responses

blueprint = Blueprint("batch", __name__)
_QUERY = BatchQuerySchema()


@blueprint.post("/api/v1/jobs/batch")
def submit_batch() -> tuple[dict, int] | Response:
    """Submit 1..max_batch jobs; 200 with one outcome per job in request order, or (atomic) all or none."""
    jobs = service()
    user = caller().user
    query = parameters(_QUERY, request.args, error=BadRequest)
    g.dry_run = dry_run = query.get("dryRun", False)
    atomic = query.get("atomic", False)
    key = read_key(request.headers.get(KEY_HEADER))
    payload = json_body()
    result = jobs.submit_batch(payload, user, dry_run=dry_run, atomic=atomic, key=key)
    for item in result.items:
        _audit(item, result, payload["jobs"][item.index])
    failure = result.failure
    if failure is not None:
        extra: dict[str, Any] = {"data": result.data()}
        if result.left_behind:
            extra["leftBehind"] = result.left_behind
        return error_response(failure.status, failure.message, failure.details,
                              [error.to_dict() for error in failure.errors], headers=failure.headers, extra=extra)
    return {"data": result.data()}, 200


def _audit(item: BatchItem, result: BatchResult, job: Any) -> None:
    """The audit record of one job of a batch: the same fields as a single submit's, plus its position."""
    record: dict[str, Any] = {"event": "submit", **identity_fields(caller()), "batch_index": item.index,
                              "atomic": result.atomic, "dry_run": result.dry_run}
    if isinstance(job, dict):
        for field, name in (("project", "project"), ("job", "name")):
            if isinstance(job.get(name), str):
                record[field] = job[name][:253]
    if item.result is not None:
        record.update(job=item.result.name, namespace=item.result.namespace,
                      objects=[f"{obj.kind} {obj.name}" for obj in item.result.objects],
                      manifests=manifests_digest(item.result.manifests))
        if item.result.replayed:
            record["replayed"] = True
    record["status"] = item.error.status if item.error is not None else 200
    record["outcome"] = "rolled_back" if item.outcome == "rolled_back" else "ok" if item.ok else "error"
    audit_log.info("audit submit", extra=record)


# --- the OpenAPI description of the view above -----------------------------------------------------

BATCH = {
    "operationId": "submitBatch", "tags": ["jobs"],
    "summary": "Submit many jobs",
    "description": "1 to RUNAI_SUBMIT_MAX_BATCH jobs, each validated and created exactly like a single submit, "
                   "concurrently. The answer lists one outcome per job in request order (error pointers like "
                   "/jobs/3/gpu). With atomic=true every job is validated first and a failed create rolls back "
                   "every job the batch created: the answer is then the failing job's error with `data` "
                   "(each job's outcome). With an Idempotency-Key each job is bound by its index, so a retried "
                   "batch replays the jobs already created and creates the rest. More jobs than the limit: 413.",
    "parameters": [USER_HEADER, {"in": "query", "schema": BatchQuerySchema}, IDEMPOTENCY_KEY],
    "requestBody": {"required": True, "content": {"application/json": {"schema": "BatchRequest"}}},
    # A batch that fails as a whole answers the error envelope; an atomic one adds each job's outcome (`data`).
    "responses": responses("BatchResponse", "One outcome per job, in request order.", error_schema="BatchError",
                           headers=RETRY_AFTER_409, errors={
        400: "The body is not an object with a jobs array of objects, a query flag is not true/false, or the "
             "Idempotency-Key is not 1 to 255 printable ASCII characters.",
        **NEEDS_USER,
        404: "atomic: a job's project has no namespace.",
        409: "atomic: a job's name is taken, or an Idempotency-Key's job is being created or deleted (Retry-After).",
        413: "More jobs than RUNAI_SUBMIT_MAX_BATCH, or a body larger than the configured limit.",
        422: "The batch is empty or has unknown fields; atomic: a job breaks a rule (pointers like /jobs/3/gpu), "
             "or the Idempotency-Key was used for a different batch.",
        **CLUSTER,
    }),
}

OPERATIONS: dict[str, dict[str, dict]] = {"/api/v1/jobs/batch": {"post": BATCH}}

COMPONENTS = {
    "BatchRequest": BatchRequestSchema,
    "BatchResponse": BatchResponseSchema,
    "BatchError": BatchErrorSchema,
}
