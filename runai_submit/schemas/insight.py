"""The shapes of the job insight answers (for the OpenAPI document): the detailed job view, its pods and events."""
from __future__ import annotations

from marshmallow import Schema, fields

from .responses import JobViewSchema


class PodViewSchema(Schema):
    name = fields.String(required=True)
    phase = fields.String(required=True, metadata={"description": "Pending, Running, Succeeded, Failed, Unknown"})
    node = fields.String(required=True, metadata={"description": "empty until the pod is scheduled"})
    ready = fields.Boolean(required=True)
    restarts = fields.Integer(required=True)
    reason = fields.String(required=True, metadata={"description": "statusReason vocabulary, or Terminating"})
    message = fields.String(required=True)
    startedAt = fields.Integer(required=True, allow_none=True,
                               metadata={"description": "epoch ms its container first started; null: never started"})
    exitCode = fields.Integer(required=True, allow_none=True)


class EventViewSchema(Schema):
    type = fields.String(required=True, metadata={"description": "Normal or Warning"})
    reason = fields.String(required=True)
    message = fields.String(required=True)
    count = fields.Integer(required=True)
    lastSeen = fields.Integer(required=True, allow_none=True, metadata={"description": "epoch milliseconds"})
    object = fields.String(required=True, metadata={"description": "Kind/name of what the event is about"})


class JobDetailSchema(JobViewSchema):
    """One job in depth: why it is in its status, its pods, and the recent events of the job and its pods."""

    statusReason = fields.String(required=True, metadata={"description": "README 'Job insight'; empty: nothing to say"})
    statusMessage = fields.String(required=True)
    pods = fields.List(fields.Nested(PodViewSchema), required=True, metadata={"description": "newest first"})
    events = fields.List(fields.Nested(EventViewSchema), required=True,
                         metadata={"description": "newest first, at most 50"})
