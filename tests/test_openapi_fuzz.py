"""The fuzzing gate: the API against its own OpenAPI document, with every schemathesis check, on positive and
negative data (tests/fuzzing.py has the machinery).

In ``make test``: ``fuzzing.GATE_EXAMPLES`` examples per operation and mode, seeded, against the app backed by a fake
API server of its own. ``make fuzz``: many more, against the fake and the real control plane, with a report.

Checks and exclusions, each justified:
- Every check schemathesis has is on (``call_and_validate`` with the config's full set), except that
  ``positive_data_acceptance`` is replaced by ``fuzzing.make_acceptance_check``: it fails the same way, but lets a
  422 through when every error it names is a rule the document states in words (``x-rules``: a rule across fields
  or on an object's keys, which OpenAPI 3.0 has no keyword for). A 422 for any rule the schema itself states is
  still a failure.
- ``negative_data_rejection`` is replaced by ``fuzzing.make_rejection_check``: the same, except that a batch
  that is not atomic answers a job that breaks the schema in that job's item (README "Idempotency and batch
  submit": each job is validated on its own), so a 200 is accepted there when every declared query and header
  parameter was valid (an added unknown query parameter is ignored by the service) and some item is refused
  with a 4xx.
- ``ignored_auth`` is excluded: the service runs in its default ``header`` auth mode, where the security scheme
  is RA-USER "taken on trust" (README "Security"); every non-blank value is a valid user, so the check's premise
  (that a generated credential is invalid and must be refused) does not hold. A blank RA-USER is still checked to
  be a 401, by ``missing_required_header`` and the RA-USER parameter's pattern.
- No operation is excluded.
"""
from __future__ import annotations

import json
import os
import uuid

import pytest
from schemathesis.specs.openapi.checks import ignored_auth

from tests import fuzzing
from tests.conftest import SEED_JOB, make_app, make_real_app
from tests.fake_apiserver import FakeApiServer

DOCUMENT = fuzzing.served_document()
RULES = fuzzing.word_rules(DOCUMENT)
ACCEPTANCE = fuzzing.make_acceptance_check(RULES)
REJECTION = fuzzing.make_rejection_check(DOCUMENT)
EXCLUDED_CHECKS = [fuzzing.positive_data_acceptance, fuzzing.negative_data_rejection, ignored_auth]  # see above
BACKENDS = os.environ.get("RUNAI_SUBMIT_FUZZ_BACKENDS", "fake").split(",")

# A followed log stream ends after a second: the fuzzing asks for many.
APP_SETTINGS = {"log_level": "warning", "log_follow_max_seconds": 1.0}

# Loaded at import time, as schemathesis' pytest integration needs.
schema = fuzzing.load_schema(DOCUMENT)


class Backend:
    """The app under test, the project the steered requests use, and the counts of what was sent."""

    def __init__(self, name: str, app, cleanup=None) -> None:
        self.name = name
        self.app = app
        self.client = app.test_client()
        self.tally = fuzzing.Tally(name)
        self.cleanup = cleanup

    def seed_jobs(self) -> None:
        for name in fuzzing.EXISTING_JOBS:
            job = {**SEED_JOB, "project": fuzzing.PROJECT, "name": name, "gpu": 0, "ports": [80],
                   "serviceType": "clusterip"}
            response = self.client.post("/api/job", json={"job": job}, headers={"RA-USER": "john"})
            assert response.status_code == 200, response.json


def _fake_backend(tmp_path_factory):
    server = FakeApiServer(serve_runai=True).__enter__()
    server.add_namespace(f"runai-{fuzzing.PROJECT}", {"runai/queue": fuzzing.PROJECT})
    backend = Backend("fake", make_app(server, tmp_path_factory.mktemp("fuzz"), **APP_SETTINGS),
                      cleanup=lambda: server.__exit__(None, None, None))
    return backend


def _real_backend(request):
    cluster = request.getfixturevalue("real_cluster")
    namespace = cluster.create_namespace(f"runai-fuzz-{uuid.uuid4().hex[:6]}", {"runai/queue": fuzzing.PROJECT})
    # No kubelet runs pods here, but the job controller would still create (pending) pods for every job the
    # fuzzing submits: a quota of 0 pods keeps the control plane light. Submits create no pods themselves.
    cluster.create(f"/api/v1/namespaces/{namespace}/resourcequotas", {
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}},
    })
    return Backend("real", make_real_app(cluster, **APP_SETTINGS),
                   cleanup=lambda: cluster.delete_namespace(namespace))


@pytest.fixture(scope="module", params=[pytest.param(name, marks=[pytest.mark.real] if name == "real" else [])
                                        for name in BACKENDS])
def backend(request, tmp_path_factory):
    made = _fake_backend(tmp_path_factory) if request.param == "fake" else _real_backend(request)
    try:
        made.seed_jobs()
        yield made
    finally:
        _report(request, made)
        made.cleanup()


