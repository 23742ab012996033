"""Fault drills: the API server refuses, stalls, throttles, fails, and the service keeps its promises (§5).

Every drill goes end to end: Flask -> service -> the real kubernetes client -> the fake API server on
loopback. Time bounds here are generous limits that tell a bounded answer from a hang, not speed claims.
Drills that leave delayed requests in flight use a fake API server of their own (``own_api``), so a create
the fake carries out after the test gave up cannot land in the next test's store.
"""
from __future__ import annotations

import concurrent.futures
import logging
import time

import pytest

from tests.conftest import MAXIMAL_JOB, MAXIMAL_KINDS, SEED_JOB, TEAM_A, TEAM_B, make_app, submit
from tests.fake_apiserver import FakeApiServer

HANG = 3.0          # an answer later than this (seconds) counts as a hang
SLOW = 4.0          # how long a stalled fake takes: longer than HANG, so a waiting service is caught
NAME = MAXIMAL_JOB["name"]

# The maximal job's objects in creation order, with their collection paths in TEAM_A.
MAXIMAL_OBJECTS = [
    ("RunaiJob", NAME, f"/apis/run.ai/v1/namespaces/{TEAM_A}/runaijobs"),
    ("PersistentVolumeClaim", f"pvc-{NAME}-0", f"/api/v1/namespaces/{TEAM_A}/persistentvolumeclaims"),
    ("Service", NAME, f"/api/v1/namespaces/{TEAM_A}/services"),
    ("Ingress", NAME, f"/apis/networking.k8s.io/v1/namespaces/{TEAM_A}/ingresses"),
]
assert [kind for kind, _, _ in MAXIMAL_OBJECTS] == MAXIMAL_KINDS
POSITIONS = range(1, len(MAXIMAL_OBJECTS) + 1)
SERVICE_JOB = {**SEED_JOB, "ports": [80], "serviceType": "clusterip"}  # auto-named: workload + Service


# --- helpers ---------------------------------------------------------------------------------------


def job_objects(server: FakeApiServer, kind: str | None = None) -> list[dict]:
    """What a job can leave in the cluster (everything but namespaces), once the controllers (garbage
    collector, pvc-protection) have caught up, as they do within a moment on a real cluster."""
    server.run_controllers()
    if kind:
        return server.objects(kind=kind)
    return [obj for obj in server.objects() if obj["kind"] != "Namespace"]


def kinds_and_names(objects: list[dict]) -> list[tuple[str, str]]:
    """Sorted (kind, name) pairs (the fake lists objects grouped by kind, not in creation order)."""
    return sorted((obj["kind"], obj["metadata"]["name"]) for obj in objects)


def posts_to(server: FakeApiServer, collection: str) -> list:
    return [r for r in server.requests if r[0] == "POST" and r[1] == collection]


def deletes_of(server: FakeApiServer, path: str) -> list:
    return [r for r in server.requests if r[0] == "DELETE" and r[1] == path]


def timed_submit(client, job: dict, **kwargs):
    started = time.monotonic()
    response = submit(client, job, **kwargs)
    return response, time.monotonic() - started


def assert_unavailable(response, elapsed: float) -> None:
    """503 with a usable Retry-After, in the error envelope, and not after a hang."""
    assert response.status_code == 503, response.json
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json["status"] == 503 and response.json["message"]
    assert elapsed < HANG, f"answered after {elapsed:.1f}s"


@pytest.fixture
def own_api():
    """A fake API server for this test alone (delayed requests may still complete after the test)."""
    with FakeApiServer(serve_runai=True) as server:
        server.add_namespace(TEAM_A, {"runai/queue": "team-a"})
        server.add_namespace(TEAM_B, {"runai/queue": "team-b"})
        yield server


# --- the API server refuses connections ------------------------------------------------------------


def test_refused_connections_are_503_fast_and_the_same_app_recovers(fake_api, tmp_path):
    # Timeouts far above HANG: a refused connection must not wait for them.
    client = make_app(fake_api, tmp_path, connect_timeout=5.0, request_timeout=20.0).test_client()
    assert submit(client, SEED_JOB).status_code == 200
    fake_api.refuse_connections(True)
    try:
        for job in (SEED_JOB, MAXIMAL_JOB, {**SEED_JOB, "project": "team-b"}):
            response, elapsed = timed_submit(client, job)
            assert_unavailable(response, elapsed)
    finally:
        fake_api.refuse_connections(False)

    # Back at once, same app instance, nothing restarted.
    response = submit(client, MAXIMAL_JOB)
    assert response.status_code == 200, response.json
    assert [obj["kind"] for obj in response.json["objects"]] == MAXIMAL_KINDS
    assert submit(client, {**SEED_JOB, "project": "team-b"}).status_code == 200
    assert len(job_objects(fake_api, "RunaiJob")) == 3  # the first seed job, the maximal one, team-b's


