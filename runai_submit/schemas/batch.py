"""The batch submit request ``{"jobs": [...]}`` and its answer (``POST /api/v1/jobs/batch``).

Each item is a job exactly as inside a single submit's ``{"job": ...}``; the service validates it on the
one submit path. Here only the envelope is checked: an object holding ``jobs``, a list of 1 to
``max_batch`` items.
"""
from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from ..errors import BadRequest, FieldError, PayloadTooLarge, ValidationFailed
from .fields import escape_pointer
from .job import JobSchema
from .responses import ErrorSchema, ObjectRefSchema, SubmitResponseSchema


def load_batch_request(payload: Any, max_batch: int) -> list[Any]:
    """The list of job payloads, or BadRequest (shape), ValidationFailed (empty, unknown fields) or
    PayloadTooLarge (more than ``max_batch`` jobs: the caller should split the batch, not fix a job)."""
    if not isinstance(payload, dict):
        raise BadRequest("The request body must be a JSON object such as {\"jobs\": [{...}, ...]}.")
    if "jobs" not in payload:
        raise BadRequest("The request body has no \"jobs\" array.", errors=[FieldError("/jobs", "is required")])
    jobs = payload["jobs"]
    if not isinstance(jobs, list):
        raise BadRequest("\"jobs\" must be a JSON array of jobs.", errors=[FieldError("/jobs", "must be an array")])
    if len(jobs) > max_batch:
        raise PayloadTooLarge(
            f"A batch holds at most {max_batch} jobs; this one has {len(jobs)}.",
            details="Split the jobs into several batches (RUNAI_SUBMIT_MAX_BATCH sets the limit).",
            errors=[FieldError("/jobs", f"at most {max_batch} jobs per batch, not {len(jobs)}")],
        )
    problems = [FieldError(f"/{escape_pointer(key)}", "unknown field (the body holds only \"jobs\")")
                for key in payload if key != "jobs"]
    if not jobs:
        problems.append(FieldError("/jobs", "must hold at least one job"))
    if problems:
        raise ValidationFailed("The batch is not valid.",
                               details="; ".join(f"{p.field}: {p.message}" for p in problems), errors=problems)
    return jobs


# --- for the OpenAPI document ------------------------------------------------------------------------


class BatchRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    jobs = fields.List(fields.Nested(JobSchema), required=True, validate=validate.Length(min=1),
                       metadata={"description": "1 to RUNAI_SUBMIT_MAX_BATCH jobs, each as in a single submit"})


class BatchItemErrorSchema(ErrorSchema):
    """A job's error envelope inside a batch answer; a 409/503 says when to retry (a header could not)."""

    retryAfterSeconds = fields.Integer(metadata={"description": "the Retry-After a single submit would carry"})


class BatchItemSchema(SubmitResponseSchema):
    """One job of a batch, in request order: the single submit's answer (every field of it, optional here
    because a failed job has none of them), or its error envelope."""

    index = fields.Integer(required=True, metadata={"description": "position of the job in the request"})
    ok = fields.Boolean(required=True)
    name = fields.String(metadata={"description": "the job's final name"})
    project = fields.String()
    namespace = fields.String()
    kind = fields.String(metadata={"description": "RunaiJob or Job"})
    objects = fields.List(fields.Nested(ObjectRefSchema))
    replayed = fields.Boolean(metadata={"description": "true when an Idempotency-Key replayed an earlier answer"})
    error = fields.Nested(BatchItemErrorSchema,
                          metadata={"description": "when not ok; pointers like /jobs/3/gpu"})


class BatchResponseSchema(Schema):
    data = fields.List(fields.Nested(BatchItemSchema), required=True)


class BatchErrorSchema(ErrorSchema):
    """A batch that failed as a whole: the error envelope, plus (atomic) every job's outcome."""

    data = fields.List(fields.Nested(BatchItemSchema),
                       metadata={"description": "atomic: each job's outcome (rolled back, not created, its error)"})
