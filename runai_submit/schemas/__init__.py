"""Marshmallow schemas: the single source of truth for what a request may contain and what an answer holds.

``fields`` holds the strict field types and JSON-pointer errors, ``job`` the submit request, ``responses``
the answers (for the OpenAPI document).
"""
from __future__ import annotations

from .fields import (
    CaseInsensitiveChoice,
    Command,
    Duration,
    Environment,
    Quantity,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    StrictString,
    flatten_errors,
)
from .job import (
    JobRefSchema,
    JobSchema,
    ObjectOrString,
    PortSchema,
    PvcSchema,
    SubmitRequestSchema,
    VolumeMap,
    VolumeSchema,
    load_job_ref,
    load_job_refs,
    load_submit_request,
)
from .responses import (
    DeleteResultSchema,
    ErrorSchema,
    FieldErrorSchema,
    HealthSchema,
    JobListSchema,
    JobViewSchema,
    ObjectRefSchema,
    ProjectListSchema,
    ProjectSchema,
    SubmitResponseSchema,
    VersionSchema,
)

__all__ = [
    "CaseInsensitiveChoice", "Command", "DeleteResultSchema", "Duration", "Environment", "ErrorSchema",
    "FieldErrorSchema", "HealthSchema", "JobListSchema", "JobRefSchema", "JobSchema", "JobViewSchema",
    "ObjectOrString", "ObjectRefSchema", "PortSchema", "ProjectListSchema", "ProjectSchema", "PvcSchema",
    "Quantity", "StrictBoolean", "StrictInteger", "StrictNumber", "StrictString", "SubmitRequestSchema",
    "SubmitResponseSchema", "VersionSchema", "VolumeMap", "VolumeSchema", "flatten_errors", "load_job_ref",
    "load_job_refs", "load_submit_request",
]
