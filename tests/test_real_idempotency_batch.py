"""Idempotency and atomic batches against a real control plane: what the API server's atomic create, its quota
admission and its garbage collector decide, the fake cannot prove."""
from __future__ import annotations

import concurrent.futures
import json
import threading
import time

import pytest

from tests.conftest import SEED_JOB, make_real_app
from tests.kube_kit import wait_until

pytestmark = pytest.mark.real

MANAGED = "app.kubernetes.io/managed-by=runai-submit"


def managed(real_cluster, namespace: str, plural: str, api: str = "/api/v1") -> list[dict]:
    return real_cluster.get(f"{api}/namespaces/{namespace}/{plural}", query={"labelSelector": MANAGED})["items"]


def jobs_in(real_cluster, namespace: str) -> list[dict]:
    return managed(real_cluster, namespace, "jobs", "/apis/batch/v1")


def submit_until_settled(client, job: dict, key: str) -> tuple[int, dict, dict]:
    """Submit as a client honouring 409 + Retry-After would (the wait shortened: only a hang bound matters)."""
    for _ in range(600):
        response = client.post("/api/job", json={"job": job}, headers={"RA-USER": "john", "Idempotency-Key": key})
        if response.status_code != 409:
            return response.status_code, response.json, dict(response.headers)
        assert response.headers.get("Retry-After"), response.json
        time.sleep(0.05)
    raise AssertionError(f"still 409 after 600 tries: {response.json}")


def test_a_storm_of_one_key_makes_one_job_and_delete_frees_the_key(real_cluster, real_project):
    project, namespace = real_project
    replicas = [make_real_app(real_cluster).test_client() for _ in range(2)]  # two pools, two caches
    job = {**SEED_JOB, "project": project, "ports": [{"container": 8080}], "serviceType": "clusterip"}
    start = threading.Barrier(20)

    def caller(index: int) -> tuple[int, dict, dict]:
        start.wait(timeout=60)
        return submit_until_settled(replicas[index % 2], job, "storm")

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(caller, range(20)))

    assert {status for status, _, _ in outcomes} == {200}, outcomes
    assert len({json.dumps(body, sort_keys=True) for _, body, _ in outcomes}) == 1
    name = outcomes[0][1]["name"]
    assert sum(headers.get("Idempotent-Replayed") == "true" for _, _, headers in outcomes) == 19
    (stored,) = jobs_in(real_cluster, namespace)
    assert stored["metadata"]["name"] == name
    assert [s["metadata"]["name"] for s in managed(real_cluster, namespace, "services")] == [name]
    (record,) = managed(real_cluster, namespace, "configmaps")
    assert record["metadata"]["ownerReferences"][0]["uid"] == stored["metadata"]["uid"]

    # Deleting the job frees the key once the garbage collector has removed the record (asynchronously, unlike
    # the fake): until then a submit answers 409 with Retry-After and leaves nothing behind.
    deleted = replicas[0].delete("/api/job", json=[{"name": name, "project": project}], headers={"RA-USER": "john"})
    assert deleted.status_code == 200 and deleted.json[0]["ok"], deleted.json
    status, body, headers = submit_until_settled(replicas[1], job, "storm")
    assert status == 200, body
    assert "Idempotent-Replayed" not in headers
    (again,) = jobs_in(real_cluster, namespace)
    assert again["metadata"]["name"] == name  # the same key derives the same name
    assert again["metadata"]["uid"] != stored["metadata"]["uid"]


def test_an_atomic_batch_over_a_real_quota_leaves_nothing_and_binds_no_key(real_cluster, real_project):
    project, namespace = real_project
    quota_path = f"/api/v1/namespaces/{namespace}/resourcequotas"
    real_cluster.create(quota_path, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "jobs"},
                                     "spec": {"hard": {"count/jobs.batch": "2"}}})
    # Quota admission refuses every create it cannot count yet; wait until the controller has counted.
    # https://kubernetes.io/docs/concepts/policy/resource-quotas/
    wait_until(lambda: real_cluster.get(f"{quota_path}/jobs").get("status", {}).get("hard"), "the quota's status")
    client = make_real_app(real_cluster).test_client()
    jobs = [{**SEED_JOB, "project": project, "name": f"q-{i}", "ports": [{"container": 80}],
             "serviceType": "clusterip"} for i in range(4)]
    headers = {"RA-USER": "john", "Idempotency-Key": "quota-batch"}

    response = client.post("/api/v1/jobs/batch?atomic=true", json={"jobs": jobs}, headers=headers)

    assert response.status_code == 403, response.json
    refused = [item for item in response.json["data"] if item["error"]["status"] == 403]
    assert refused and all("quota" in item["error"]["details"] for item in refused), response.json["data"]
    assert all(item["error"]["status"] in (403, 424) for item in response.json["data"])
    assert "leftBehind" not in response.json
    for plural, api in (("jobs", "/apis/batch/v1"), ("services", "/api/v1"), ("configmaps", "/api/v1")):
        assert managed(real_cluster, namespace, plural, api) == [], plural
    # Pods the job controller made for a job that lived a moment go with it (garbage collector).
    wait_until(lambda: not real_cluster.get(f"/api/v1/namespaces/{namespace}/pods",
                                            query={"labelSelector": MANAGED})["items"], "the rolled-back jobs' pods")

    # The failed batch bound none of its keys: with room in the quota the same retry creates every job.
    real_cluster.request("PATCH", f"{quota_path}/jobs", {"spec": {"hard": {"count/jobs.batch": "10"}}})
    wait_until(lambda: real_cluster.get(f"{quota_path}/jobs")["status"]["hard"]["count/jobs.batch"] == "10",
               "the raised quota")
    retry = client.post("/api/v1/jobs/batch?atomic=true", json={"jobs": jobs}, headers=headers)
    assert retry.status_code == 200, retry.json
    assert [item.get("replayed", False) for item in retry.json["data"]] == [False] * 4
    assert sorted(j["metadata"]["name"] for j in jobs_in(real_cluster, namespace)) == [f"q-{i}" for i in range(4)]
