"""Path and query parameters: the views load them with these schemas, and the OpenAPI document is made of them.

One schema per set of parameters, so that what a view checks and what the document promises cannot drift.
Unknown query parameters are ignored (``EXCLUDE``), as HTTP services usually do, unless they differ from a
declared one only in case (``QuerySchema``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validates_schema

from ..render import names
from .fields import MSG_DNS1123, MSG_SUBDOMAIN, Ref, StrictString, name_rule

TRUE, FALSE = "true", "false"


class QueryFlag(fields.Field):
    """A boolean query parameter: exactly ``true`` or ``false``; absent is false.

    Stricter than it used to be (1/0, yes/no, all and an empty value were read as booleans): a generated client
    sends true/false, and anything else is more likely a mistake than a wish, so it is a 400 naming the value.
    """

    default_error_messages = {"invalid": "must be true or false"}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool:
        if value == TRUE:
            return True
        if value == FALSE:
            return False
        raise ValidationError(f"must be true or false, not {value!r}")

    def openapi(self, ref: Ref) -> dict:
        return {"type": "boolean", "default": False}


def project_field(**kwargs: Any) -> StrictString:
    return StrictString(validate=name_rule(names.DNS1123_LABEL, MSG_DNS1123, names.MAX_LABEL), **kwargs)


class ProjectPathSchema(Schema):
    project = project_field(required=True, metadata={"description": "the project (a DNS-1123 label)"})


class JobNamePathSchema(Schema):
    name = StrictString(required=True, validate=name_rule(names.DNS1123_SUBDOMAIN, MSG_SUBDOMAIN, names.MAX_SUBDOMAIN),
                        metadata={"description": "the job's name (a Kubernetes object name)"})


class JobPathSchema(ProjectPathSchema, JobNamePathSchema):
    """``/{project}/{name}``."""


class QuerySchema(Schema):
    """Query parameters: unknown ones are ignored (marshmallow's Meta options are inherited), except one that
    differs from a parameter of the operation only in case: ``?dryrun=true`` would otherwise create the job."""

    class Meta:
        unknown = EXCLUDE

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _no_misspelt_parameter(self, data: Mapping[str, Any], original: Mapping[str, Any], **kwargs: Any) -> None:
        names = [field.data_key or name for name, field in self.load_fields.items()]  # as they are sent
        declared = {name.casefold(): name for name in names}
        problems = {given: [f"is not a parameter; did you mean {declared[given.casefold()]!r}? (names are "
                            "case-sensitive)"]
                    for given in original if given.casefold() in declared and given not in names}
        if problems:
            raise ValidationError(problems)


class UserFilterSchema(QuerySchema):
    user = fields.String(metadata={"description": "only the jobs this RA-USER submitted (exact match)"})


class ListQuerySchema(UserFilterSchema):
    project = project_field(metadata={"description": "only this project's jobs (all projects without it)"})


class SubmitQuerySchema(QuerySchema):
    dryRun = QueryFlag(metadata={"description": "validate, render and dry-run every object on the API server; "
                                               "create nothing and answer the manifests. Exactly true or false."})


class DeleteQuerySchema(QuerySchema):
    deletePvcs = QueryFlag(metadata={"description": "also delete the claims the job created. Exactly true or "
                                                    "false."})


class QueryInteger(fields.Field):
    """A whole-number query parameter from ``minimum`` to ``maximum``: ASCII digits only (no sign, no spaces)."""

    def __init__(self, minimum: int, maximum: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.minimum, self.maximum = minimum, maximum

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int:
        digits = isinstance(value, str) and value.isascii() and value.isdigit()
        if not digits or len(value.lstrip("0")) > len(str(self.maximum)) or not self.minimum <= int(value) <= self.maximum:
            raise ValidationError(f"must be a whole number from {self.minimum} to {self.maximum}, not {value!r}")
        return int(value)

    def openapi(self, ref: Ref) -> dict:
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}


def object_name_field(**kwargs: Any) -> StrictString:
    return StrictString(validate=name_rule(names.DNS1123_SUBDOMAIN, MSG_SUBDOMAIN, names.MAX_SUBDOMAIN), **kwargs)


class LogQuerySchema(QuerySchema):
    """``GET /api/v1/job/{project}/{name}/logs``."""

    MAX_TAIL = 1_000_000

    follow = QueryFlag(metadata={"description": "keep streaming new lines. Exactly true or false."})
    tail = QueryInteger(0, MAX_TAIL, metadata={"description": "only the last lines"})
    pod = object_name_field(metadata={"description": "one of the job's pods (default: the newest that has started)"})
    container = object_name_field(metadata={"description": "default: the job's container"})
    previous = QueryFlag(metadata={"description": "the log of the previous instance of a restarted container. "
                                                  "Exactly true or false."})


class PolicyQuerySchema(QuerySchema):
    """``GET /api/v1/policy``."""

    project = project_field(metadata={"description": "the project; without it, the cluster-wide policy"})


class BatchQuerySchema(QuerySchema):
    """``POST /api/v1/jobs/batch``."""

    dryRun = QueryFlag(metadata={"description": "validate, render and dry-run every job on the API server; create "
                                               "nothing. Exactly true or false."})
    atomic = QueryFlag(metadata={"description": "all jobs or none: validate all first, roll back every created job "
                                               "if one fails. Exactly true or false."})
