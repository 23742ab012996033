"""The admin policy that applies to a project's jobs: ``GET /api/v1/policy?project=P``."""
from __future__ import annotations

from flask import Blueprint, request

from ..schemas.params import PolicyQuerySchema
from ..schemas.policy import EffectivePolicySchema
from .common import parameters, service
from .spec import BAD_PARAMETER, responses

blueprint = Blueprint("policy", __name__)
_QUERY = PolicyQuerySchema()


@blueprint.get("/api/v1/policy")
def effective_policy() -> dict:
    """The merged policy of ``?project=`` (project rules replace cluster-wide ones field by field);
    without ``project``, the cluster-wide policy. Read from the service's own file: no cluster call."""
    project = parameters(_QUERY, request.args).get("project")
    return service(require_user=False).effective_policy(project)


OPERATIONS: dict[str, dict[str, dict]] = {
    "/api/v1/policy": {"get": {
        "operationId": "getPolicy", "tags": ["system"],
        "summary": "The effective admin policy of a project",
        "description": "Defaults and rules (required, canEdit, min, max, options, prefixes) per job field, "
                       "as the project's jobs get them: a project's rule replaces the cluster-wide rule for "
                       "its field, a project's defaults override the cluster's.",
        "parameters": [{"in": "query", "schema": PolicyQuerySchema}],
        "responses": responses("EffectivePolicy", errors={**BAD_PARAMETER}),
    }},
}

COMPONENTS = {"EffectivePolicy": EffectivePolicySchema}  # its rules are the nested "Rule" schema
