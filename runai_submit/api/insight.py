"""Job insight: a job's log, and suspending or resuming it. (The detailed job view is ``GET
/api/v1/job/{project}/{name}`` in ``jobs.py``; its use case is ``service.insight.Insight.describe_job``.)"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request, stream_with_context

from ..errors import BadRequest
from ..identity import ra_user
from ..schemas.insight import JobDetailSchema
from ..schemas.params import JobPathSchema, LogQuerySchema
from ..service.insight import BoundedLog, LogRequest
from .common import caller, check_job_ref, parameters, service
from .observability import start_audit
from .spec import BAD_PARAMETER, CLUSTER, NEEDS_USER, USER_HEADER, responses

blueprint = Blueprint("insight", __name__)

#: Set by gunicorn.conf.py (``post_worker_init``) to the worker's ``notify``: see ``BoundedLog``.
HEARTBEAT = "runai_submit.heartbeat"
_LOG_QUERY = LogQuerySchema()


@blueprint.get("/api/v1/job/<project>/<name>/logs")
def job_logs(project: str, name: str) -> Response:
    """The job's container log as text/plain, streamed as the API server sends it."""
    check_job_ref(project, name)
    query = parameters(_LOG_QUERY, request.args, error=BadRequest)
    log_request = LogRequest(follow=query.get("follow", False), tail=query.get("tail"), pod=query.get("pod"),
                             container=query.get("container"), previous=query.get("previous", False))
    opened = service(require_user=False).open_job_log(project, name, log_request)
    chunks = BoundedLog(opened, heartbeat=current_app.extensions.get(HEARTBEAT))
    headers = {
        "X-Pod-Name": opened.pod,
        "X-Container-Name": opened.container,
        "X-Log-Max-Seconds": f"{opened.max_seconds:g}",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        # A proxy that buffers (nginx does by default) would hold a followed log back until it ends.
        "X-Accel-Buffering": "no",
    }
    return Response(stream_with_context(chunks), mimetype="text/plain", headers=headers)


@blueprint.post("/api/v1/job/<project>/<name>/suspend")
def suspend_job(project: str, name: str) -> tuple[dict, int]:
    """Suspend the job (its pods are removed); idempotent. Answers the job view."""
    return _act("suspend", project, name)


@blueprint.post("/api/v1/job/<project>/<name>/resume")
def resume_job(project: str, name: str) -> tuple[dict, int]:
    """Resume a suspended job (its pods are created again); idempotent. Answers the job view."""
    return _act("resume", project, name)


def _act(action: str, project: str, name: str) -> tuple[dict, int]:
    """Suspend or resume, with an audit record either way (HTTP metrics count each endpoint by status)."""
    audit = start_audit(action, ra_user(request.headers) or None)
    audit.update(project=project[:253], job=name[:253])
    jobs = service()
    audit["user"] = caller().user
    check_job_ref(project, name)
    view = jobs.suspend_job(project, name) if action == "suspend" else jobs.resume_job(project, name)
    audit.update(namespace=view["namespace"], job_status=view["status"])
    return view, 200


# --- the OpenAPI description of the views above ----------------------------------------------------

_JOB_PATH = {"in": "path", "schema": JobPathSchema}
_NO_JOB = {404: "The project has no namespace, or it has no such job."}
_ACTION_ERRORS = {**NEEDS_USER, **_NO_JOB, 409: "The job has finished: it can no longer be suspended or resumed.",
                  **BAD_PARAMETER, **CLUSTER}

def _action(operation_id: str, summary: str, effect: str, answer: str) -> dict:
    return {"post": {"operationId": operation_id, "tags": ["jobs"], "summary": summary,
                     "description": f"{effect} Idempotent; 409 for a job that has finished.",
                     "parameters": [USER_HEADER, _JOB_PATH],
                     "responses": responses("JobDetail", answer, errors=_ACTION_ERRORS)}}


OPERATIONS: dict[str, dict[str, dict]] = {
    "/api/v1/job/{project}/{name}/logs": {"get": {
        "operationId": "getJobLogs", "tags": ["jobs"],
        "summary": "The job's container log",
        "description": "text/plain, streamed from the pod log endpoint of the API server. 409 when no pod of the "
                       "job ever started (the message gives the job's statusReason and statusMessage). "
                       "With follow=true the stream ends when the pod ends, or after "
                       "RUNAI_SUBMIT_LOG_FOLLOW_MAX_SECONDS (header X-Log-Max-Seconds).",
        "parameters": [_JOB_PATH, {"in": "query", "schema": LogQuerySchema}],
        "responses": responses({"type": "string"}, "The log, as the container printed it", content_type="text/plain",
                               errors={
            400: "A query parameter is not as documented (tail, follow, previous, pod, container).",
            **_NO_JOB,
            409: "No pod of the job ever started a container, or the API server has no log for it yet.",
            **BAD_PARAMETER, **CLUSTER}),
    }},
    "/api/v1/job/{project}/{name}/suspend": _action(
        "suspendJob", "Suspend a job", "Sets spec.suspend on the workload; the job controller removes its pods.",
        "The job, now Suspended."),
    "/api/v1/job/{project}/{name}/resume": _action(
        "resumeJob", "Resume a suspended job", "Clears spec.suspend; the job controller creates its pods again.",
        "The job, resumed."),
}

# PodView and EventView come along as JobDetail's nested schemas (apispec names them after their classes).
COMPONENTS = {"JobDetail": JobDetailSchema}
