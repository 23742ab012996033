"""Job insight: a job's log, and suspending or resuming it. (The detailed job view is ``GET
/api/v1/job/{project}/{name}`` in ``jobs.py``; its use case is ``service.insight.Insight.describe_job``.)"""
from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, request, stream_with_context

from ..errors import BadRequest
from ..render.names import DNS1123_SUBDOMAIN
from ..schemas.insight import JobDetailSchema
from ..service.insight import BoundedLog, LogRequest
from .common import caller, check_job_ref, flag, service
from .observability import start_audit
from .spec import BOOL_QUERY, JOB_NAME_PATH, PROJECT_PATH, USER_HEADER, ok

blueprint = Blueprint("insight", __name__)

#: Set by gunicorn.conf.py (``post_worker_init``) to the worker's ``notify``: see ``BoundedLog``.
HEARTBEAT = "runai_submit.heartbeat"
_MAX_TAIL = 1_000_000


@blueprint.get("/api/v1/job/<project>/<name>/logs")
def job_logs(project: str, name: str) -> Response:
    """The job's container log as text/plain, streamed as the API server sends it."""
    check_job_ref(project, name)
    log_request = LogRequest(follow=flag("follow"), tail=_tail(), pod=_name_param("pod"),
                             container=_name_param("container"), previous=flag("previous"))
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
    audit = start_audit(action, request.headers.get("RA-USER", "").strip() or None)
    audit.update(project=project[:253], job=name[:253])
    jobs = service()
    audit["user"] = caller().user
    check_job_ref(project, name)
    view = jobs.suspend_job(project, name) if action == "suspend" else jobs.resume_job(project, name)
    audit.update(namespace=view["namespace"], job_status=view["status"])
    return view, 200


def _tail() -> int | None:
    raw = request.args.get("tail", "").strip()
    if not raw:
        return None
    if not re.fullmatch(r"[0-9]{1,7}", raw) or int(raw) > _MAX_TAIL:
        raise BadRequest(f"Query parameter tail must be a whole number of lines from 0 to {_MAX_TAIL}, not {raw!r}.")
    return int(raw)


def _name_param(name: str) -> str | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    if not DNS1123_SUBDOMAIN.match(value) or len(value) > 253:
        raise BadRequest(f"Query parameter {name} must be a {name} name, not {value!r}.")
    return value


# --- the OpenAPI description of the views above ----------------------------------------------------

_ACTION_PARAMETERS = [USER_HEADER, PROJECT_PATH, JOB_NAME_PATH]

OPERATIONS: dict[str, dict[str, dict]] = {
    "/api/v1/job/{project}/{name}/logs": {"get": {
        "summary": "The job's container log",
        "description": "text/plain, streamed from the pod log endpoint of the API server. 409 when no pod of the "
                       "job ever started (the message gives the job's statusReason and statusMessage). "
                       "With follow=true the stream ends when the pod ends, or after "
                       "RUNAI_SUBMIT_LOG_FOLLOW_MAX_SECONDS (header X-Log-Max-Seconds).",
        "parameters": [
            PROJECT_PATH, JOB_NAME_PATH,
            {"name": "follow", "in": "query", "schema": BOOL_QUERY, "description": "keep streaming new lines"},
            {"name": "tail", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": _MAX_TAIL},
             "description": "only the last lines"},
            {"name": "pod", "in": "query", "schema": {"type": "string"},
             "description": "one of the job's pods (default: the newest that has started)"},
            {"name": "container", "in": "query", "schema": {"type": "string"},
             "description": "default: the job's container"},
            {"name": "previous", "in": "query", "schema": BOOL_QUERY,
             "description": "the log of the previous instance of a restarted container"},
        ],
        "responses": {"200": {"description": "The log, as the container printed it",
                              "content": {"text/plain": {"schema": {"type": "string"}}}},
                      "default": ok("JobDetail")["default"]},
    }},
    "/api/v1/job/{project}/{name}/suspend": {"post": {
        "summary": "Suspend a job",
        "description": "Sets spec.suspend on the workload; the job controller removes its pods. Idempotent; 409 "
                       "for a job that has finished.",
        "parameters": _ACTION_PARAMETERS, "responses": ok("JobDetail", "The job, now Suspended."),
    }},
    "/api/v1/job/{project}/{name}/resume": {"post": {
        "summary": "Resume a suspended job",
        "description": "Clears spec.suspend; the job controller creates its pods again. Idempotent; 409 for a "
                       "job that has finished.",
        "parameters": _ACTION_PARAMETERS, "responses": ok("JobDetail"),
    }},
}

# PodView and EventView come along as JobDetail's nested schemas (apispec names them after their classes).
COMPONENTS = {"JobDetail": JobDetailSchema}
