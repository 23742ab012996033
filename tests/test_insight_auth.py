"""Job insight honours the auth mode: in token mode the job view, the list's reasons, logs, suspend and resume are
the caller's own calls, and what the cluster's RBAC refuses them is refused (or, for the list, left out).

The rights a researcher needs are derived from the kind table (``cluster/rights.py``), so granting exactly
``caller_rights()`` here checks that the table names every call job insight makes, pods/log included.
"""
from __future__ import annotations

import uuid

import pytest

from runai_submit.cluster.rights import caller_rights
from tests.conftest import SEED_JOB, TEAM_A, make_app

SERVICE_ACCOUNT = "system:serviceaccount:runai-submit:runai-submit"
ALICE = f"eyJhbGciOiJSUzI1NiJ9.alice-{uuid.uuid4().hex}.c2ln"
DAVE = f"eyJhbGciOiJSUzI1NiJ9.dave-{uuid.uuid4().hex}.c2ln"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def fake_resource(group: str, resource: str) -> str:
    """("", "pods/log") -> "pods/log"; ("batch", "jobs") -> "jobs.batch": how the fake's grants name them."""
    return f"{resource}.{group}" if group else resource


@pytest.fixture
def cluster(fake_api):
    """The service may only discover projects; alice has the researcher rights in team-a; dave may only read
    and list the workloads there (no pods, events, logs or patch)."""
    fake_api.add_user(fake_api.token, SERVICE_ACCOUNT)
    fake_api.grant(user=SERVICE_ACCOUNT, verbs=["get", "list"], resources=["namespaces"])
    fake_api.add_user(ALICE, "alice")
    for group, resource, verb in sorted(caller_rights()):
        fake_api.grant(user="alice", verbs=[verb], resources=[fake_resource(group, resource)], namespace=TEAM_A)
    fake_api.add_user(DAVE, "dave")
    fake_api.grant(user="dave", verbs=["get", "list"], resources=["runaijobs.run.ai"], namespace=TEAM_A)
    fake_api.job_controller = True
    yield fake_api
    fake_api.job_controller = False


@pytest.fixture
def client(cluster, tmp_path):
    return make_app(cluster, tmp_path, auth_mode="token").test_client()


def test_researcher_rights_cover_every_insight_call_and_each_is_made_as_the_caller(client, cluster):
    assert client.post("/api/job", json={"job": {**SEED_JOB, "name": "train"}}, headers=bearer(ALICE)).status_code == 200
    (pod,) = cluster.objects("Pod", TEAM_A)
    pod_name = pod["metadata"]["name"]
    cluster.bind_pod(TEAM_A, pod_name, "gpu-1")
    cluster.set_status("Pod", TEAM_A, pod_name, {"phase": "Running", "containerStatuses": [
        {"name": "train", "image": "x", "imageID": "", "ready": True, "restartCount": 0,
         "state": {"running": {"startedAt": "2026-01-01T10:00:00Z"}}}]})
    cluster.set_pod_log(TEAM_A, pod_name, "hello\n")
    cluster.callers.clear()

    view = client.get("/api/v1/job/team-a/train", headers=bearer(ALICE))
    assert view.status_code == 200, view.json
    assert view.json["status"] == "Running" and view.json["events"]
    listed = client.get("/api/job?project=team-a", headers=bearer(ALICE)).json["data"]
    assert [(j["name"], j["status"]) for j in listed] == [("train", "Running")]
    logs = client.get("/api/v1/job/team-a/train/logs", headers=bearer(ALICE))
    assert (logs.status_code, logs.data) == (200, b"hello\n")
    suspended = client.post("/api/v1/job/team-a/train/suspend", headers=bearer(ALICE))
    assert suspended.status_code == 200 and suspended.json["status"] == "Suspended"
    assert client.post("/api/v1/job/team-a/train/resume", headers=bearer(ALICE)).status_code == 200

    job_calls = {(method, path.rsplit("/", 1)[-1] if path.endswith("/log") else path, user)
                 for method, path, user in cluster.callers if f"/namespaces/{TEAM_A}/" in path}
    assert {user for _, _, user in job_calls} == {"alice"}, job_calls
    assert {("GET", "log", "alice"), ("GET", f"/api/v1/namespaces/{TEAM_A}/pods", "alice"),
            ("GET", f"/api/v1/namespaces/{TEAM_A}/events", "alice"),
            ("PATCH", f"/apis/run.ai/v1/namespaces/{TEAM_A}/runaijobs/train", "alice")} <= job_calls


def test_without_pod_rights_the_list_has_no_reasons_and_the_rest_is_refused(client, cluster):
    assert client.post("/api/job", json={"job": {**SEED_JOB, "name": "train"}}, headers=bearer(ALICE)).status_code == 200

    listed = client.get("/api/job?project=team-a", headers=bearer(DAVE))
    assert listed.status_code == 200, listed.json
    assert [(j["name"], j["statusReason"]) for j in listed.json["data"]] == [("train", "")]
    view = client.get("/api/v1/job/team-a/train", headers=bearer(DAVE))
    assert view.status_code == 403 and 'User "dave" cannot list resource "pods"' in view.json["details"]
    logs = client.get("/api/v1/job/team-a/train/logs", headers=bearer(DAVE))
    assert logs.status_code == 403
    suspend = client.post("/api/v1/job/team-a/train/suspend", headers=bearer(DAVE))
    assert suspend.status_code == 403 and 'cannot patch resource "runaijobs"' in suspend.json["details"]
    assert cluster.get_object("RunaiJob", TEAM_A, "train")["spec"].get("suspend") is not True
