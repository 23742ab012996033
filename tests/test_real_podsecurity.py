"""Pod Security against a real control plane (issue 10): what Pod Security Admission itself decides.

Pod Security Admission judges pods, which the job controller creates after the Job: a refused pod shows
up only as a ``FailedCreate`` event of the Job. So these tests let the real job controller make the pods.
"""
from __future__ import annotations

import uuid

import pytest

from tests.conftest import SEED_JOB, make_real_app, submit
from tests.kube_kit import wait_until
from tests.test_podsecurity import ENFORCE, PSA_CASES, SEED_WARNING, WARN, batch_job, warning_header_text

pytestmark = pytest.mark.real


@pytest.fixture
def labelled_project(real_cluster):
    """make(labels) -> (project, namespace): a project namespace with extra labels, removed after the test."""
    made = []

    def make(labels: dict[str, str]) -> tuple[str, str]:
        project = f"p{uuid.uuid4().hex[:8]}"
        namespace = real_cluster.create_namespace(f"runai-{project}", {"runai/queue": project, **labels})
        made.append(namespace)
        return project, namespace

    yield make
    for namespace in made:
        real_cluster.delete_namespace(namespace)


def events(real_cluster, namespace: str, job: str) -> list[dict]:
    return real_cluster.get(f"/api/v1/namespaces/{namespace}/events",
                            query={"fieldSelector": f"involvedObject.kind=Job,involvedObject.name={job}"})["items"]


def reasons(real_cluster, namespace: str, job: str) -> dict[str, str]:
    return {event["reason"]: event.get("message", "") for event in events(real_cluster, namespace, job)}


def pods_of(real_cluster, namespace: str, job: str) -> list[dict]:
    return real_cluster.get(f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": f"job-name={job}"})["items"]


def assert_pod_created(real_cluster, namespace: str, job: str) -> None:
    """The job controller made the job's pod, and Pod Security refused none (no FailedCreate)."""
    wait_until(lambda: pods_of(real_cluster, namespace, job), f"a pod of job {namespace}/{job}")
    seen = wait_until(lambda: reasons(real_cluster, namespace, job).get("SuccessfulCreate") is not None
                      and reasons(real_cluster, namespace, job), f"the SuccessfulCreate event of {job}")
    assert "FailedCreate" not in seen, seen["FailedCreate"]


def test_baseline_refuses_a_host_network_job_and_creates_nothing(real_cluster, labelled_project):
    project, namespace = labelled_project({ENFORCE: "baseline"})
    client = make_real_app(real_cluster).test_client()

    refused = submit(client, {**SEED_JOB, "project": project, "hostNetwork": True})
    plain = submit(client, {**SEED_JOB, "project": project})

    assert refused.status_code == 422, refused.json
    assert refused.json["errors"] == [{"field": "/job/hostNetwork", "message": (
        f'namespace {namespace} enforces Pod Security "baseline"; host namespaces are not allowed')}]
    assert plain.status_code == 200, plain.json
    jobs = real_cluster.get(f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
    assert [job["metadata"]["name"] for job in jobs] == [plain.json["name"]]  # the refused one left nothing
    assert_pod_created(real_cluster, namespace, plain.json["name"])


def test_restricted_seed_job_gets_its_pod(real_cluster, labelled_project):
    project, namespace = labelled_project({ENFORCE: "restricted"})
    client = make_real_app(real_cluster).test_client()

    response = submit(client, {**SEED_JOB, "project": project})

    assert response.status_code == 200, response.json
    assert response.json["warnings"] == []  # warn defaults to the enforce level: nothing to warn about
    assert_pod_created(real_cluster, namespace, response.json["name"])


def test_restricted_refuses_the_pods_of_a_job_without_the_security_context(real_cluster, labelled_project):
    """The control for the test above: the same pod, rendered without the restricted securityContext."""
    _, namespace = labelled_project({ENFORCE: "restricted"})
    real_cluster.create(f"/apis/batch/v1/namespaces/{namespace}/jobs", batch_job("bare", {
        "containers": [{"name": "bare", "image": SEED_JOB["image"]}]}))

    failed = wait_until(lambda: reasons(real_cluster, namespace, "bare").get("FailedCreate"),
                        "the FailedCreate event of job bare")

    assert 'violates PodSecurity "restricted:latest"' in failed
    assert pods_of(real_cluster, namespace, "bare") == []


@pytest.mark.parametrize("query", ["", "?dryRun=true"])
def test_warn_restricted_answer_carries_the_api_servers_warning(real_cluster, labelled_project, query):
    project, _ = labelled_project({WARN: "restricted"})
    client = make_real_app(real_cluster).test_client()

    response = submit(client, {**SEED_JOB, "project": project}, query=query)

    assert response.status_code == 200, response.json
    assert response.json["warnings"] == [SEED_WARNING.format(name=response.json["name"])]


def test_the_fake_warns_exactly_like_the_real_api_server(real_cluster):
    """Every case the fake is checked against (test_podsecurity.PSA_CASES), on the real API server."""
    namespaces: dict[tuple, str] = {}
    try:
        for case_id, labels, spec, expected in PSA_CASES:
            key = tuple(sorted(labels.items()))
            if key not in namespaces:
                namespaces[key] = real_cluster.create_namespace(labels=labels, wait_for_service_account=False)
            _, _, headers = real_cluster.request("POST", f"/apis/batch/v1/namespaces/{namespaces[key]}/jobs",
                                                 batch_job("j1", spec), query={"dryRun": "All"})
            assert warning_header_text(headers.get("Warning") or headers.get("warning")) == expected, case_id
    finally:
        for namespace in namespaces.values():
            real_cluster.delete_namespace(namespace)