@pytest.mark.parametrize("workload_kind", ["auto", "RunaiJob"])
def test_cluster_down_since_start_then_back_submits_to_labelled_project(fake_api, tmp_path, workload_kind):
    """The outage covers the very first request (discovery, namespace map); recovery needs no restart."""
    client = make_app(fake_api, tmp_path, connect_timeout=5.0, request_timeout=20.0,
                      workload_kind=workload_kind).test_client()
    job = {**SEED_JOB, "project": "team-b"}  # namespace "science": found only through its runai/queue label
    fake_api.refuse_connections(True)
    try:
        response, elapsed = timed_submit(client, job)
        assert_unavailable(response, elapsed)
    finally:
        fake_api.refuse_connections(False)

    response = submit(client, job)

    assert response.status_code == 200, response.json
    assert (response.json["namespace"], response.json["kind"]) == (TEAM_B, "RunaiJob")
    assert [obj["metadata"]["namespace"] for obj in job_objects(fake_api)] == [TEAM_B]


# --- the API server is slower than the request timeout ---------------------------------------------


def test_create_slower_than_timeout_is_503_and_the_next_request_succeeds(own_api, tmp_path):
    client = make_app(own_api, tmp_path, request_timeout=0.5).test_client()
    assert submit(client, SEED_JOB).status_code == 200  # discovery and the namespace map are cached now
    own_api.clear_requests()
    own_api.delay(SLOW, verb="create", times=1)

    response, elapsed = timed_submit(client, {**SEED_JOB, "name": "stalled"})

    assert_unavailable(response, elapsed)
    assert response.json["failedObject"] == "RunaiJob stalled"
    # A timed-out create may still be carried out: the rollback tries to delete it as well.
    assert deletes_of(own_api, f"/apis/run.ai/v1/namespaces/{TEAM_A}/runaijobs/stalled")
    # The fake is fast again: no worker or pooled connection is stuck on the stalled call.
    response, elapsed = timed_submit(client, MAXIMAL_JOB)
    assert response.status_code == 200, response.json
    assert elapsed < HANG


def test_timed_out_workload_create_is_not_reported_as_rolled_back(own_api, tmp_path):
    """A create that timed out may still be carried out after the rollback's delete (404) went by.

    Either the service makes sure it is gone, or its answer says the workload may remain (leftBehind).
    """
    stall = 1.5
    client = make_app(own_api, tmp_path, request_timeout=0.5).test_client()
    assert submit(client, SEED_JOB).status_code == 200
    own_api.delay(stall, verb="create", times=1)
    started = time.monotonic()

    response = submit(client, {**SEED_JOB, "name": "stalled"})

    assert response.status_code == 503, response.json
    time.sleep(max(0.0, stall + 0.5 - (time.monotonic() - started)))  # the fake has finished the create
    remaining = [obj for obj in job_objects(own_api) if obj["metadata"]["name"] == "stalled"]
    assert not remaining or "RunaiJob stalled" in response.json["leftBehind"], (
        f"the answer said leftBehind={response.json['leftBehind']}, yet {kinds_and_names(remaining)} remain"
    )


def test_concurrent_slow_requests_all_come_back(own_api, tmp_path):
    client = make_app(own_api, tmp_path, request_timeout=0.5).test_client()
    assert submit(client, SEED_JOB).status_code == 200
    own_api.delay(SLOW, verb="create")  # every create stalls until cleared

    def one(_):
        return timed_submit(client, SEED_JOB)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(one, range(6), timeout=3 * HANG))
    assert time.monotonic() - started < 2 * HANG
    for response, elapsed in results:
        assert_unavailable(response, elapsed)

    own_api.clear_faults()
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        after = list(pool.map(one, range(6), timeout=3 * HANG))
    assert [response.status_code for response, _ in after] == [200] * 6


def test_rollback_against_a_stalled_api_server_is_bounded_and_reports_leftovers(own_api, tmp_path):
    client = make_app(own_api, tmp_path, request_timeout=0.5).test_client()
    assert submit(client, SEED_JOB).status_code == 200
    own_api.delay(SLOW)  # every verb: the create times out, and so does the rollback's delete

    response, elapsed = timed_submit(client, MAXIMAL_JOB)

    assert_unavailable(response, elapsed)
    assert response.json["failedObject"] == f"RunaiJob {NAME}"
    assert response.json["leftBehind"] == [f"RunaiJob {NAME}"]
    assert f"RunaiJob {NAME}" in response.json["details"]


