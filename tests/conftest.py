"""Fixtures: a fake Kubernetes API server on loopback, reached through the real client via a kubeconfig."""
from __future__ import annotations

import pytest

from runai_submit.app import create_app
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


SEED_JOB = {"project": "team-a", "image": "gcr.io/run-ai-demo/quickstart", "gpu": 1}

MAXIMAL_JOB = {
    "name": "maximal",
    "project": "team-a",
    "image": "nvcr.io/nvidia/pytorch:24.01-py3",
    "command": "python train.py --epochs 3",
    "arguments": ["--lr", "0.1"],
    "environment": {"BATCH_SIZE": 50, "LEARNING_RATE": 0.2, "DEBUG": True, "TOKEN": "SECRET:creds,token"},
    "imagePullPolicy": "IfNotPresent",
    "workingDir": "/workspace",
    "createHomeDir": True,
    "gpu": 2,
    "cpu": 4,
    "cpuLimit": 8,
    "memory": "16GB",
    "memoryLimit": "32Gi",
    "largeShm": True,
    "pvc": [{"storageClass": "fast", "size": "10Gi", "path": "/data"}, "shared-claim:/shared:ro"],
    "volume": {"/raid/public/john/data": "/root/data"},
    "ports": [{"container": 8888, "external": 80}],
    "serviceType": "ingress",
    "completions": 2,
    "parallelism": 2,
    "backoffLimit": 3,
    "ttlAfterFinish": "1h30m",
    "preventPrivilegeEscalation": True,
    "nodeType": "dgx-a100",
}
# Created in this order: RunaiJob, PersistentVolumeClaim, Service, Ingress.
MAXIMAL_KINDS = ["RunaiJob", "PersistentVolumeClaim", "Service", "Ingress"]


def submit(client, job: dict, *, user: str = "john", query: str = ""):
    return client.post(f"/api/job{query}", json={"job": job}, headers={"RA-USER": user})
