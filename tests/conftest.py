"""Fixtures: a fake Kubernetes API server on loopback, reached through the real client via a kubeconfig, and a
real control plane (``real_cluster``) for what Kubernetes itself decides."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from runai_submit.app import create_app
from tests import kube_kit
from tests.fake_apiserver import FakeApiServer

TEAM_A = "runai-team-a"          # labelled runai/queue=team-a: the seed page's project
TEAM_B = "science"               # labelled runai/queue=team-b: a namespace not named by the convention


def _populate(server: FakeApiServer) -> FakeApiServer:
    server.add_namespace(TEAM_A, {"runai/queue": "team-a"})
    server.add_namespace(TEAM_B, {"runai/queue": "team-b"})
    server.add_namespace("runai-legacy")  # no label: found through the naming convention only
    return server


@pytest.fixture(scope="session")
def fake_api_session():
    with FakeApiServer(serve_runai=True) as server:
        yield _populate(server)


@pytest.fixture(scope="session")
def fake_batch_api_session():
    """An API server without the run.ai/v1 group: jobs become batch/v1 Jobs."""
    with FakeApiServer(serve_runai=False) as server:
        yield _populate(server)


@pytest.fixture
def fake_api(fake_api_session):
    fake_api_session.reset()
    yield fake_api_session
    fake_api_session.reset()


@pytest.fixture
def fake_batch_api(fake_batch_api_session):
    fake_batch_api_session.reset()
    yield fake_batch_api_session
    fake_batch_api_session.reset()


@pytest.fixture
def kubeconfig(fake_api, tmp_path):
    return fake_api.write_kubeconfig(tmp_path / "kubeconfig")


def make_app(server: FakeApiServer, tmp_path, **settings):
    config = {
        "backend": "kubeconfig",
        "kubeconfig": server.write_kubeconfig(tmp_path / f"kubeconfig-{server.port}"),
        "connect_timeout": 1.0,
        "request_timeout": 3.0,
        "max_throttle_wait": 0.2,
        **settings,
    }
    return create_app(config)


@pytest.fixture
def app(fake_api, tmp_path):
    return make_app(fake_api, tmp_path)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def batch_client(fake_batch_api, tmp_path):
    return make_app(fake_batch_api, tmp_path).test_client()


GOLDEN = Path(__file__).parent / "golden"
# The seed page's example and a job using every parameter family; bench/jobs.py submits the same files.
SEED_JOB = json.loads((GOLDEN / "seed-request.json").read_text())["job"]
MAXIMAL_JOB = json.loads((GOLDEN / "maximal-request.json").read_text())["job"]
# Created in this order: RunaiJob, PersistentVolumeClaim, Service, Ingress.
MAXIMAL_KINDS = ["RunaiJob", "PersistentVolumeClaim", "Service", "Ingress"]


def submit(client, job: dict, *, user: str = "john", query: str = ""):
    return client.post(f"/api/job{query}", json={"job": job}, headers={"RA-USER": user})


# --- a real Kubernetes control plane (tests marked ``real``) -----------------------------------------


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory):
    """A real API server: RUNAI_SUBMIT_TEST_KUBECONFIG, else ../shared/kube started here, else skip.

    A kit that is present but fails to start is an error, not a skip: CI must not pass without its cluster.
    """
    cluster = kube_kit.connect_env()
    if cluster is not None:
        yield cluster
        cluster.delete_all_namespaces()
        return
    if not kube_kit.kit_available():
        pytest.skip(kube_kit.SKIP_REASON)
    cluster = kube_kit.start_kit(tmp_path_factory.mktemp("kube"))
    try:
        yield cluster
    finally:
        kube_kit.stop_kit(cluster)


@pytest.fixture
def real_project(real_cluster):
    """A fresh project: a namespace labelled ``runai/queue=<project>``, removed after the test."""
    project = f"p{uuid.uuid4().hex[:8]}"
    namespace = real_cluster.create_namespace(f"runai-{project}", {"runai/queue": project})
    yield project, namespace
    real_cluster.delete_namespace(namespace)


@dataclass(frozen=True)
class Workload:
    """The workload kind a real-cluster test runs with, and the settings that make the service choose it."""

    kind: str
    api_version: str
    plural: str
    settings: dict

    def path(self, namespace: str, name: str = "") -> str:
        root = f"/apis/{self.api_version}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{name}" if name else root


@pytest.fixture(scope="module", params=["RunaiJob", "Job"])
def real_workload(request, real_cluster):
    """Each kind in turn, the way a cluster gets it: with the RunaiJob CRD installed (the service discovers
    run.ai/v1), then without it (batch/v1 Job). Module-scoped, so the CRD exists only while its tests run.

    The service discovers the kind once per process: build the app inside the test (``make_real_app``).
    """
    if request.param == "RunaiJob":
        ours = real_cluster.install_crd()
        try:
            yield Workload("RunaiJob", "run.ai/v1", "runaijobs", {})
        finally:
            if ours:
                real_cluster.remove_crd()
        return
    # A cluster you provide may have Run:AI's own CRD, which the tests must not remove: name the kind then.
    foreign_crd = real_cluster.serves("run.ai/v1", "runaijobs")
    yield Workload("Job", "batch/v1", "jobs", {"workload_kind": "Job"} if foreign_crd else {})


def make_real_app(real_cluster, workload: Workload | None = None, **settings):
    """The app against the real cluster, as admin unless ``settings`` say otherwise."""
    config = {
        "backend": "kubeconfig",
        "kubeconfig": real_cluster.kubeconfig,
        "scheduler_name": "default-scheduler",
        "namespace_cache_seconds": 0.0,  # tests create projects as they go
        **(workload.settings if workload else {}),
        **settings,
    }
    return create_app(config)