def _report(request, backend: Backend) -> None:
    report = backend.tally.report()
    line = (f"fuzz[{backend.name}]: {report['cases']} cases in {report['seconds']} s, modes {report['by_mode']}, "
            f"{report['server_errors']} 5xx, {report['failures']} failures")
    line += "".join(f"\n  {failure}" for failure in report["failure_lines"])
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
    if fuzzing.REPORT:
        path = f"{fuzzing.REPORT}.{backend.name}.json"
        with open(path, "w") as out:
            json.dump(report, out, indent=1)


def _send(backend: Backend, case, *, generated: bool):
    """Send ``case`` with every check, count it, and remember a failure's first line for the report."""
    label = f"{case.method.upper()} {case.operation.path}"
    mode = case.meta.generation.mode.value if case.meta is not None else "steered"
    response = case.call(app=backend.app)
    backend.tally.record(label, response.status_code, mode)
    try:
        case.validate_response(response, excluded_checks=EXCLUDED_CHECKS,
                               additional_checks=[ACCEPTANCE, REJECTION], transport_kwargs={"app": backend.app})
    except Exception as exc:
        backend.tally.failures.append(f"{label} ({mode}) {response.status_code}: "
                                      f"{' '.join(str(exc).split())[:300]}")
        raise
    return response


@schema.parametrize()
def test_api_conforms_to_its_document(case, backend):
    """No 5xx, every answer as documented (status, content type, headers, body), schema-valid data accepted and
    invalid data refused; then the steered variants, which must also succeed where they can."""
    _send(backend, case, generated=True)
    for variant in fuzzing.steer(case):
        steered = case.operation.Case(**variant)
        response = _send(backend, steered, generated=False)
        _check_steered(backend, steered, response)


def _check_steered(backend: Backend, case, response) -> None:
    """A steered request aims at things that exist: it succeeds unless a word-only rule (or a taken name) says no."""
    path = case.operation.path
    body = response.json() if "json" in response.headers.get("content-type", [""])[0] else response.text
    if case.method.upper() == "POST" and path in fuzzing.SUBMIT_PATHS:
        assert response.status_code in (200, 409, 422), body
        if response.status_code == 422:
            assert fuzzing.refused_only_for_word_rules(body, RULES), body
        if response.status_code == 200 and "manifests" not in body:
            _delete(backend, "/api/v1/jobs" if path == "/api/v1/jobs" else "/api/job", body["name"], body["project"])
    elif path == fuzzing.BATCH_PATH:
        assert response.status_code in (200, 409, 422), body
        if response.status_code == 422:
            assert fuzzing.refused_only_for_word_rules(body, RULES), body
        for item in body.get("data", []):
            if item.get("error") and item["error"]["status"] == 422:
                assert fuzzing.refused_only_for_word_rules(item["error"], RULES), item
            if item.get("ok") and "manifests" not in item:
                _delete(backend, "/api/job", item["name"], item["project"])
    elif path.endswith("/logs"):
        assert response.status_code in (200, 409), body  # 409: no pod of the job has started a container
    elif "name" in case.path_parameters:  # the job, suspend, resume
        assert response.status_code == 200, body
        assert (body["project"], body["name"]) == (case.path_parameters["project"], case.path_parameters["name"])
    elif path == "/api/v1/policy":
        assert response.status_code == 200, body
    else:
        assert response.status_code == 200, body
        assert all(job["project"] == fuzzing.PROJECT for job in body["data"]), body


def _delete(backend: Backend, path: str, name: str, project: str) -> None:
    """Delete what a steered submit created (and check that answer too): keeps the cluster small over thousands
    of cases."""
    removal = schema[path]["DELETE"].Case(body=[{"name": name, "project": project}], headers={"RA-USER": "fuzzer"},
                                          query={"deletePvcs": "true"})
    answer = _send(backend, removal, generated=False)
    assert answer.status_code == 200 and answer.json()[0]["ok"], answer.json()


@pytest.mark.parametrize("query, headers, valid", [
    ({"atomic": "false", "sort": "x"}, {"RA-USER": "john"}, True),       # an unknown query parameter is ignored
    ({}, {"ra-user": "john", "Idempotency-Key": "k-1"}, True),
    ({"dryRun": "yes"}, {"RA-USER": "john"}, False),                      # a flag is exactly true or false
    ({}, {}, False),                                                      # RA-USER is required
    ({}, {"RA-USER": " "}, False),                                        # ... and not blank
    ({}, {"RA-USER": "john", "Idempotency-Key": "é"}, False),             # printable ASCII only
])
def test_batch_exemption_needs_every_declared_parameter_valid(query, headers, valid):
    """The batch exemption of the rejection check (a 200 with refused items) holds only when the query and headers
    were valid as the document declares them: otherwise the 200 is still a failure."""
    case = schema["/api/v1/jobs/batch"]["POST"].Case(query=query, headers=headers, body={"jobs": [{}]})
    parameters = DOCUMENT["paths"]["/api/v1/jobs/batch"]["post"]["parameters"]
    assert fuzzing._declared_parameters_valid(parameters, case) is valid
