"""The shapes of the API's answers, for the OpenAPI document (the views build plain dicts)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate



class FieldErrorSchema(Schema):
    field = fields.String(required=True, metadata={"description": "JSON pointer into the request body"})
    message = fields.String(required=True)


class ErrorSchema(Schema):
    """Run:AI's error model (status, message, details) plus the list of field errors."""

    status = fields.Integer(required=True)
    message = fields.String(required=True)
    details = fields.String(required=True)
    errors = fields.List(fields.Nested(FieldErrorSchema), required=True)
    failedObject = fields.String(metadata={"description": "the object whose creation failed"})
    leftBehind = fields.List(fields.String(), metadata={"description": "objects the rollback could not delete"})


class ObjectRefSchema(Schema):
    kind = fields.String(required=True)
    name = fields.String(required=True)


class SubmitResponseSchema(Schema):
    name = fields.String(required=True, metadata={"description": "the job's final name"})
    project = fields.String(required=True)
    namespace = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "RunaiJob or Job"})
    objects = fields.List(fields.Nested(ObjectRefSchema), required=True)
    manifests = fields.List(fields.Dict(), metadata={"description": "only with ?dryRun=true"})
    defaulted = fields.List(fields.String(), metadata={
        "description": "the job fields the admin policy's defaults filled in"})
    warnings = fields.List(fields.String(), metadata={
        "description": "the API server's warnings (Warning headers), e.g. Pod Security \"would violate ...\""})


class JobViewSchema(Schema):
    name = fields.String(required=True)
    project = fields.String(required=True)
    namespace = fields.String(required=True)
    user = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(["Train", "Interactive"]))
    kind = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(
        ["Pending", "Running", "Succeeded", "Failed", "Unknown", "Suspended"]),
        metadata={"description": "from the workload and its pods"})
    createdAt = fields.Integer(required=True, metadata={"description": "epoch milliseconds"})
    images = fields.List(fields.String(), required=True)
    requestedGPUs = fields.Float(required=True)
    uid = fields.String(required=True)
    # Job insight: the one explanation a user needs, from a fixed vocabulary (README "Job insight").
    statusReason = fields.String(metadata={"description": "why the job is in its status; empty: nothing to say"})


class JobListSchema(Schema):
    data = fields.List(fields.Nested(JobViewSchema), required=True)



class DeleteResultSchema(Schema):
    name = fields.String(required=True, allow_none=True)
    project = fields.String(required=True, allow_none=True)
    ok = fields.Boolean(required=True)
    deleted = fields.List(fields.String())
    error = fields.Nested(ErrorSchema, allow_none=True, metadata={"description": "null when ok"})


class ProjectSchema(Schema):
    name = fields.String(required=True)
    namespace = fields.String(required=True)


class ProjectListSchema(Schema):
    data = fields.List(fields.Nested(ProjectSchema), required=True)


class VersionSchema(Schema):
    version = fields.String(required=True, metadata={"description": "this service's version"})
    kubernetes = fields.String(required=True, metadata={"description": "the API server's gitVersion"})
    backend = fields.String(required=True)


class HealthSchema(Schema):
    status = fields.String(required=True)
    backend = fields.String()
    details = fields.String()