# --- 500 and 429 on the k-th object of a maximal job -----------------------------------------------


@pytest.mark.parametrize("position", POSITIONS)
def test_500_on_kth_object_is_502_naming_it_and_rolls_back_it_too(client, fake_api, position):
    kind, name, collection = MAXIMAL_OBJECTS[position - 1]
    fake_api.fail_request(verb="create", nth=position, status=500)

    response = submit(client, MAXIMAL_JOB)

    assert response.status_code == 502, response.json
    assert response.json["failedObject"] == f"{kind} {name}"
    assert kind in response.json["message"] and name in response.json["message"]
    assert f"{kind} {name}" in response.json["details"]
    # A create answered 500 may have been persisted: the rollback deletes it as well as those before it.
    for _, earlier_name, earlier_collection in MAXIMAL_OBJECTS[:position]:
        assert deletes_of(fake_api, f"{earlier_collection}/{earlier_name}"), earlier_name
    assert response.json["leftBehind"] == []
    assert job_objects(fake_api) == []


@pytest.mark.parametrize("position", POSITIONS)
def test_single_429_on_kth_object_is_retried_after_the_wait_and_succeeds(fake_api, tmp_path, position):
    wait = 0.3
    client = make_app(fake_api, tmp_path, max_throttle_wait=wait, throttle_retries=2).test_client()
    kind, name, collection = MAXIMAL_OBJECTS[position - 1]
    fake_api.fail_request(verb="create", nth=position, status=429, headers={"Retry-After": "1"}, times=1)

    response, elapsed = timed_submit(client, MAXIMAL_JOB)

    assert response.status_code == 200, response.json
    assert len(posts_to(fake_api, collection)) == 2  # the throttled POST and its retry
    assert len([r for r in fake_api.requests if r[0] == "POST"]) == len(MAXIMAL_OBJECTS) + 1
    assert elapsed >= wait, "the retry did not wait (Retry-After capped by max_throttle_wait)"
    assert elapsed < HANG
    assert kinds_and_names(job_objects(fake_api)) == sorted((k, n) for k, n, _ in MAXIMAL_OBJECTS)
    assert not [r for r in fake_api.requests if r[0] == "DELETE"]


@pytest.mark.parametrize("retries", [0, 2])
@pytest.mark.parametrize("position", POSITIONS)
def test_persistent_429_on_kth_object_is_503_after_bounded_attempts_and_rolls_back(
    fake_api, tmp_path, position, retries
):
    client = make_app(fake_api, tmp_path, max_throttle_wait=0.1, throttle_retries=retries).test_client()
    kind, name, collection = MAXIMAL_OBJECTS[position - 1]
    fake_api.fail_request(verb="create", nth=position, status=429, headers={"Retry-After": "1"}, times=10)

    response, elapsed = timed_submit(client, MAXIMAL_JOB)

    assert_unavailable(response, elapsed)
    assert response.json["failedObject"] == f"{kind} {name}"
    assert len(posts_to(fake_api, collection)) == retries + 1
    for _, _, later_collection in MAXIMAL_OBJECTS[position:]:
        assert not posts_to(fake_api, later_collection)  # nothing after the throttled object was tried
    for _, earlier_name, earlier_collection in MAXIMAL_OBJECTS[:position - 1]:
        assert deletes_of(fake_api, f"{earlier_collection}/{earlier_name}"), earlier_name
    assert response.json["leftBehind"] == []
    assert job_objects(fake_api) == []


# --- the rollback itself fails ---------------------------------------------------------------------


@pytest.mark.parametrize("position", POSITIONS)
def test_failed_rollback_names_what_may_remain_and_logs_it(client, fake_api, caplog, position):
    caplog.set_level(logging.INFO)
    kind, name, _ = MAXIMAL_OBJECTS[position - 1]
    fake_api.fail_request(verb="create", nth=position, status=500)
    fake_api.fail_request(verb="delete", status=500, times=20)

    response = submit(client, MAXIMAL_JOB)

    assert response.status_code == 502, response.json
    assert response.json["failedObject"] == f"{kind} {name}"
    # Everything created so far, plus the failed create (a 500 may have been persisted), may remain.
    maybe_left = [f"{k} {n}" for k, n, _ in MAXIMAL_OBJECTS[:position]]
    assert sorted(response.json["leftBehind"]) == sorted(maybe_left)
    for obj in maybe_left:
        assert obj in response.json["details"], obj
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR and obj.split()[0] in r.getMessage()
                  and obj.split()[1] in r.getMessage()]
        assert errors, f"no ERROR log names {obj}"

    remaining = job_objects(fake_api)
    assert kinds_and_names(remaining) == sorted((k, n) for k, n, _ in MAXIMAL_OBJECTS[:position - 1])
    workloads = [obj for obj in remaining if obj["kind"] == "RunaiJob"]
    for dependent in [obj for obj in remaining if obj["kind"] in ("Service", "Ingress")]:
        owners = [ref["uid"] for ref in dependent["metadata"]["ownerReferences"]]
        assert owners == [workloads[0]["metadata"]["uid"]]

    # An operator deleting the workload lets the cluster collect its Service and Ingress; the PVC stays.
    fake_api.clear_faults()
    if workloads:
        cluster = client.application.extensions["runai_submit"].cluster
        assert cluster.delete(TEAM_A, _kind("RunaiJob"), NAME)
        assert {obj["kind"] for obj in job_objects(fake_api)} <= {"PersistentVolumeClaim"}


