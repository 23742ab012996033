"""Submitting jobs to a real Kubernetes API server, with both workload kinds (``real_workload``).

What only a real control plane decides is checked here: its validation and defaulting of what the service
renders, name conflicts, generated names under concurrency, its dry run, and ResourceQuota admission
refusing an object halfway through a submit (the rollback must leave nothing behind).
"""
from __future__ import annotations

import itertools
import threading

import pytest
import yaml

from tests import kube_kit
from tests.conftest import GOLDEN, MAXIMAL_JOB, SEED_JOB, make_real_app, submit

pytestmark = pytest.mark.real

SERVICES = "/api/v1/namespaces/{ns}/services"
PVCS = "/api/v1/namespaces/{ns}/persistentvolumeclaims"
INGRESSES = "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses"
PODS = "/api/v1/namespaces/{ns}/pods"


def names(cluster: kube_kit.RealCluster, path: str) -> list[str]:
    return sorted(item["metadata"]["name"] for item in cluster.get(path)["items"])


def job_objects(cluster: kube_kit.RealCluster, workload, namespace: str) -> dict[str, list[str]]:
    """Everything a job can leave in its namespace, by kind (pods too: the Job controller makes them)."""
    found = {"workload": names(cluster, workload.path(namespace))}
    for kind, path in (("PersistentVolumeClaim", PVCS), ("Service", SERVICES), ("Ingress", INGRESSES), ("Pod", PODS)):
        found[kind] = names(cluster, path.format(ns=namespace))
    return found


def nothing_left(cluster: kube_kit.RealCluster, workload, namespace: str) -> bool:
    return not any(job_objects(cluster, workload, namespace).values())


