"""Job insight, the pure part: from workload, pod and event states to status, statusReason and statusMessage.

The states below are shaped like what a v1.28 API server stores (tests/test_real_insight.py shows the real
ones for the cases the control plane kit can produce: Unschedulable, WaitingForScheduler, FailedCreate,
Suspended).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from runai_submit.service.reasons import (
    REASONS,
    STATUSES,
    event_view,
    explain_job,
    pod_explanation,
    pod_view,
    pods_of,
    recent_events,
    started_at,
)

JOB_UID = "job-uid"
T0, T1, T2 = "2026-01-01T10:00:00Z", "2026-01-01T10:00:05Z", "2026-01-01T10:00:09Z"


def job(status: dict | None = None, *, suspend: bool | None = None, uid: str = JOB_UID, name: str = "train") -> dict:
    spec: dict = {"template": {"spec": {"containers": [{"name": name, "image": "busybox"}]}}}
    if suspend is not None:
        spec["suspend"] = suspend
    workload = {"apiVersion": "batch/v1", "kind": "Job", "spec": spec,
                "metadata": {"name": name, "namespace": "runai-team-a", "uid": uid, "creationTimestamp": T0}}
    if status is not None:
        workload["status"] = status
    return workload


def pod(name: str = "train-abcde", phase: str = "Pending", *, node: str = "", conditions: list | None = None,
        state: dict | None = None, last_state: dict | None = None, created: str = T1, owner: str | None = JOB_UID,
        deleting: bool = False, scheduler: str = "runai-scheduler", memory_limit: str = "", restarts: int = 0,
        reason: str = "", message: str = "") -> dict:
    container = {"name": "train", "image": "busybox"}
    if memory_limit:
        container["resources"] = {"limits": {"memory": memory_limit}}
    meta: dict = {"name": name, "namespace": "runai-team-a", "uid": f"uid-{name}", "creationTimestamp": created,
                  "labels": {"release": "train", "app": "runaijob"}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": "train", "uid": owner,
                                    "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = T2
    status: dict = {"phase": phase}
    if conditions is not None:
        status["conditions"] = conditions
    if reason:
        status["reason"], status["message"] = reason, message
    if state is not None or last_state is not None:
        status["containerStatuses"] = [{"name": "train", "restartCount": restarts, "state": state or {},
                                        "lastState": last_state or {}}]
    spec = {"schedulerName": scheduler, "containers": [container]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def event(reason: str, message: str, *, uid: str = JOB_UID, kind: str = "Job", name: str = "train",
          last: str | None = T1, type: str = "Normal", version: str = "1") -> dict:
    return {"metadata": {"name": f"{name}.{reason}", "uid": f"ev-{reason}-{last}-{uid}", "resourceVersion": version},
            "involvedObject": {"kind": kind, "name": name, "uid": uid}, "reason": reason, "message": message,
            "type": type, "count": 1, "lastTimestamp": last, "firstTimestamp": last, "eventTime": None}


def scheduled_false(reason: str, message: str) -> list[dict]:
    return [{"type": "PodScheduled", "status": "False", "reason": reason, "message": message}]


def waiting(reason: str, message: str = "") -> dict:
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


def terminated(code: int, reason: str = "Error", message: str = "") -> dict:
    return {"terminated": {"exitCode": code, "reason": reason, "startedAt": T1, "finishedAt": T2,
                           **({"message": message} if message else {})}}


QUOTA = ('Error creating: pods "train-x6jv8" is forbidden: exceeded quota: q, requested: pods=1, used: pods=0, '
         "limited: pods=0")
NO_NODES = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available."
RUNNING = {"running": {"startedAt": T1}}

# (id, workload, pods, events, status, statusReason, a piece of statusMessage ("" = the message is empty))
TABLE = [
    ("just created", job({}), [], [], "Pending", "", ""),
    ("no status, no pods (no controller)", job(None), [], [], "Unknown", "", ""),
    ("pods not read: the workload's own status", job({"active": 1, "ready": 0}), None, None, "Pending", "", ""),
    ("pods not read, ready", job({"active": 1, "ready": 1}), None, None, "Running", "", ""),
    ("no scheduler looked", job({"active": 1}), [pod()], [], "Pending", "WaitingForScheduler",
     "scheduler 'runai-scheduler'"),
    ("scheduling gates", job({"active": 1}),
     [pod(conditions=scheduled_false("SchedulingGated", "Scheduling is blocked due to non-empty scheduling gates"))],
     [], "Pending", "WaitingForScheduler", "scheduling gates"),
    ("unschedulable: the scheduler's own message", job({"active": 1}),
     [pod(conditions=scheduled_false("Unschedulable", NO_NODES))], [], "Pending", "Unschedulable", NO_NODES),
    ("on a node, container being created", job({"active": 1}),
     [pod(node="gpu-1", state=waiting("ContainerCreating"))], [], "Pending", "ContainerCreating", "node gpu-1"),
    ("image pull back-off", job({"active": 1}),
     [pod(node="gpu-1", state=waiting("ImagePullBackOff", 'Back-off pulling image "nope:1"'))], [],
     "Pending", "ImagePullBackOff", 'Back-off pulling image "nope:1"'),
    ("image pull error", job({"active": 1}),
     [pod(node="gpu-1", state=waiting("ErrImagePull", "rpc error: not found"))], [], "Pending", "ErrImagePull",
     "rpc error: not found"),
    ("invalid image name", job({"active": 1}),
     [pod(node="gpu-1", state=waiting("InvalidImageName", 'couldn\'t parse image reference "UP"'))], [],
     "Pending", "InvalidImageName", "couldn't parse"),
    ("missing secret key", job({"active": 1}),
     [pod(node="gpu-1", state=waiting("CreateContainerConfigError", "couldn't find key token in Secret x/creds"))],
     [], "Pending", "CreateContainerConfigError", "couldn't find key token"),
    ("other kubelet waiting reason", job({"active": 1}),
     [pod(node="gpu-1", state=waiting("RunContainerError", "exec: no such file"))], [], "Pending", "ContainerError",
     "RunContainerError: exec: no such file"),
    ("crash loop, with the last exit code", job({"active": 1}),
     [pod(phase="Running", node="gpu-1", state=waiting("CrashLoopBackOff", "back-off 40s restarting"),
          last_state=terminated(3), restarts=4)], [], "Running", "CrashLoopBackOff", "last exit code 3"),
    ("running: nothing to say", job({"active": 1, "ready": 1}), [pod(phase="Running", node="gpu-1", state=RUNNING)],
     [], "Running", "", ""),
    ("a pod runs before the workload counts it ready", job({"active": 1, "ready": 0}),
     [pod(phase="Running", node="gpu-1", state=RUNNING)], [], "Running", "", ""),
    ("completed", job({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}),
     [pod(phase="Succeeded", node="gpu-1", state=terminated(0, "Completed"))], [], "Succeeded", "Completed",
     "1 pod succeeded"),
    ("success criteria met (v1.31+)", job({"succeeded": 2, "conditions": [
        {"type": "SuccessCriteriaMet", "status": "True", "message": "Reached expected number of succeeded pods"}]}),
     [], [], "Succeeded", "Completed", "Reached expected number"),
    ("backoff limit, naming the last failure", job({"failed": 1, "conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
         "message": "Job has reached the specified backoff limit"}]}),
     [pod(phase="Failed", node="gpu-1", memory_limit="1Gi", state=terminated(137, "OOMKilled"))], [],
     "Failed", "BackoffLimitExceeded", "Last failure: Container train of pod train-abcde used more memory than its "
                                       "limit (1Gi) and was killed (exit code 137)"),
    ("deadline", job({"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                                      "message": "Job was active longer than specified deadline"}]}), [], [],
     "Failed", "DeadlineExceeded", "Job was active longer than specified deadline"),
    ("failure target before Failed (v1.28 pod failure policy)", job({"conditions": [
        {"type": "FailureTarget", "status": "True", "reason": "PodFailurePolicy", "message": "Container train "
                                                                                            "failed with exit code 42"}]}),
     [], [], "Failed", "JobFailed", "PodFailurePolicy: Container train failed with exit code 42"),
    ("a condition that is not True is ignored", job({"active": 1, "ready": 1, "conditions": [
        {"type": "Failed", "status": "False"}]}), [pod(phase="Running", node="n", state=RUNNING)], [],
     "Running", "", ""),
    ("suspended", job({"conditions": [{"type": "Suspended", "status": "True"}]}, suspend=True), [], [],
     "Suspended", "Suspended", "resumed"),
    ("suspended while its pods are still being deleted", job({"active": 1}, suspend=True),
     [pod(deleting=True)], [], "Suspended", "Suspended", "resumed"),
    ("finished wins over suspended", job({"conditions": [{"type": "Complete", "status": "True"}]}, suspend=True),
     [], [], "Succeeded", "Completed", ""),
    ("quota: the controller cannot create pods", job({}), [],
     [event("SuccessfulCreate", "Created pod: train-aaaaa", last=T0), event("FailedCreate", QUOTA, last=T1)],
     "Pending", "FailedCreate", QUOTA),
    ("an old FailedCreate, pods created since", job({"active": 1, "ready": 1}),
     [pod(phase="Running", node="n", state=RUNNING)],
     [event("FailedCreate", QUOTA, last=T0), event("SuccessfulCreate", "Created pod: train-abcde", last=T1)],
     "Running", "", ""),
    ("same second: the failure wins (one of two pods could not be created)", job({"active": 1, "ready": 1}),
     [pod(phase="Running", node="n", state=RUNNING)],
     [event("SuccessfulCreate", "Created pod: train-abcde", last=T1), event("FailedCreate", QUOTA, last=T1)],
     "Running", "FailedCreate", QUOTA),
    ("a FailedCreate of an earlier job of the same name", job({}), [],
     [event("FailedCreate", QUOTA, uid="earlier-uid")], "Pending", "", ""),
    ("between retries: the last failure", job({"failed": 1}),
     [pod(phase="Failed", node="n", state=terminated(2, message="file not found: /data/x"))], [],
     "Pending", "Error", "exited with code 2: file not found: /data/x"),
    ("between retries: out of memory", job({"failed": 1}),
     [pod(phase="Failed", node="n", memory_limit="512Mi", state=terminated(137, "OOMKilled"))], [],
     "Pending", "OOMKilled", "used more memory than its limit (512Mi) and was killed (exit code 137)"),
    ("between retries: evicted", job({"failed": 1}),
     [pod(phase="Failed", node="n", reason="Evicted", message="The node was low on resource: memory.")], [],
     "Pending", "Error", "Evicted: The node was low on resource: memory."),
    ("the most blocking pod wins over the newer one", job({"active": 2}),
     [pod("train-new", created=T2, conditions=scheduled_false("Unschedulable", NO_NODES)),
      pod("train-old", created=T1, node="n", state=waiting("ImagePullBackOff", "Back-off pulling image"))], [],
     "Pending", "ImagePullBackOff", "Back-off pulling image"),
    ("of two pods with the same trouble, the newer speaks", job({"active": 2}),
     [pod("train-old", created=T1, conditions=scheduled_false("Unschedulable", "old message")),
      pod("train-new", created=T2, conditions=scheduled_false("Unschedulable", "new message"))], [],
     "Pending", "Unschedulable", "new message"),
    ("a pod being deleted says nothing", job({}), [pod(deleting=True)], [], "Pending", "", ""),
]


@pytest.mark.parametrize("workload, pods, events, status, reason, message", [row[1:] for row in TABLE],
                         ids=[row[0] for row in TABLE])
def test_status_reason_and_message(workload, pods, events, status, reason, message):
    explanation = explain_job(workload, pods, events)
    assert (explanation.status, explanation.reason) == (status, reason)
    if message:
        assert message in explanation.message
    else:
        assert explanation.message == "" or reason in ("Completed", "Suspended")
    assert explanation.status in STATUSES
    assert explanation.reason in ("", *REASONS)


def test_every_reason_of_the_vocabulary_is_reachable_by_the_table():
    reached = {row[5] for row in TABLE} - {""}
    assert reached == set(REASONS), sorted(set(REASONS) - reached)


def test_readme_documents_the_reason_vocabulary_exactly():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Job insight", 1)[1].split("\n## ", 1)[0]
    table = section.split("### Reasons", 1)[1].split("\n### ", 1)[0]
    documented = re.findall(r"^\| `([A-Za-z]+)` \|", table, flags=re.MULTILINE)
    assert sorted(documented) == sorted(REASONS)
    assert len(documented) == len(set(documented))


def test_pod_explanation_of_a_terminating_pod_is_not_a_job_reason():
    assert pod_explanation(pod(deleting=True))[0] == "Terminating"
    assert "Terminating" not in REASONS


# --- pods ------------------------------------------------------------------------------------------------


def test_pod_view_reads_phase_node_readiness_restarts_start_and_exit_code():
    running = pod(phase="Running", node="gpu-1", state={"running": {"startedAt": T2}},
                  last_state=terminated(1), restarts=2,
                  conditions=[{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}])
    view = pod_view(running)
    assert view == {"name": "train-abcde", "phase": "Running", "node": "gpu-1", "ready": True, "restarts": 2,
                    "reason": "", "message": "", "startedAt": 1767261605000, "exitCode": 1}
    # the earliest start of any instance: the previous one started at T1
    assert started_at(running) == 1767261605000


def test_a_pod_that_never_started_has_no_start_and_no_exit_code():
    view = pod_view(pod(conditions=scheduled_false("Unschedulable", NO_NODES)))
    assert (view["startedAt"], view["exitCode"], view["ready"], view["node"]) == (None, None, False, "")
    assert (view["reason"], view["message"]) == ("Unschedulable", NO_NODES)


def test_pods_of_a_workload_are_its_own_newest_first():
    mine_old = pod("train-old", created=T0)
    mine_new = pod("train-new", created=T2)
    labelled_only = pod("train-label", created=T1, owner=None)   # no owner (e.g. created by hand): by label
    earlier_job = pod("train-earlier", owner="earlier-uid")      # same name, earlier job: not this one's
    other = pod("other", owner=None)
    other["metadata"]["labels"]["release"] = "other"
    assert [p["metadata"]["name"] for p in pods_of(job(), [mine_old, earlier_job, labelled_only, mine_new, other])] \
        == ["train-new", "train-label", "train-old"]


# --- events ----------------------------------------------------------------------------------------------


def test_event_view_of_an_old_style_controller_event():
    view = event_view(event("FailedCreate", QUOTA, last=T1, type="Warning") | {"count": 7})
    assert view == {"type": "Warning", "reason": "FailedCreate", "message": QUOTA, "count": 7,
                    "lastSeen": 1767261605000, "object": "Job/train"}


def test_event_view_of_a_new_style_scheduler_event_with_a_series():
    scheduler = {"metadata": {"name": "train-abcde.1", "creationTimestamp": T0},
                 "involvedObject": {"kind": "Pod", "name": "train-abcde", "uid": "uid-train-abcde"},
                 "reason": "FailedScheduling", "message": NO_NODES, "type": "Warning", "source": {},
                 "firstTimestamp": None, "lastTimestamp": None, "eventTime": "2026-01-01T10:00:00.250000Z",
                 "series": {"count": 5, "lastObservedTime": "2026-01-01T10:05:00.500000Z"},
                 "reportingComponent": "default-scheduler"}
    assert event_view(scheduler) == {"type": "Warning", "reason": "FailedScheduling", "message": NO_NODES,
                                     "count": 5, "lastSeen": 1767261900500, "object": "Pod/train-abcde"}
    del scheduler["series"]
    assert (event_view(scheduler)["count"], event_view(scheduler)["lastSeen"]) == (1, 1767261600250)


def test_recent_events_are_newest_first_unique_and_at_most_the_limit():
    events = [event(f"R{i:02d}", "m", last=f"2026-01-01T10:{i:02d}:00Z") for i in range(60)]
    events += events[:3]  # read twice (workload and pod lookups may overlap)
    recent = recent_events(events, 50)
    assert len(recent) == 50
    assert [e["reason"] for e in recent[:3]] == ["R59", "R58", "R57"]
    assert recent[-1]["reason"] == "R10"


def test_events_of_the_same_second_keep_the_order_they_were_written_in():
    first = event("SuccessfulCreate", "Created pod: a", last=T1, version="7")
    second = event("Suspended", "Job suspended", last=T1, version="12")
    assert [e["reason"] for e in recent_events([first, second])] == ["Suspended", "SuccessfulCreate"]
    assert [e["reason"] for e in recent_events([second, first])] == ["Suspended", "SuccessfulCreate"]
