"""Building blocks of the OpenAPI operations that each API module declares beside its views.

Bodies name a component schema (a key of ``COMPONENTS`` in the declaring module) by a bare string;
``openapi.build_openapi`` turns those into ``$ref``s.
"""
from __future__ import annotations

JSON = "application/json"

ERROR = {"description": "Error envelope: status, message, details and field errors.",
         "content": {JSON: {"schema": "Error"}}}


def ok(schema: str | dict, description: str = "OK") -> dict:
    """A 200 answer with ``schema``, and the error envelope for every other status."""
    return {"200": {"description": description, "content": {JSON: {"schema": schema}}}, "default": ERROR}


PROJECT_PATH = {"name": "project", "in": "path", "required": True, "schema": {"type": "string"}}
JOB_NAME_PATH = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
USER_HEADER = {"name": "RA-USER", "in": "header", "required": True, "schema": {"type": "string", "minLength": 1},
               "description": "The submitting user; recorded on the job."}
USER_FILTER = {"name": "user", "in": "query", "schema": {"type": "string"}, "description": "only this user's jobs"}
BOOL_QUERY = {"type": "string", "enum": ["true", "false"]}
