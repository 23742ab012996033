"""Who is calling: ``GET /api/v1/whoami``, and the rule that every ``/api/`` request obeys the auth mode.

The mode itself (README "Security") lives in ``identity.py``; ``common.caller()`` applies it. The hook below
makes sure no ``/api/`` endpoint, present or future, answers in ``token`` or ``impersonate`` mode before the
caller is known, even one that forgets to call ``service()``. The OpenAPI document and docs page stay open,
as do ``/healthz``, ``/readyz`` and ``/metrics`` (outside ``/api/``).
"""
from __future__ import annotations

import copy

from flask import Blueprint, request

from ..schemas.identity import WhoAmISchema
from .common import caller, service, settings
from .spec import CLUSTER, NEEDS_USER, RETRY_AFTER_HEADER, responses

blueprint = Blueprint("identity", __name__)

OPEN_PATHS = ("/api/openapi.json", "/api/docs")


@blueprint.before_app_request
def require_identity() -> None:
    """In token and impersonate modes, authenticate every /api/ request up front (401 before any work)."""
    if settings().auth_mode == "header" or request.endpoint is None:
        return  # header mode: each view says whether it needs RA-USER; unknown paths answer 404
    path = request.path
    if path.startswith("/api/") and not any(path == p or path.startswith(p + "/") for p in OPEN_PATHS):
        caller(require_user=False)


@blueprint.get("/api/v1/whoami")
def whoami() -> dict:
    """The identity this service acts with for the caller: the quickest check of a client's set-up."""
    who = caller()
    if who.mode == "impersonate":
        # Ask the cluster: this proves the service may impersonate, and shows the groups the cluster adds.
        seen = service().cluster.whoami()
        return {"user": seen["user"], "groups": seen["groups"], "authMode": who.mode}
    return {"user": who.user, "groups": list(who.groups), "authMode": who.mode}


OPERATIONS: dict[str, dict[str, dict]] = {
    "/api/v1/whoami": {"get": {
        "operationId": "whoami", "tags": ["system"],
        "summary": "Who the service acts as for you",
        "description": "token mode: the token's user and groups (SelfSubjectReview); impersonate mode: the user "
                       "and groups the cluster sees when the service impersonates RA-USER and RA-GROUPS; "
                       "header mode: RA-USER, taken on trust.",
        "responses": responses("WhoAmI", errors={**NEEDS_USER, **CLUSTER}),
    }},
}

COMPONENTS = {"WhoAmI": WhoAmISchema}


# --- the OpenAPI security of each mode -------------------------------------------------------------

SECURITY_SCHEMES = {
    "token": {"bearerToken": {
        "type": "http", "scheme": "bearer",
        "description": "A token the cluster's API server accepts (ServiceAccount token, or an OIDC id-token of "
                       "an issuer the cluster trusts). Every call to the cluster is made with it."}},
    "impersonate": {
        "raUser": {"type": "apiKey", "in": "header", "name": "RA-USER",
                   "description": "Set by the authenticating proxy; the service impersonates this user."},
        "raGroups": {"type": "apiKey", "in": "header", "name": "RA-GROUPS",
                     "description": "Optional, comma-separated; each group is impersonated too."}},
    "header": {"raUser": {"type": "apiKey", "in": "header", "name": "RA-USER",
                          "description": "The user, taken on trust (only behind a proxy that sets it); the "
                                         "service's own rights act."}},
}


def apply_security(document: dict, mode: str) -> dict:
    """Declare ``mode``'s security scheme and which operations need it (everything under /api/)."""
    document = copy.deepcopy(document)
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES[mode]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            headers = {p["name"]: p for p in operation.get("parameters", []) if p.get("in") == "header"}
            if not path.startswith("/api/"):
                operation["security"] = []  # health, readiness, metrics: no credentials
                continue
            if mode != "header":  # [openapi] every /api/ request authenticates: each may answer 401
                _add_unauthorized(operation, mode)
            if mode == "token":
                operation["security"] = [{"bearerToken": []}]
                if "RA-USER" in headers:  # optional now: the token names the user
                    headers["RA-USER"] = dict(headers["RA-USER"], required=False, description=(
                        "Optional in token mode: the token's user is recorded; a different RA-USER is only "
                        "noted in the audit record."))
                    operation["parameters"] = [headers.get(p["name"], p) if p.get("in") == "header" else p
                                               for p in operation["parameters"]]
            elif mode == "impersonate":
                operation["security"] = [{"raUser": [], "raGroups": []}, {"raUser": []}]
            elif headers.get("RA-USER", {}).get("required") or path == "/api/v1/whoami":
                operation["security"] = [{"raUser": []}]
            else:
                operation["security"] = [{}, {"raUser": []}]  # header mode reads: RA-USER optional
    return document


def _add_unauthorized(operation: dict, mode: str) -> None:
    """List the 401 an operation answers when the caller is not known; in token mode also what the token's
    review (a SelfSubjectReview, before anything else) answers when the API server fails it."""
    _add_answer(operation, "401", "No bearer token, or one the cluster refused (WWW-Authenticate: Bearer)."
                if mode == "token" else "RA-USER is missing or blank.")
    if mode == "token":
        _add_answer(operation, "502", f"Reviewing the token: {CLUSTER[502]}")
        _add_answer(operation, "503", f"Reviewing the token: {CLUSTER[503]}",
                    headers={"Retry-After": RETRY_AFTER_HEADER})


def _add_answer(operation: dict, status: str, description: str, *, headers: dict | None = None) -> None:
    """Add an error answer (the error envelope, as every error) unless the operation lists ``status`` already."""
    answers = operation["responses"]
    if status in answers:
        return
    template = next(answer for code, answer in answers.items() if code.startswith(("4", "5")))
    answer = copy.deepcopy(template)
    answer["description"] = description
    answer.setdefault("headers", {}).update(headers or {})
    answers[status] = answer
    operation["responses"] = dict(sorted(answers.items()))
