"""Building blocks of the OpenAPI operations that each API module declares beside its views.

Bodies name a component schema (a key of ``COMPONENTS`` in the declaring module) by a bare string;
``openapi.build_openapi`` turns those into ``$ref``s. Parameters are Marshmallow schemas (``schemas.params``),
the same ones the views load them with; apispec expands each field into one parameter.

Every operation lists each status it can answer (``responses``): the success, the errors its view and the
cluster can raise, and 500 (a bug, never expected). The error envelope is one schema for all of them.
"""
from __future__ import annotations

from ..identity import USER_HEADER as USER_HEADER_NAME
from ..schemas.fields import SPACE_CHARS
from ..schemas.params import JobNamePathSchema, ProjectPathSchema, UserFilterSchema

JSON = "application/json"
REQUEST_ID = "X-Request-ID"

# Answers every operation may give; an operation adds its own with ``responses(..., errors={...})``.
UNEXPECTED = {500: "An unexpected error (a bug): logged with the request id; the answer says nothing more."}
CLUSTER = {
    403: "The API server refused the service's request (RBAC, quota).",
    502: "The API server answered with an unexpected error.",
    503: "The API server is unreachable, timed out or kept throttling; retry after Retry-After seconds.",
}
NEEDS_USER = {401: f"{USER_HEADER_NAME} is missing or blank."}
BAD_PARAMETER = {422: "A path or query parameter breaks its rule (pattern, length); errors name it (/project)."}

# Response headers, registered once as components by ``openapi.build_openapi``.
HEADERS = {
    REQUEST_ID: {"description": "The request's id: the caller's own (printable ASCII, at most 128 characters) or a "
                                "new one; every log line of the request carries it.",
                 "schema": {"type": "string", "minLength": 1, "maxLength": 128}, "required": True},
    "Retry-After": {"description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer", "minimum": 1}, "required": True},
    "Retry-After-Optional": {"description": "When present: seconds to wait before trying again.",
                             "schema": {"type": "integer", "minimum": 1}, "required": False},
}
_REQUEST_ID_HEADER = {"$ref": f"#/components/headers/{REQUEST_ID}"}
RETRY_AFTER_HEADER = {"$ref": "#/components/headers/Retry-After"}


def responses(schema: str | dict, description: str = "OK", *, errors: dict[int, str],
              content_type: str = JSON, headers: dict[int, dict] | None = None, error_schema: str = "Error") -> dict:
    """The 200 answer with ``schema`` and each error status of ``errors`` (plus 500) with the error envelope
    (``error_schema``); ``headers`` adds response headers by status."""
    extra = headers or {}
    answers = {"200": {"description": description, "headers": {REQUEST_ID: _REQUEST_ID_HEADER, **extra.get(200, {})},
                       "content": {content_type: {"schema": schema}}}}
    for status, text in sorted({**errors, **UNEXPECTED}.items()):
        status_headers = {REQUEST_ID: _REQUEST_ID_HEADER, **extra.get(status, {})}
        if status == 503:
            status_headers["Retry-After"] = RETRY_AFTER_HEADER
        answers[str(status)] = {"description": text, "headers": status_headers,
                                "content": {JSON: {"schema": error_schema}}}
    return answers


USER_HEADER = {
    "name": USER_HEADER_NAME, "in": "header", "required": True,
    # Blank (only whitespace, as str.strip() sees it) counts as missing: at least one other character.
    "schema": {"type": "string", "minLength": 1, "pattern": f"[^{SPACE_CHARS}]"},
    "description": "The submitting user; recorded on the job (annotation user, label runai/user) and in the "
                   "audit log.",
}

# Parameters, each a Marshmallow schema of ``schemas.params`` (apispec makes one parameter per field).
PROJECT_PATH = {"in": "path", "schema": ProjectPathSchema}
JOB_NAME_PATH = {"in": "path", "schema": JobNamePathSchema}
USER_FILTER = {"in": "query", "schema": UserFilterSchema}
BOOL_QUERY = {"type": "boolean", "default": False}  # how QueryFlag documents itself


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
# A 409 for a key whose job is still being created or deleted says when to retry (not every 409 does).
RETRY_AFTER_409 = {409: {"Retry-After": {"$ref": "#/components/headers/Retry-After-Optional"}}}
