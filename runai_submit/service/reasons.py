"""Why a job is where it is: its status, the one reason a user needs and its message, from the workload, its
pods and their events. Pure functions of API objects (dicts), so a table of states tests them all.

Kubernetes references: Job conditions https://kubernetes.io/docs/concepts/workloads/controllers/job/#job-termination-and-cleanup,
pod phases and container states https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .jobs import _epoch_ms, job_status

#: The fixed vocabulary of ``statusReason`` (the README's "Job insight" section lists the same, a test checks).
#: Empty means there is nothing to say (a running job, a job just created).
REASONS: dict[str, str] = {
    "Completed": "the job finished successfully",
    "BackoffLimitExceeded": "the job failed: too many of its pods failed; the message names the last failure",
    "DeadlineExceeded": "the job failed: it ran longer than its active deadline",
    "JobFailed": "the job failed for another reason the controller gives (the message starts with it)",
    "Suspended": "the job is suspended: it has no pods until it is resumed",
    "FailedCreate": "the controller cannot create the job's pods (quota, Pod Security, admission); its message",
    "Unschedulable": "the scheduler found no node for a pod; the scheduler's own message",
    "WaitingForScheduler": "a pod exists but no scheduler has looked at it; the message names its schedulerName",
    "ContainerCreating": "a pod is on a node and its container is being created (image pull, volumes)",
    "ImagePullBackOff": "the image cannot be pulled; the kubelet backs off between tries",
    "ErrImagePull": "the last pull of the image failed",
    "InvalidImageName": "the image name cannot be parsed",
    "CreateContainerConfigError": "the container cannot be configured (e.g. a missing secret or key)",
    "ContainerError": "the container cannot be created or started; the message starts with the kubelet's reason",
    "CrashLoopBackOff": "the container keeps exiting and is restarted with a back-off",
    "OOMKilled": "the container used more memory than its limit and was killed",
    "Error": "a container exited with a non-zero code (in the message), or the pod failed (e.g. Evicted)",
}

PENDING, RUNNING, SUCCEEDED, FAILED, UNKNOWN, SUSPENDED = (
    "Pending", "Running", "Succeeded", "Failed", "Unknown", "Suspended")
#: Every ``status`` a job can have.
STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED, UNKNOWN, SUSPENDED)

# Kubelet waiting reasons reported as they are; other waiting reasons become ContainerError.
_WAITING_REASONS = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                    "CreateContainerConfigError")
_CREATING = ("ContainerCreating", "PodInitializing")
# When several pods say something, the first of these wins: what blocks the job most directly.
_PRECEDENCE = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
               "CreateContainerConfigError", "ContainerError", "Unschedulable", "WaitingForScheduler",
               "ContainerCreating")
_FAILED_REASONS = ("BackoffLimitExceeded", "DeadlineExceeded")


@dataclass(frozen=True)
class Explanation:
    """A job's status with the reason (from ``REASONS``, or empty) and a message for people."""

    status: str
    reason: str = ""
    message: str = ""


# --- one job --------------------------------------------------------------------------------------------