def contains(expected, actual, where: str = "") -> None:
    """Every key and value of ``expected`` is in ``actual`` (the server may add defaults, never change ours)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} is missing"
            contains(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r}"
        for index, (want, got) in enumerate(zip(expected, actual)):
            contains(want, got, f"{where}[{index}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


# --- the seed example and a job with every object kind ---------------------------------------------


def test_the_seed_example_is_stored_as_the_golden_workload(real_cluster, real_project, real_workload):
    project, namespace = real_project
    client = make_real_app(real_cluster, real_workload).test_client()

    response = submit(client, {**SEED_JOB, "project": project})

    assert response.status_code == 200, response.json
    name = response.json["name"]
    contains({"name": name, "project": project, "namespace": namespace, "kind": real_workload.kind,
              "objects": [{"kind": real_workload.kind, "name": name}]}, response.json)
    golden = yaml.safe_load((GOLDEN / "seed-workload.yaml").read_text().replace("<name>", name)
                            .replace("team-a", project).replace("runai-scheduler", "default-scheduler"))
    golden.update(apiVersion=real_workload.api_version, kind=real_workload.kind)
    stored = real_cluster.get(real_workload.path(namespace, name))
    contains(golden, stored)
    assert stored["metadata"]["uid"]


def free_node_port(cluster: kube_kit.RealCluster) -> int:
    """A node port no Service holds now (node ports are cluster-wide, and other tests' namespaces linger)."""
    taken = {port.get("nodePort") for svc in cluster.get("/api/v1/services")["items"]
             for port in svc["spec"].get("ports", [])}
    return next(port for port in range(31500, 32768) if port not in taken)


@pytest.mark.parametrize("service_type, expected_type", [
    ("nodeport", "NodePort"), ("loadbalancer", "LoadBalancer"), ("clusterip", "ClusterIP"),
    ("portforward", "ClusterIP"), ("ingress", "ClusterIP")])
def test_a_job_with_every_object_kind(real_cluster, real_project, real_workload, service_type, expected_type):
    project, namespace = real_project
    client = make_real_app(real_cluster, real_workload).test_client()
    external = free_node_port(real_cluster) if service_type == "nodeport" else 80
    job = {**MAXIMAL_JOB, "project": project, "serviceType": service_type,
           "ports": [{"container": 8888, "external": external}]}

    response = submit(client, job)

    assert response.status_code == 200, response.json
    kinds = [real_workload.kind, "PersistentVolumeClaim", "Service"] + (["Ingress"] if service_type == "ingress" else [])
    assert [obj["kind"] for obj in response.json["objects"]] == kinds
    workload = real_cluster.get(real_workload.path(namespace, "maximal"))
    claim = real_cluster.get(PVCS.format(ns=namespace) + "/pvc-maximal-0")
    assert "ownerReferences" not in claim["metadata"], "a new PVC outlives its job"
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi" and claim["spec"]["storageClassName"] == "fast"
    service = real_cluster.get(SERVICES.format(ns=namespace) + "/maximal")
    assert service["spec"]["type"] == expected_type
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == 8888
    if service_type == "nodeport":
        assert (port["port"], port["nodePort"]) == (external, external)
    owned = [service]
    if service_type == "ingress":
        ingress = real_cluster.get(INGRESSES.format(ns=namespace) + "/maximal")
        (rule,) = ingress["spec"]["rules"]
        assert rule["http"]["paths"][0]["path"] == f"/{project}-maximal"
        owned.append(ingress)
    for obj in owned:
        (owner,) = obj["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == (real_workload.kind, "maximal", workload["metadata"]["uid"])
    labels = {"release": "maximal", "app": "runaijob", "project": project, "app.kubernetes.io/managed-by": "runai-submit"}
    for obj in (workload, claim, *owned):
        assert labels.items() <= obj["metadata"]["labels"].items(), obj["kind"]


# --- names -----------------------------------------------------------------------------------------


def test_an_explicit_name_taken_is_a_409_and_touches_nothing(real_cluster, real_project, real_workload):
    project, namespace = real_project
    client = make_real_app(real_cluster, real_workload).test_client()
    job = {**SEED_JOB, "project": project, "name": "taken"}
    first = submit(client, job)
    assert first.status_code == 200, first.json
    uid = real_cluster.get(real_workload.path(namespace, "taken"))["metadata"]["uid"]

    again = submit(client, job)

    assert again.status_code == 409, again.json
    assert project in again.json["message"] and "taken" in again.json["message"]
    assert real_cluster.get(real_workload.path(namespace, "taken"))["metadata"]["uid"] == uid


def test_a_name_taken_by_a_dependent_is_a_409_and_rolls_back_the_workload(real_cluster, real_project, real_workload):
    """Someone else's Service holds the name: the workload created first is deleted again, theirs stays."""
    project, namespace = real_project
    theirs = real_cluster.create(SERVICES.format(ns=namespace), {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
    client = make_real_app(real_cluster, real_workload).test_client()

    response = submit(client, {**SEED_JOB, "project": project, "name": "web", "ports": [80], "serviceType": "clusterip"})

    assert response.status_code == 409, response.json
    assert response.json["failedObject"] == "Service web"
    kube_kit.wait_until(lambda: not real_cluster.exists(real_workload.path(namespace, "web")), "the rollback")
    assert real_cluster.get(SERVICES.format(ns=namespace) + "/web")["metadata"]["uid"] == theirs["metadata"]["uid"]


def test_generated_names_stay_unique_across_two_service_instances(real_cluster, real_project, real_workload):
    """Two replicas that pick the same names in the same order: only the API server's refusals keep them apart."""
    project, namespace = real_project
    apps = [make_real_app(real_cluster, real_workload, name_retries=50) for _ in range(2)]
    drawn = []
    for app in apps:   # the same sequence in both, so every name is wanted twice
        counter = itertools.count()

        def same_names(prefix, counter=counter):
            drawn.append(number := next(counter))
            return f"{prefix}-{number}"

        app.extensions["runai_submit"].service.name_factory = same_names
    answers: list = []

    def submit_some(app) -> None:
        client = app.test_client()
        for _ in range(3):
            answers.append(submit(client, {**SEED_JOB, "project": project, "jobNamePrefix": "race"}))

    threads = [threading.Thread(target=submit_some, args=(app,)) for app in apps for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert [r.status_code for r in answers] == [200] * 24, [r.json for r in answers if r.status_code != 200]
    given = [r.json["name"] for r in answers]
    assert len(set(given)) == 24
    assert names(real_cluster, real_workload.path(namespace)) == sorted(given)
    assert len(drawn) > 24, "no name was ever refused: the two instances did not compete"


# --- dry run ---------------------------------------------------------------------------------------


def test_dry_run_creates_nothing_but_is_checked_by_the_server(real_cluster, real_project, real_workload):
    project, namespace = real_project
    client = make_real_app(real_cluster, real_workload).test_client()
    job = {**MAXIMAL_JOB, "project": project}

    response = submit(client, job, query="?dryRun=true")

    assert response.status_code == 200, response.json
    assert [m["kind"] for m in response.json["manifests"]] == [real_workload.kind, "PersistentVolumeClaim", "Service",
                                                               "Ingress"]
    assert nothing_left(real_cluster, real_workload, namespace)
    # the server's own dry run still sees conflicts: a taken name is refused without creating anything
    assert submit(client, job).status_code == 200
    conflict = submit(client, job, query="?dryRun=true")
    assert conflict.status_code == 409, conflict.json


# --- all or nothing: a real ResourceQuota refuses the k-th object ----------------------------------


QUOTAS = {   # which object a quota of 0 refuses, and its position in the creation order
    "workload": ({"RunaiJob": "count/runaijobs.run.ai", "Job": "count/jobs.batch"}, 1),
    "PersistentVolumeClaim": ("persistentvolumeclaims", 2),
    "Service": ("services", 3),
    "Ingress": ("count/ingresses.networking.k8s.io", 4),
}


@pytest.mark.parametrize("refused", list(QUOTAS))
def test_a_quota_refusing_the_kth_object_rolls_back_everything(real_cluster, real_project, real_workload, refused):
    project, namespace = real_project
    resource, position = QUOTAS[refused]
    if isinstance(resource, dict):
        resource = resource[real_workload.kind]
    quota = real_cluster.create(f"/api/v1/namespaces/{namespace}/resourcequotas", {
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "none-left"},
        "spec": {"hard": {resource: "0"}}})
    # Admission enforces a quota only once its controller has computed the usage.
    kube_kit.wait_until(lambda: real_cluster.get(f"/api/v1/namespaces/{namespace}/resourcequotas/none-left")
                        .get("status", {}).get("hard"), "the quota's status")
    client = make_real_app(real_cluster, real_workload).test_client()

    response = submit(client, {**MAXIMAL_JOB, "project": project})

    assert response.status_code == 403, response.json
    kind = real_workload.kind if refused == "workload" else refused
    assert response.json["failedObject"] == f"{kind} {'pvc-maximal-0' if refused == 'PersistentVolumeClaim' else 'maximal'}"
    assert "exceeded quota: none-left" in response.json["details"]
    assert response.json.get("leftBehind", []) == []
    # PVCs carry a protection finalizer and pods are removed by the garbage collector: give them a moment.
    kube_kit.wait_until(lambda: nothing_left(real_cluster, real_workload, namespace),
                        f"nothing left after refusing object {position}")
    assert quota["metadata"]["name"] == "none-left"
