"""A job's life in a real cluster, with both workload kinds: list, get, projects and delete through the
service, then what the controllers do about it -- the garbage collector removing the Service and Ingress
after their workload, the pvc-protection controller releasing a claim, the Job controller making the pod.
"""
from __future__ import annotations

import pytest

from tests import kube_kit
from tests.conftest import MAXIMAL_JOB, SEED_JOB, make_real_app, submit

pytestmark = pytest.mark.real

SERVICES = "/api/v1/namespaces/{ns}/services"
PVCS = "/api/v1/namespaces/{ns}/persistentvolumeclaims"
INGRESSES = "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses"
PODS = "/api/v1/namespaces/{ns}/pods"


def delete_jobs(client, items: list[dict], query: str = "", user: str = "john"):
    return client.delete(f"/api/job{query}", json=items, headers={"RA-USER": user})


def test_list_get_delete_and_projects(real_cluster, real_project, real_workload):
    project, namespace = real_project
    client = make_real_app(real_cluster, real_workload).test_client()
    for name, user in (("alpha", "alice"), ("beta", "bob")):
        job = {**SEED_JOB, "project": project, "name": name, "pvc": [{"size": "1Gi", "path": "/data"}]}
        assert submit(client, job, user=user).status_code == 200

    listed = client.get(f"/api/job?project={project}").json["data"]
    # The Job controller gives a batch Job a status and a (Pending) pod; nothing acts on a RunaiJob in a
    # cluster without Run:AI: no status, no pods, which job insight calls Unknown.
    status = "Pending" if real_workload.kind == "Job" else "Unknown"
    assert [(job["name"], job["user"], job["kind"], job["status"], job["project"]) for job in listed] == [
        ("alpha", "alice", real_workload.kind, status, project),
        ("beta", "bob", real_workload.kind, status, project)]
    assert [job["name"] for job in client.get("/api/v1/jobs?user=alice").json["data"]
            if job["project"] == project] == ["alpha"]
    one = client.get(f"/api/v1/job/{project}/beta")
    assert one.status_code == 200, one.json
    stored = real_cluster.get(real_workload.path(namespace, "beta"))
    assert (one.json["uid"], one.json["requestedGPUs"], one.json["images"]) == (
        stored["metadata"]["uid"], 1, [SEED_JOB["image"]])
    assert {"name": project, "namespace": namespace} in client.get("/api/v1/projects").json["data"]

    gone = delete_jobs(client, [{"name": "alpha", "project": project}], "?deletePvcs=true")
    kept = delete_jobs(client, [{"name": "beta", "project": project}])

    assert gone.json == [{"name": "alpha", "project": project, "ok": True, "error": None,
                          "deleted": [f"{real_workload.kind} alpha", "PersistentVolumeClaim pvc-alpha-0"]}]
    assert kept.json[0]["ok"] is True and kept.json[0]["deleted"] == [f"{real_workload.kind} beta"]  # no Service
    assert client.get(f"/api/v1/job/{project}/alpha").status_code == 404
    assert client.get(f"/api/job?project={project}").json["data"] == []
    # the claim asked for goes (once no pod uses it); the other one outlives its job
    kube_kit.wait_until(lambda: not real_cluster.exists(PVCS.format(ns=namespace) + "/pvc-alpha-0"),
                        "pvc-alpha-0 to be released and deleted")
    assert real_cluster.exists(PVCS.format(ns=namespace) + "/pvc-beta-0")
    again = delete_jobs(client, [{"name": "alpha", "project": project}])
    assert again.json[0]["ok"] is False and again.json[0]["error"]["status"] == 404


def test_the_garbage_collector_removes_service_and_ingress_after_the_workload(real_cluster, real_project,
                                                                               real_workload):
    """Whoever deletes the workload (kubectl, a controller), its owner references let the cluster collect the rest."""
    project, namespace = real_project
    client = make_real_app(real_cluster, real_workload).test_client()
    job = {**SEED_JOB, "project": project, "name": "web", "ports": [8080], "serviceType": "ingress"}
    assert submit(client, job).status_code == 200
    assert real_cluster.exists(SERVICES.format(ns=namespace) + "/web")

    assert real_cluster.delete(real_workload.path(namespace, "web"), query={"propagationPolicy": "Background"})

    # A CRD installed moments ago is known to the collector only after its next resync (up to ~30 s).
    kube_kit.wait_until(lambda: not real_cluster.exists(SERVICES.format(ns=namespace) + "/web")
                        and not real_cluster.exists(INGRESSES.format(ns=namespace) + "/web"),
                        "the garbage collector to remove the Service and the Ingress")


def test_a_deleted_job_can_be_submitted_again_at_once_under_its_name(real_cluster, real_project, real_workload):
    """The service deletes the Service and Ingress itself, so their names are free when the answer comes."""
    project, namespace = real_project
    client = make_real_app(real_cluster, real_workload).test_client()
    job = {**SEED_JOB, "project": project, "name": "again", "ports": [8080], "serviceType": "ingress"}
    assert submit(client, job).status_code == 200

    for _ in range(3):
        response = delete_jobs(client, [{"name": "again", "project": project}])
        assert response.json[0]["deleted"] == [f"{real_workload.kind} again", "Service again", "Ingress again"]
        assert not real_cluster.exists(SERVICES.format(ns=namespace) + "/again")
        resubmitted = submit(client, job)
        assert resubmitted.status_code == 200, resubmitted.json


def test_the_job_controller_makes_the_pod_of_a_batch_job(real_cluster, real_project, real_workload):
    if real_workload.kind != "Job":
        pytest.skip("no controller acts on a RunaiJob in this cluster (Run:AI's own would)")
    project, namespace = real_project
    client = make_real_app(real_cluster, real_workload).test_client()
    response = submit(client, {**SEED_JOB, "project": project, "gpu": 0}, user="Jane Doe")
    assert response.status_code == 200, response.json
    name = response.json["name"]
    job = real_cluster.get(real_workload.path(namespace, name))

    pods = kube_kit.wait_until(
        lambda: real_cluster.get(PODS.format(ns=namespace), query={"labelSelector": f"job-name={name}"})["items"],
        "the Job controller to create the pod")

    (pod,) = pods
    assert pod["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    labels = pod["metadata"]["labels"]
    assert (labels["release"], labels["app"], labels["project"], labels["runai/user"]) == (
        name, "runaijob", project, "Jane-Doe")
    assert pod["metadata"]["annotations"]["user"] == "Jane Doe"
    assert pod["spec"]["schedulerName"] == "default-scheduler" and pod["spec"]["restartPolicy"] == "Never"
    scheduled = kube_kit.wait_until(
        lambda: [c for c in (real_cluster.get(PODS.format(ns=namespace) + f"/{pod['metadata']['name']}")
                             .get("status", {}).get("conditions") or []) if c["type"] == "PodScheduled"],
        "the scheduler to look at the pod")
    if real_cluster.source == "kit":   # no nodes: the scheduler says so, and the job stays Pending
        assert (scheduled[0]["status"], scheduled[0]["reason"]) == ("False", "Unschedulable")
        assert client.get(f"/api/v1/job/{project}/{name}").json["status"] == "Pending"