def test_rollback_failing_on_a_dependent_still_leaves_nothing_thanks_to_owner_references(client, fake_api):
    fake_api.fail_request(verb="create", kind="Ingress", status=500)
    fake_api.fail_request(verb="delete", kind="Service", status=500, times=5)

    response = submit(client, MAXIMAL_JOB)

    assert response.status_code == 502, response.json
    assert response.json["failedObject"] == f"Ingress {NAME}"
    assert response.json["leftBehind"] == [f"Service {NAME}"]
    # The workload was deleted, so the garbage collector removed the Service the rollback could not.
    assert job_objects(fake_api) == []


# --- 403 and 422 keep their meaning ----------------------------------------------------------------

QUOTA = ('persistentvolumeclaims "pvc-maximal-0" is forbidden: exceeded quota: storage, requested: '
         "requests.storage=10Gi, used: requests.storage=95Gi, limited: requests.storage=100Gi")
INVALID = 'the cluster says: spec.foo: Invalid value: "bar": drill-injected rejection'


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize(("status", "reason", "message"), [(403, "Forbidden", QUOTA), (422, "Invalid", INVALID)])
def test_403_and_422_keep_their_status_and_message_and_roll_back(client, fake_api, position, status, reason,
                                                                  message):
    kind, name, _ = MAXIMAL_OBJECTS[position - 1]
    fake_api.fail_request(verb="create", nth=position, status=status, reason=reason, message=message)

    response = submit(client, MAXIMAL_JOB)

    assert response.status_code == status, response.json
    assert response.json["status"] == status
    assert message in response.json["details"]
    assert response.json["failedObject"] == f"{kind} {name}"
    assert response.json["leftBehind"] == []
    assert job_objects(fake_api) == []


# --- 409 on a dependent of an auto-named job -------------------------------------------------------


@pytest.mark.parametrize("dependent", ["PersistentVolumeClaim", "Service", "Ingress"])
def test_409_on_a_dependent_of_an_auto_named_job_retries_with_a_new_name(client, fake_api, dependent):
    job = {key: value for key, value in MAXIMAL_JOB.items() if key != "name"}
    fake_api.fail_request(verb="create", kind=dependent, status=409)  # AlreadyExists, once

    response = submit(client, job)

    assert response.status_code == 200, response.json
    final = response.json["name"]
    (workload,) = job_objects(fake_api, "RunaiJob")
    assert workload["metadata"]["name"] == final
    assert kinds_and_names(job_objects(fake_api)) == sorted(
        [("RunaiJob", final), ("PersistentVolumeClaim", f"pvc-{final}-0"), ("Service", final), ("Ingress", final)]
    )
    for obj in job_objects(fake_api, "Service") + job_objects(fake_api, "Ingress"):
        assert [ref["uid"] for ref in obj["metadata"]["ownerReferences"]] == [workload["metadata"]["uid"]]
    workload_posts = posts_to(fake_api, MAXIMAL_OBJECTS[0][2])
    assert len(workload_posts) == 2
    # The first attempt's workload was deleted again under its own (different) name.
    deleted = [r[1].rsplit("/", 1)[1] for r in fake_api.requests
               if r[0] == "DELETE" and r[1].startswith(MAXIMAL_OBJECTS[0][2] + "/")]
    assert len(deleted) == 1 and deleted[0] != final


def test_409_on_the_service_of_a_small_auto_named_job(client, fake_api):
    fake_api.fail_request(verb="create", kind="Service", status=409)

    response = submit(client, SERVICE_JOB)

    assert response.status_code == 200, response.json
    final = response.json["name"]
    assert kinds_and_names(job_objects(fake_api)) == [("RunaiJob", final), ("Service", final)]


def _kind(name: str):
    from runai_submit.cluster.kinds import KINDS

    return KINDS[name]
