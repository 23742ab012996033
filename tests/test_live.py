"""End-to-end submits against a real cluster; skipped unless RUNAI_SUBMIT_TEST_KUBECONFIG names one.

The cluster needs a namespace for project ``RUNAI_SUBMIT_TEST_PROJECT`` (default team-a): one labelled
``runai/queue=<project>`` or named ``runai-<project>``. Every test deletes what it created.
"""
from __future__ import annotations

import os

import pytest

from runai_submit.app import create_app
from tests.conftest import SEED_JOB, submit

KUBECONFIG = os.environ.get("RUNAI_SUBMIT_TEST_KUBECONFIG", "")
PROJECT = os.environ.get("RUNAI_SUBMIT_TEST_PROJECT", "team-a")

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not KUBECONFIG, reason="set RUNAI_SUBMIT_TEST_KUBECONFIG to run against a real cluster"),
]


@pytest.fixture
def live_client():
    app = create_app({"backend": "kubeconfig", "kubeconfig": KUBECONFIG,
                      "scheduler_name": os.environ.get("RUNAI_SUBMIT_TEST_SCHEDULER", "default-scheduler")})
    created = []
    yield app.test_client(), created
    cluster = app.extensions["runai_submit"].cluster
    for namespace, kind, name in reversed(created):
        cluster.delete(namespace, kind, name)


def _track(client_and_created, response):
    from runai_submit.cluster.kinds import KINDS

    _, created = client_and_created
    for obj in response.json.get("objects", []):
        created.append((response.json["namespace"], KINDS[obj["kind"]], obj["name"]))


def test_live_seed_submit(live_client):
    client, _ = live_client
    response = submit(client, {**SEED_JOB, "project": PROJECT, "gpu": 0})
    _track(live_client, response)
    assert response.status_code == 200, response.json


def test_live_dry_run_of_a_job_with_service_and_pvc(live_client):
    client, _ = live_client
    job = {**SEED_JOB, "project": PROJECT, "gpu": 0, "ports": [8080], "serviceType": "clusterip",
           "pvc": [{"size": "1Gi", "path": "/data"}]}
    response = submit(client, job, query="?dryRun=true")
    assert response.status_code == 200, response.json
    assert [m["kind"] for m in response.json["manifests"]][1:] == ["PersistentVolumeClaim", "Service"]


def test_live_explicit_name_conflict(live_client):
    client, _ = live_client
    job = {**SEED_JOB, "project": PROJECT, "gpu": 0, "name": "runai-submit-live-conflict"}
    first = submit(client, job)
    _track(live_client, first)
    assert first.status_code == 200, first.json
    assert submit(client, job).status_code == 409
