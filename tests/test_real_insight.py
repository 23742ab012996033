"""Job insight against a real control plane (kube-apiserver, controller-manager and scheduler v1.28, no nodes):
what the job controller, the scheduler, ResourceQuota admission and the API server's log endpoint really do.

The kit has no nodes, so a job's pods really are Unschedulable; with ``schedulerName: runai-scheduler`` no
scheduler ever looks at them. Waits poll with a generous bound (a hang detector, not a timing assertion).
"""
from __future__ import annotations

import uuid

import pytest

from runai_submit.cluster.errors import LogUnavailable
from runai_submit.cluster.kinds import BATCH_JOB
from tests.conftest import SEED_JOB, make_real_app, submit
from tests.kube_kit import wait_until

pytestmark = pytest.mark.real

USER = {"RA-USER": "john"}
NO_NODES = "no nodes available to schedule pods"


@pytest.fixture(scope="module")
def project(real_cluster):
    """One project for the module's jobs (each test uses names of its own)."""
    name = f"i{uuid.uuid4().hex[:8]}"
    namespace = real_cluster.create_namespace(f"runai-{name}", {"runai/queue": name})
    yield name, namespace
    real_cluster.delete_namespace(namespace)


@pytest.fixture(scope="module")
def client(real_cluster, project):
    return make_real_app(real_cluster).test_client()   # schedulerName: default-scheduler


def submit_job(client, project: str, name: str) -> None:
    response = submit(client, {**SEED_JOB, "name": name, "project": project, "gpu": 0})
    assert response.status_code == 200, response.json


def view_when(client, project: str, name: str, predicate, what: str) -> dict:
    def current():
        response = client.get(f"/api/v1/job/{project}/{name}")
        assert response.status_code == 200, response.json
        return response.json if predicate(response.json) else None
    return wait_until(current, f"{name}: {what}")


def event_reasons(view: dict) -> set[str]:
    return {event["reason"] for event in view["events"]}


def test_a_pod_with_no_node_to_go_to_is_unschedulable_with_the_schedulers_message(client, project):
    name, _ = project
    submit_job(client, name, "unsched")

    view = view_when(client, name, "unsched", lambda v: v["statusReason"] == "Unschedulable", "Unschedulable")

    assert view["status"] == "Pending"
    assert NO_NODES in view["statusMessage"]
    (pod,) = view["pods"]
    assert (pod["phase"], pod["node"], pod["reason"], pod["startedAt"]) == ("Pending", "", "Unschedulable", None)
    # The job controller records its event after it created the pod (events are written asynchronously), so
    # the pod may be Unschedulable before the event is listed.
    wait_until(lambda: ("SuccessfulCreate", "Job/unsched") in {
        (e["reason"], e["object"]) for e in client.get(f"/api/v1/job/{name}/unsched").json["events"]},
        "the job controller's SuccessfulCreate event")
    # the scheduler's event is new-style (eventTime, no lastTimestamp): it is dated all the same
    scheduling = wait_until(lambda: [e for e in client.get(f"/api/v1/job/{name}/unsched").json["events"]
                                     if e["reason"] == "FailedScheduling"], "the scheduler's event")
    assert scheduling[0]["object"] == f"Pod/{pod['name']}" and scheduling[0]["lastSeen"] > 0
    assert NO_NODES in scheduling[0]["message"]
    listed = client.get(f"/api/job?project={name}").json["data"]
    assert [(j["name"], j["statusReason"]) for j in listed if j["name"] == "unsched"] == [("unsched", "Unschedulable")]


def test_logs_of_a_job_whose_pod_never_started_are_a_409_with_the_reason(client, project):
    name, _ = project
    submit_job(client, name, "nolog")
    view = view_when(client, name, "nolog", lambda v: v["statusReason"] == "Unschedulable", "Unschedulable")

    response = client.get(f"/api/v1/job/{name}/nolog/logs?follow=true")

    assert response.status_code == 409
    assert response.json["message"] == f"Unschedulable: {view['statusMessage']}"
    pod = view["pods"][0]["name"]
    explicit = client.get(f"/api/v1/job/{name}/nolog/logs?pod={pod}")
    assert explicit.status_code == 409 and explicit.json["message"].startswith("Unschedulable: ")


