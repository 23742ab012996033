"""Fixtures: a fake Kubernetes API server on loopback, reached through the real client via a kubeconfig."""
from __future__ import annotations

import json
from pathlib import Path

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


GOLDEN = Path(__file__).parent / "golden"
# The seed page's example and a job using every parameter family; bench/run.py submits the same files.
SEED_JOB = json.loads((GOLDEN / "seed-request.json").read_text())["job"]
MAXIMAL_JOB = json.loads((GOLDEN / "maximal-request.json").read_text())["job"]
# Created in this order: RunaiJob, PersistentVolumeClaim, Service, Ingress.
MAXIMAL_KINDS = ["RunaiJob", "PersistentVolumeClaim", "Service", "Ingress"]


def submit(client, job: dict, *, user: str = "john", query: str = ""):
    return client.post(f"/api/job{query}", json={"job": job}, headers={"RA-USER": user})
