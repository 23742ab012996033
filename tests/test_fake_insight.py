"""The fake API server's job insight part, driven through the typed kubernetes client (v37): pods, events with
field selectors, the pod log subresource (including follow), PATCH, and the minimal job controller.

Each behaviour here is one the real v1.28 server showed (tests/test_real_insight.py runs the service's paths
against it): a pod without a node answers its log with 204, a bad container with 400, a finished pod's log
ends, a RunaiJob (a custom resource) refuses a strategic merge patch, suspend deletes the pods and records
SuccessfulDelete + Suspended.
"""
from __future__ import annotations

import json
import threading
import time

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.fake_apiserver import FakeApiServer
from tests.test_fake_apiserver import job_dict, make_client

NS = "runai-team-a"


@pytest.fixture
def fake():
    with FakeApiServer() as server:
        server.add_namespace(NS)
        server.job_controller = True
        yield server


@pytest.fixture
def api(fake, tmp_path):
    api_client = make_client(fake, tmp_path / "kubeconfig")
    yield api_client
    api_client.close()


def create_job(api, name: str = "train", **spec) -> dict:
    return client.BatchV1Api(api).create_namespaced_job(NS, job_dict(name, **spec)).to_dict()


def pods_of(fake, job: str) -> list[dict]:
    return [p for p in fake.objects("Pod", NS) if p["metadata"]["ownerReferences"][0]["name"] == job]


