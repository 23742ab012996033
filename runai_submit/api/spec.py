"""Building blocks of the OpenAPI operations that each API module declares beside its views.

Bodies name a component schema (a key of ``COMPONENTS`` in the declaring module) by a bare string;
``openapi.build_openapi`` turns those into ``$ref``s.
"""
from __future__ import annotations

JSON = "application/json"

ERROR = {"description": "Error envelope: status, message, details and field errors.",
         "content": {JSON: {"schema": "Error"}}}


def ok(schema: str | dict, description: str = "OK", *, headers: dict | None = None) -> dict:
    """A 200 answer with ``schema`` (and ``headers``), and the error envelope for every other status."""
    answer: dict = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return {"200": answer, "default": ERROR}


PROJECT_PATH = {"name": "project", "in": "path", "required": True, "schema": {"type": "string"}}
JOB_NAME_PATH = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
USER_HEADER = {"name": "RA-USER", "in": "header", "required": True, "schema": {"type": "string", "minLength": 1},
               "description": "The submitting user; recorded on the job."}
USER_FILTER = {"name": "user", "in": "query", "schema": {"type": "string"}, "description": "only this user's jobs"}
BOOL_QUERY = {"type": "string", "enum": ["true", "false"]}

# --- idempotency (issue 12) ---
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
    "description": "Makes a retry safe: the first request with a key creates the job; a repeat with the same "
                   "key and job creates nothing and gets the first answer (with Idempotent-Replayed: true). "
                   "Scoped to the user and project. A different job under a used key is a 422.",
}
REPLAYED = {"Idempotent-Replayed": {"description": "true when the answer replays an earlier request with the "
                                                   "same Idempotency-Key; nothing was created",
                                    "schema": {"type": "string", "enum": ["true"]}}}