def explain_job(workload: dict, pods: list[dict] | None, events: list[dict] | None = None) -> Explanation:
    """Status and reason of a job from its workload, its pods (None: not read) and events (None: not read).

    Order: finished (conditions) > suspended > a pod in trouble > the controller failing to create pods >
    the last failed pod while the job waits to retry > nothing to say.
    """
    spec = workload.get("spec") or {}
    conditions = _true_conditions(workload.get("status") or {})
    known_pods = sorted(pods or [], key=_newest_first)
    failed = [pod for pod in known_pods if _phase(pod) == "Failed"]
    complete = conditions.get("Complete") or conditions.get("SuccessCriteriaMet")
    if complete is not None:
        return Explanation(SUCCEEDED, "Completed", complete.get("message") or _completed(workload))
    failure = conditions.get("Failed") or conditions.get("FailureTarget")
    if failure is not None:
        return _failed(failure, failed)
    if spec.get("suspend") is True:
        return Explanation(SUSPENDED, "Suspended", "The job is suspended: it runs no pods until it is resumed.")

    active = [pod for pod in known_pods
              if _phase(pod) not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")]
    status = _running_status(workload, pods, active)
    troubles = [pod_explanation(pod) for pod in active]
    ranked = sorted((_PRECEDENCE.index(reason), order, reason, message)
                    for order, (reason, message) in enumerate(troubles) if reason in _PRECEDENCE)
    if ranked:
        _, _, reason, message = ranked[0]
        return Explanation(status, reason, message)
    failed_create = _failed_create(workload, events or [])
    if failed_create is not None:
        return Explanation(status, "FailedCreate", failed_create)
    if not active and failed:
        reason, message = pod_explanation(failed[0])
        return Explanation(status, reason, message)
    return Explanation(status)


def _running_status(workload: dict, pods: list[dict] | None, active: list[dict]) -> str:
    """Running when a pod runs (or the workload counts a ready one); Unknown only when nothing is known.

    Without the pods, the workload's own status decides (``job_status``, which also takes an active pod of
    a cluster too old to count ready ones for running); with them, a pod's phase is the better witness.
    """
    from_workload = job_status(workload)
    if pods is None:
        return from_workload
    if (workload.get("status") or {}).get("ready") or any(_phase(pod) == "Running" for pod in active):
        return RUNNING
    if from_workload == UNKNOWN and not pods:
        return UNKNOWN
    return PENDING


def _failed(condition: dict, failed_pods: list[dict]) -> Explanation:
    cause = condition.get("reason") or ""
    reason = cause if cause in _FAILED_REASONS else "JobFailed"
    message = condition.get("message") or cause or "The job failed."
    if reason == "JobFailed" and cause and not message.startswith(cause):
        message = f"{cause}: {message}"
    if failed_pods:
        _, last = pod_explanation(failed_pods[0])
        if last:
            message = f"{message.rstrip('.')}. Last failure: {last}"
    return Explanation(FAILED, reason, message)


def _completed(workload: dict) -> str:
    succeeded = (workload.get("status") or {}).get("succeeded") or 0
    return f"The job completed: {succeeded} pod{'' if succeeded == 1 else 's'} succeeded."


def _failed_create(workload: dict, events: list[dict]) -> str | None:
    """The message of the controller's newest FailedCreate, unless a pod was created successfully since."""
    uid = (workload.get("metadata") or {}).get("uid")
    creates = [event for event in events
               if (event.get("involvedObject") or {}).get("uid") == uid
               and event.get("reason") in ("FailedCreate", "SuccessfulCreate")]
    if not creates:
        return None
    # On a tie (timestamps have one-second resolution) the failure wins: some pod could not be created.
    newest = max(creates, key=lambda event: (_last_seen(event) or 0, event.get("reason") == "FailedCreate"))
    return (newest.get("message") or "") if newest.get("reason") == "FailedCreate" else None


def _true_conditions(status: dict) -> dict[str, dict]:
    return {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}


# --- one pod --------------------------------------------------------------------------------------------


def pod_explanation(pod: dict) -> tuple[str, str]:
    """(reason, message) of one pod in the vocabulary of ``REASONS``, plus Terminating for a pod being deleted
    (never a job's reason: such a pod no longer counts); ("", "") when there is nothing to say."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    name = meta.get("name", "")
    statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    for container in statuses:
        waiting = (container.get("state") or {}).get("waiting") or {}
        kubelet_reason = waiting.get("reason") or ""
        if not kubelet_reason or kubelet_reason in _CREATING:
            continue
        message = waiting.get("message") or ""
        if kubelet_reason not in _WAITING_REASONS:
            return "ContainerError", f"{kubelet_reason}: {message}" if message else kubelet_reason
        if kubelet_reason == "CrashLoopBackOff":
            last = ((container.get("lastState") or {}).get("terminated")) or {}
            if "exitCode" in last:
                message = f"{message} (last exit code {last['exitCode']}{_reason_suffix(last)})".strip()
        return kubelet_reason, message
    phase = _phase(pod)
    for container in statuses:
        terminated = (container.get("state") or {}).get("terminated") or {}
        if terminated.get("reason") == "OOMKilled":
            limit = _memory_limit(spec, container.get("name", ""))
            return "OOMKilled", (f"Container {container.get('name', '')} of pod {name} used more memory than its "
                                 f"limit{f' ({limit})' if limit else ''} and was killed (exit code "
                                 f"{terminated.get('exitCode', 137)}).")
        if terminated.get("exitCode"):
            detail = terminated.get("message") or ""
            return "Error", (f"Container {container.get('name', '')} of pod {name} exited with code "
                             f"{terminated['exitCode']}{_reason_suffix(terminated)}{': ' + detail if detail else '.'}")
    if phase == "Failed":
        why = ": ".join(part for part in (status.get("reason"), status.get("message")) if part)
        return "Error", f"Pod {name} failed{': ' + why if why else '.'}"
    if phase == "Succeeded":
        return "Completed", ""
    if meta.get("deletionTimestamp"):
        return "Terminating", f"Pod {name} is being deleted."
    if phase != "Pending":
        return "", ""
    if not spec.get("nodeName"):
        scheduled = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        if scheduled is None or scheduled.get("reason") == "SchedulingGated":
            scheduler = spec.get("schedulerName") or "default-scheduler"
            gated = f" ({scheduled.get('message')})" if scheduled is not None and scheduled.get("message") else ""
            return "WaitingForScheduler", (f"No scheduler has taken pod {name} yet{gated}: it asks for scheduler "
                                           f"{scheduler!r}; if this lasts, that scheduler may not run in this "
                                           "cluster.")
        if scheduled.get("status") == "False":
            return "Unschedulable", scheduled.get("message") or scheduled.get("reason") or ""
        return "", ""
    creating = next((((c.get("state") or {}).get("waiting") or {}).get("message") for c in statuses
                     if ((c.get("state") or {}).get("waiting") or {}).get("message")), "")
    return "ContainerCreating", (f"Pod {name} is on node {spec['nodeName']}; its container is being created"
                                 f"{': ' + creating if creating else '.'}")


def _reason_suffix(terminated: dict) -> str:
    reason = terminated.get("reason") or ""
    return f", {reason}" if reason and reason != "Error" else ""


def _memory_limit(spec: dict, container_name: str) -> str:
    for container in spec.get("containers") or []:
        if container.get("name") == container_name:
            return str(((container.get("resources") or {}).get("limits") or {}).get("memory") or "")
    return ""


def pod_view(pod: dict) -> dict:
    """One pod as the job view shows it."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    reason, message = pod_explanation(pod)
    containers = status.get("containerStatuses") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return {
        "name": meta.get("name", ""),
        "phase": _phase(pod),
        "node": spec.get("nodeName") or "",
        "ready": ready,
        "restarts": sum(int(c.get("restartCount") or 0) for c in containers),
        "reason": reason,
        "message": message,
        "startedAt": started_at(pod),
        "exitCode": _exit_code(containers),
    }


def started_at(pod: dict) -> int | None:
    """When a container of the pod first started (epoch ms), or None when none ever did: then it has no log."""
    moments = []
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        for state in ((container.get("state") or {}), (container.get("lastState") or {})):
            for key in ("running", "terminated"):
                moment = _epoch_ms((state.get(key) or {}).get("startedAt"))
                if moment:
                    moments.append(moment)
    return min(moments) if moments else None


def _exit_code(containers: list[dict]) -> int | None:
    for key in ("state", "lastState"):
        for container in containers:
            terminated = (container.get(key) or {}).get("terminated")
            if terminated and "exitCode" in terminated:
                return int(terminated["exitCode"])
    return None


def _phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or "Pending"


def _newest_first(pod: dict) -> tuple:
    meta = pod.get("metadata") or {}
    return (-_epoch_ms(meta.get("creationTimestamp")), meta.get("name", ""))


def pods_of(workload: dict, pods: list[dict]) -> list[dict]:
    """The workload's own pods, newest first: owned by its uid, or (without owner) labelled with its name.

    The uid tells this job's pods from those of an earlier job of the same name that are still going.
    """
    meta = workload.get("metadata") or {}
    own = []
    for pod in pods:
        pod_meta = pod.get("metadata") or {}
        owners = pod_meta.get("ownerReferences") or []
        if owners:
            if any(owner.get("uid") == meta.get("uid") for owner in owners):
                own.append(pod)
        elif (pod_meta.get("labels") or {}).get("release") == meta.get("name"):
            own.append(pod)
    return sorted(own, key=_newest_first)


# --- events ---------------------------------------------------------------------------------------------


def event_view(event: dict) -> dict:
    """One event as the job view shows it; ``object`` is ``Kind/name`` of what it is about."""
    involved = event.get("involvedObject") or {}
    series = event.get("series") or {}
    return {
        "type": event.get("type") or "",
        "reason": event.get("reason") or "",
        "message": event.get("message") or "",
        "count": int(series.get("count") or event.get("count") or 1),
        "lastSeen": _last_seen(event),
        "object": f"{involved.get('kind', '')}/{involved.get('name', '')}",
    }


def recent_events(events: list[dict], limit: int = 50) -> list[dict]:
    """The newest ``limit`` events, newest first, each once (the same event may be read twice)."""
    unique = {(event.get("metadata") or {}).get("uid") or id(event): event for event in events}
    newest = sorted(unique.values(), key=lambda event: (_last_seen(event) or 0, _written(event)), reverse=True)
    return [event_view(event) for event in newest[:limit]]


def _written(event: dict) -> int:
    """Tie-break for events of the same second: the order the API server stored them in. resourceVersion is
    opaque by contract, but etcd's revisions grow, and a wrong guess only swaps two lines of the same second."""
    version = (event.get("metadata") or {}).get("resourceVersion") or ""
    return int(version) if version.isdigit() else 0


def _last_seen(event: dict) -> int | None:
    """Epoch ms of the event's last occurrence. Old-style events (controllers) carry lastTimestamp; new-style
    ones (the scheduler, events.k8s.io) carry eventTime and, once repeated, series.lastObservedTime."""
    series: Any = event.get("series") or {}
    for moment in (series.get("lastObservedTime"), event.get("lastTimestamp"), event.get("eventTime"),
                   event.get("firstTimestamp"), (event.get("metadata") or {}).get("creationTimestamp")):
        if moment:
            return _epoch_ms(moment) or None
    return None
