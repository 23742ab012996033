"""Projects, versions, health, readiness and metrics: what operators and tooling ask of the service itself."""
from __future__ import annotations

from flask import Blueprint, Response

from .. import __version__, schemas
from ..metrics import exposition
from .common import service, state
from .spec import CLUSTER, responses

blueprint = Blueprint("system", __name__)


@blueprint.get("/api/v1/projects")
def list_projects() -> dict:
    return {"data": service(require_user=False).projects()}


@blueprint.get("/api/v1/version")
def version() -> dict:
    cluster = state().cluster
    return {"version": __version__, "kubernetes": cluster.version().get("gitVersion", ""), "backend": cluster.backend}


@blueprint.get("/healthz")
def healthz() -> dict:
    """Liveness: the process answers. It does not ask the cluster (a cluster outage is not a restart cause)."""
    return {"status": "ok"}


@blueprint.get("/metrics")
def prometheus_metrics() -> Response:
    body, content_type = exposition()
    return Response(body, content_type=content_type)


@blueprint.get("/readyz")
def readyz() -> dict:
    """Readiness: the API server answered within the ready timeout (the result is cached briefly)."""
    return state().readiness()


def _operation(operation_id: str, summary: str, answers: dict) -> dict:
    return {"get": {"operationId": operation_id, "tags": ["system"], "summary": summary, "responses": answers}}


OPERATIONS: dict[str, dict[str, dict]] = {
    "/api/v1/projects": _operation("listProjects", "Projects this service can submit to",
                                   responses("ProjectList", errors={**CLUSTER})),
    "/api/v1/version": _operation("getVersion", "Service and Kubernetes versions",
                                  responses("Version", errors={**CLUSTER})),
    "/healthz": _operation("liveness", "Liveness: the process answers (the cluster is not asked)",
                           responses("Health", errors={})),
    "/readyz": _operation("readiness", "Readiness: the API server answers",
                          responses("Health", "Ready.", errors={**CLUSTER})),
    "/metrics": _operation("metrics", "Prometheus metrics",
                           responses({"type": "string"}, "Prometheus text format", errors={}, content_type="text/plain")),
}

COMPONENTS = {
    "Project": schemas.ProjectSchema,
    "ProjectList": schemas.ProjectListSchema,
    "Version": schemas.VersionSchema,
    "Health": schemas.HealthSchema,
}