def test_a_pod_for_a_scheduler_that_does_not_run_is_waiting_for_it(real_cluster, project):
    name, _ = project
    client = make_real_app(real_cluster, scheduler_name="runai-scheduler").test_client()
    submit_job(client, name, "nosched")

    view = view_when(client, name, "nosched", lambda v: v["pods"], "its pod")

    assert (view["status"], view["statusReason"]) == ("Pending", "WaitingForScheduler")
    assert "'runai-scheduler'" in view["statusMessage"]


def test_a_quota_of_no_pods_is_the_controllers_failed_create(real_cluster, real_project):
    name, namespace = real_project
    real_cluster.create(f"/api/v1/namespaces/{namespace}/resourcequotas", {
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}})
    # the quota controller must have counted usage before admission enforces it
    wait_until(lambda: real_cluster.get(f"/api/v1/namespaces/{namespace}/resourcequotas/no-pods")
               .get("status", {}).get("used"), "the quota's usage")
    client = make_real_app(real_cluster).test_client()
    submit_job(client, name, "quota")

    view = view_when(client, name, "quota", lambda v: v["statusReason"] == "FailedCreate", "FailedCreate")

    assert view["status"] == "Pending" and view["pods"] == []
    assert "exceeded quota: no-pods" in view["statusMessage"] and "forbidden" in view["statusMessage"]
    assert view["events"][0]["reason"] == "FailedCreate" and view["events"][0]["type"] == "Warning"
    logs = client.get(f"/api/v1/job/{name}/quota/logs")
    assert logs.status_code == 409 and logs.json["message"].startswith("FailedCreate: ")


def test_suspend_removes_the_pods_and_resume_brings_them_back(client, project):
    name, _ = project
    submit_job(client, name, "pausable")
    first = view_when(client, name, "pausable", lambda v: v["pods"], "its pod")["pods"][0]["name"]

    suspended = client.post(f"/api/v1/job/{name}/pausable/suspend", headers=USER)
    assert suspended.status_code == 200, suspended.json
    assert (suspended.json["status"], suspended.json["statusReason"]) == ("Suspended", "Suspended")
    # Events are written asynchronously, so the pods may be gone before the job controller's events are listed.
    gone = view_when(client, name, "pausable",
                     lambda v: not v["pods"] and {"SuccessfulDelete", "Suspended"} <= event_reasons(v),
                     "its pods removed, and the SuccessfulDelete and Suspended events")
    assert gone["status"] == "Suspended"
    again = client.post(f"/api/v1/job/{name}/pausable/suspend", headers=USER)
    assert again.status_code == 200 and again.json["status"] == "Suspended"

    resumed = client.post(f"/api/v1/job/{name}/pausable/resume", headers=USER)
    assert resumed.status_code == 200 and resumed.json["status"] != "Suspended"
    back = view_when(client, name, "pausable",
                     lambda v: v["pods"] and v["statusReason"] == "Unschedulable" and "Resumed" in event_reasons(v),
                     "a new pod, unschedulable, and the Resumed event")
    assert back["pods"][0]["name"] != first and back["status"] == "Pending"

    deleted = client.delete("/api/job", json=[{"name": "pausable", "project": name}], headers=USER)
    assert deleted.json[0]["ok"] is True


def test_the_log_endpoint_of_the_real_api_server_through_the_cluster_layer(real_cluster, client, project):
    """What the service sends for a log, and how the real server answers: 204 without a node, 400 for a
    container the pod does not have (so the service checks containers itself, and 409s unstarted pods)."""
    name, namespace = project
    submit_job(client, name, "logpath")
    pod = view_when(client, name, "logpath", lambda v: v["pods"], "its pod")["pods"][0]["name"]
    cluster = client.application.extensions["runai_submit"].cluster
    assert cluster.workload_kind() == BATCH_JOB

    stream = cluster.open_log(namespace, pod, read_timeout=5)
    try:
        assert b"".join(stream) == b""   # 204: the pod has no node, so no kubelet to ask
    finally:
        stream.close()
    with pytest.raises(LogUnavailable) as refused:
        cluster.open_log(namespace, pod, container="nope", read_timeout=5)
    assert refused.value.details == f"container nope is not valid for pod {pod}"