def started(name: str = "main") -> dict:
    """A pod status as the kubelet reports a running container (image, imageID and ready are required)."""
    return {"phase": "Running", "containerStatuses": [
        {"name": name, "image": "busybox:latest", "imageID": "docker.io/library/busybox@sha256:0", "ready": True,
         "started": True, "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}


# --- the job controller -------------------------------------------------------------------------------


def test_controller_creates_a_pod_owned_by_the_job_and_records_the_event(fake, api):
    created = create_job(api)
    (pod,) = pods_of(fake, "train")
    owner = pod["metadata"]["ownerReferences"][0]
    assert owner == {"apiVersion": "batch/v1", "kind": "Job", "name": "train", "uid": created["metadata"]["uid"],
                     "controller": True, "blockOwnerDeletion": True}
    assert pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "train"
    assert pod["status"]["phase"] == "Pending" and "nodeName" not in pod["spec"]
    events = client.CoreV1Api(api).list_namespaced_event(NS).items
    assert [(e.reason, e.message, e.source.component) for e in events] == [
        ("SuccessfulCreate", f"Created pod: {pod['metadata']['name']}", "job-controller")]
    assert fake.get_object("Job", NS, "train")["status"]["active"] == 1


def test_controller_is_off_by_default(tmp_path):
    with FakeApiServer() as server:
        server.add_namespace(NS)
        api = make_client(server, tmp_path / "kubeconfig")
        create_job(api, "idle")
        api.close()
        assert server.get_object("Job", NS, "idle") is not None
        assert server.objects("Pod") == [] and server.objects("Event") == []


def test_parallelism_gives_that_many_pods(fake, api):
    create_job(api, parallelism=3, completions=5)
    assert len(pods_of(fake, "train")) == 3


def test_suspend_deletes_the_pods_and_resume_creates_them_again(fake, api):
    batch = client.BatchV1Api(api)
    create_job(api)
    (first,) = pods_of(fake, "train")
    patched = batch.patch_namespaced_job("train", NS, {"spec": {"suspend": True}})  # strategic merge, as typed
    assert patched.spec.suspend is True
    assert pods_of(fake, "train") == []
    job = fake.get_object("Job", NS, "train")
    assert [(c["type"], c["status"], c["reason"]) for c in job["status"]["conditions"]] == [
        ("Suspended", "True", "JobSuspended")]
    batch.patch_namespaced_job("train", NS, {"spec": {"suspend": False}})
    (second,) = pods_of(fake, "train")
    assert second["metadata"]["name"] != first["metadata"]["name"]
    job = fake.get_object("Job", NS, "train")
    assert [(c["type"], c["status"], c["reason"]) for c in job["status"]["conditions"]] == [
        ("Suspended", "False", "JobResumed")]
    reasons = [e.reason for e in client.CoreV1Api(api).list_namespaced_event(NS).items]
    assert reasons == ["SuccessfulCreate", "SuccessfulDelete", "Suspended", "Resumed", "SuccessfulCreate"]


def test_deleting_the_job_in_the_background_deletes_its_pods(fake, api):
    create_job(api)
    client.BatchV1Api(api).delete_namespaced_job("train", NS, propagation_policy="Background")
    fake.run_controllers()   # the garbage collector removes the pods a moment after their job
    assert fake.objects("Pod") == []


# --- PATCH ------------------------------------------------------------------------------------------------


def test_merge_patch_of_a_runaijob_and_refusal_of_a_strategic_one(fake, api):
    custom = client.CustomObjectsApi(api)
    body = {**job_dict("rj"), "apiVersion": "run.ai/v1", "kind": "RunaiJob"}
    custom.create_namespaced_custom_object("run.ai", "v1", NS, "runaijobs", body)
    code, answer, _ = fake._handle("PATCH", f"/apis/run.ai/v1/namespaces/{NS}/runaijobs/rj",
                                   b'{"spec": {"suspend": true}}',
                                   {"Authorization": "Bearer fake-token",
                                    "Content-Type": "application/strategic-merge-patch+json"})
    assert code == 415 and b"application/merge-patch+json" in answer
    patched = custom.patch_namespaced_custom_object("run.ai", "v1", NS, "runaijobs", "rj",
                                                    {"spec": {"suspend": True}})  # the client sends a merge patch
    assert patched["spec"]["suspend"] is True


def test_patch_keeps_server_fields_and_refuses_an_immutable_or_mistyped_change(fake, api):
    batch = client.BatchV1Api(api)
    created = create_job(api)
    with pytest.raises(ApiException) as immutable:
        batch.patch_namespaced_job("train", NS, {"spec": {"template": {"spec": {"restartPolicy": "OnFailure"}}}})
    assert immutable.value.status == 422 and "field is immutable" in immutable.value.body
    with pytest.raises(ApiException) as mistyped:
        batch.patch_namespaced_job("train", NS, {"spec": {"suspend": "yes"}})
    assert mistyped.value.status == 422
    patched = batch.patch_namespaced_job("train", NS, {"metadata": {"uid": "forged"}, "spec": {"suspend": True}})
    assert patched.metadata.uid == created["metadata"]["uid"]
    assert patched.metadata.generation == 2
    again = batch.patch_namespaced_job("train", NS, {"spec": {"suspend": True}})
    assert again.metadata.resource_version == patched.metadata.resource_version  # nothing changed


def test_patch_of_a_missing_job_is_404(api):
    with pytest.raises(ApiException) as missing:
        client.BatchV1Api(api).patch_namespaced_job("nope", NS, {"spec": {"suspend": True}})
    assert missing.value.status == 404


# --- events and field selectors --------------------------------------------------------------------------


def test_events_are_selected_by_involved_object_fields(fake, api):
    created = create_job(api)
    (pod,) = pods_of(fake, "train")
    fake.add_event(NS, pod, "FailedScheduling", "no nodes available to schedule pods", type="Warning",
                   component="default-scheduler", count=None, event_time="2026-01-01T00:00:00.123456Z")
    core = client.CoreV1Api(api)
    by_job = core.list_namespaced_event(NS, field_selector=f"involvedObject.uid={created['metadata']['uid']}")
    assert [e.reason for e in by_job.items] == ["SuccessfulCreate"]
    by_pod = core.list_namespaced_event(NS, field_selector=f"involvedObject.kind=Pod,type=Warning")
    (scheduling,) = by_pod.items
    assert (scheduling.reason, scheduling.last_timestamp, scheduling.count) == ("FailedScheduling", None, None)
    assert scheduling.event_time is not None and scheduling.reporting_component == "default-scheduler"
    assert core.list_namespaced_event(NS, field_selector="source=job-controller").items[0].reason == "SuccessfulCreate"
    with pytest.raises(ApiException) as unsupported:
        core.list_namespaced_event(NS, field_selector="spec.nodeName=x")
    assert unsupported.value.status == 400 and "field label not supported: spec.nodeName" in unsupported.value.body


def test_pods_are_selected_by_label_and_by_phase(fake, api):
    create_job(api, parallelism=2, completions=2)
    first, _ = pods_of(fake, "train")
    fake.set_status("Pod", NS, first["metadata"]["name"], started())
    core = client.CoreV1Api(api)
    assert len(core.list_namespaced_pod(NS, label_selector="job-name=train").items) == 2
    running = core.list_namespaced_pod(NS, field_selector="status.phase=Running").items
    assert [p.metadata.name for p in running] == [first["metadata"]["name"]]


# --- the pod log subresource ------------------------------------------------------------------------------


def test_log_of_a_pod_without_a_node_is_an_empty_204(fake, api):
    create_job(api)
    (pod,) = pods_of(fake, "train")
    response = client.CoreV1Api(api).read_namespaced_pod_log(pod["metadata"]["name"], NS, _preload_content=False)
    assert response.status == 204 and response.data == b""


def test_log_errors_of_the_kubelet_and_the_api_server(fake, api):
    core = client.CoreV1Api(api)
    create_job(api)
    (pod,) = pods_of(fake, "train")
    name = pod["metadata"]["name"]
    with pytest.raises(ApiException) as bad_container:
        core.read_namespaced_pod_log(name, NS, container="nope")
    assert bad_container.value.status == 400 and f"container nope is not valid for pod {name}" in bad_container.value.body
    fake.bind_pod(NS, name, "gpu-1")
    fake.set_status("Pod", NS, name, {"phase": "Pending", "containerStatuses": [
        {"name": "main", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]})
    with pytest.raises(ApiException) as waiting:
        core.read_namespaced_pod_log(name, NS)
    assert waiting.value.status == 400
    assert json.loads(waiting.value.body)["message"] == \
        f'container "main" in pod "{name}" is waiting to start: trying and failing to pull image'
    fake.set_status("Pod", NS, name, started())
    with pytest.raises(ApiException) as no_previous:
        core.read_namespaced_pod_log(name, NS, previous=True)
    assert no_previous.value.status == 400 and "previous terminated container" in no_previous.value.body


def test_log_text_tail_and_previous(fake, api):
    core = client.CoreV1Api(api)
    create_job(api)
    (pod,) = pods_of(fake, "train")
    name = pod["metadata"]["name"]
    fake.bind_pod(NS, name, "gpu-1")
    status = started()
    status["containerStatuses"][0]["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error"}}
    fake.set_status("Pod", NS, name, status)
    fake.set_pod_log(NS, name, "one\ntwo\nthree\n")
    fake.set_pod_log(NS, name, "before the restart\n", previous=True)
    assert core.read_namespaced_pod_log(name, NS) == "one\ntwo\nthree\n"
    assert core.read_namespaced_pod_log(name, NS, tail_lines=2) == "two\nthree\n"
    assert core.read_namespaced_pod_log(name, NS, tail_lines=0) == ""
    assert core.read_namespaced_pod_log(name, NS, previous=True) == "before the restart\n"
    raw = core.read_namespaced_pod_log(name, NS, _preload_content=False)
    assert raw.headers["Content-Type"] == "text/plain"


def test_follow_streams_chunks_as_printed_until_the_pod_ends(fake, api):
    create_job(api)
    (pod,) = pods_of(fake, "train")
    name = pod["metadata"]["name"]
    fake.bind_pod(NS, name, "gpu-1")
    fake.set_status("Pod", NS, name, started())
    fake.set_pod_log(NS, name, "first\n")
    response = client.CoreV1Api(api).read_namespaced_pod_log(name, NS, follow=True, _preload_content=False)
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert response.read1(1024) == b"first\n"   # arrives before the pod has printed anything more
    fake.append_pod_log(NS, name, "second\n")
    assert response.read1(1024) == b"second\n"
    ended = threading.Timer(0.1, fake.set_status, (
        "Pod", NS, name, {"phase": "Succeeded", "containerStatuses": [
            {"name": "main", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}))
    ended.start()
    deadline = time.monotonic() + 30
    rest = b""
    while chunk := response.read1(1024):
        rest += chunk
        assert time.monotonic() < deadline
    assert rest == b""
    ended.join()
