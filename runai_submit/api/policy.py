"""The admin policy that applies to a project's jobs: ``GET /api/v1/policy?project=P``."""
from __future__ import annotations

from flask import Blueprint, request

from ..schemas.policy import EffectivePolicySchema
from .common import check_project, service
from .spec import ok

blueprint = Blueprint("policy", __name__)


@blueprint.get("/api/v1/policy")
def effective_policy() -> dict:
    """The merged policy of ``?project=`` (project rules replace cluster-wide ones field by field);
    without ``project``, the cluster-wide policy. Read from the service's own file: no cluster call."""
    project = request.args.get("project") or None
    if project is not None:
        check_project(project)
    return service(require_user=False).effective_policy(project)


OPERATIONS: dict[str, dict[str, dict]] = {
    "/api/v1/policy": {"get": {
        "summary": "The effective admin policy of a project",
        "description": "Defaults and rules (required, canEdit, min, max, options, prefixes) per job field, "
                       "as the project's jobs get them: a project's rule replaces the cluster-wide rule for "
                       "its field, a project's defaults override the cluster's.",
        "parameters": [{"name": "project", "in": "query", "schema": {"type": "string"},
                        "description": "without it, the cluster-wide policy"}],
        "responses": ok("EffectivePolicy"),
    }},
}

COMPONENTS = {"EffectivePolicy": EffectivePolicySchema}  # its rules are the nested "Rule" schema
