"""The real control plane fixture itself: a seed job through the service lands as a real batch/v1 Job."""
from __future__ import annotations

import pytest

from tests.conftest import SEED_JOB, make_real_app, submit

pytestmark = pytest.mark.real


def test_seed_job_is_created_in_a_real_cluster(real_cluster, real_project):
    project, namespace = real_project
    client = make_real_app(real_cluster).test_client()
    response = submit(client, {**SEED_JOB, "project": project})
    assert response.status_code == 200, response.json
    assert response.json["kind"] == "Job"
    stored = real_cluster.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{response.json['name']}")
    assert stored["metadata"]["annotations"]["user"] == "john"
    assert stored["spec"]["template"]["spec"]["schedulerName"] == "default-scheduler"
