"""A JobSchema limited to the fields a job has (issue 13) loads exactly what the full schema loads."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError

from runai_submit.schemas.job import JobSchema, _schema_for, load_job
from tests.conftest import MAXIMAL_JOB, SEED_JOB

JOBS = {
    "seed": SEED_JOB,
    "maximal": MAXIMAL_JOB,
    "no project, no image": {"name": "x"},
    "unknown fields": {**SEED_JOB, "gpus": 1, "Image": "x"},
    "cross-field rules": {**SEED_JOB, "tty": True, "cpu": 2, "cpuLimit": 1, "preemptible": True,
                          "parallelism": 2, "serviceType": "nodeport"},
    "nested errors": {**SEED_JOB, "ports": [{"container": 0}, "80:80", 80], "pvc": [{"size": "x"}]},
    "wrong types": {"project": 7, "image": ["a"], "gpu": "one", "interactive": "yes"},
    "empty": {},
}


def _full(job: dict):
    try:
        return JobSchema().load(job), None
    except ValidationError as exc:
        return None, exc.messages


def _limited(job: dict):
    try:
        return _schema_for(job).load(job), None
    except ValidationError as exc:
        return None, exc.messages


@pytest.mark.parametrize("name", list(JOBS))
def test_same_spec_and_same_errors_in_the_same_order(name: str) -> None:
    spec, errors = _limited(JOBS[name])
    expected_spec, expected_errors = _full(JOBS[name])
    assert spec == expected_spec
    assert errors == expected_errors
    assert list((errors or {}).keys()) == list((expected_errors or {}).keys())


def test_one_schema_per_shape_of_job() -> None:
    assert _schema_for(dict(SEED_JOB)) is _schema_for(dict(SEED_JOB))
    assert load_job(SEED_JOB)[1] == [] and load_job({"name": "x"})[0] is None
