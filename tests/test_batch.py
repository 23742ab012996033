"""POST /api/v1/jobs/batch against the fake API server: outcomes in order, pointers into the batch, all-or-none,
dry runs, the size limit, keyed retries, bounded concurrency over one pool, audit records and metrics."""
from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from runai_submit.cluster.kube import KubeCluster
from runai_submit.config import Settings
from tests.conftest import MAXIMAL_JOB, SEED_JOB, TEAM_B, make_app

BATCH = "/api/v1/jobs/batch"
SERVICE_JOB = {**SEED_JOB, "ports": [{"container": 8080}], "serviceType": "clusterip"}


def post_batch(client, jobs, *, query: str = "", key: str | None = None, user: str = "john"):
    headers = {"RA-USER": user}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(f"{BATCH}{query}", json={"jobs": jobs}, headers=headers)


def job_objects(fake) -> list[dict]:
    """What jobs left in the cluster once its controllers (garbage collector, pvc-protection) caught up."""
    fake.run_controllers()
    return [obj for obj in fake.objects() if obj["kind"] != "Namespace"]


def named(index: int, **extra) -> dict:
    return {**SEED_JOB, "name": f"b-{index}", **extra}


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- answers -------------------------------------------------------------------------------------------


def test_every_job_is_created_and_answered_in_request_order(client, fake_api):
    jobs = [named(i) for i in range(6)] + [SERVICE_JOB, {**SEED_JOB, "jobNamePrefix": "sweep"}]

    response = post_batch(client, jobs)

    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert [item["index"] for item in data] == list(range(8))
    assert all(item["ok"] for item in data), data
    assert [item["name"] for item in data[:6]] == [f"b-{i}" for i in range(6)]
    assert [o["kind"] for o in data[6]["objects"]] == ["RunaiJob", "Service"]
    assert data[7]["name"].startswith("sweep-")
    names = {obj["metadata"]["name"] for obj in fake_api.objects("RunaiJob")}
    assert names == {item["name"] for item in data}
    assert {"index", "ok", "name", "project", "namespace", "kind", "objects"} <= set(data[0])


def test_mixed_outcomes_carry_pointers_into_the_batch(client, fake_api):
    assert client.post("/api/job", json={"job": named(9)}, headers={"RA-USER": "john"}).status_code == 200
    jobs = [
        named(0),
        named(1, gpu=-1, ports=[{"container": 70000}]),
        named(2, project="nope"),
        "not a job",
        named(4),
        named(9),  # a name already taken
    ]

    response = post_batch(client, jobs)

    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert [item["ok"] for item in data] == [True, False, False, False, True, False]
    assert data[1]["error"]["status"] == 422
    assert {e["field"] for e in data[1]["error"]["errors"]} == {"/jobs/1/gpu", "/jobs/1/ports/0/container"}
    assert "/jobs/1/gpu" in data[1]["error"]["details"] and "/job/" not in data[1]["error"]["details"]
    assert data[2]["error"]["status"] == 404
    assert [e["field"] for e in data[2]["error"]["errors"]] == ["/jobs/2/project"]
    assert data[3]["error"]["status"] == 400
    assert [e["field"] for e in data[3]["error"]["errors"]] == ["/jobs/3"]
    assert data[5]["error"]["status"] == 409
    assert [e["field"] for e in data[5]["error"]["errors"]] == ["/jobs/5/name"]
    assert sorted(obj["metadata"]["name"] for obj in fake_api.objects("RunaiJob")) == ["b-0", "b-4", "b-9"]


def test_a_job_failing_part_way_is_rolled_back_alone(client, fake_api):
    fake_api.fail_request(verb="create", kind="Service", status=500, nth=2)
    jobs = [named(i, ports=[{"container": 80}], serviceType="clusterip") for i in range(3)]

    response = post_batch(client, jobs)

    data = response.json["data"]
    assert response.status_code == 200
    assert sorted(item["ok"] for item in data) == [False, True, True]
    (failed,) = [item for item in data if not item["ok"]]
    assert failed["error"]["status"] == 502
    assert failed["error"]["failedObject"] == f"Service b-{failed['index']}"
    names = sorted(obj["metadata"]["name"] for obj in fake_api.objects("RunaiJob"))
    assert names == sorted(item["name"] for item in data if item["ok"])
    assert len(fake_api.objects("Service")) == 2


def test_dry_run_creates_nothing_and_answers_manifests(client, fake_api):
    response = post_batch(client, [named(0), SERVICE_JOB, named(2, gpu=-1)], query="?dryRun=true")

    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert [item["ok"] for item in data] == [True, True, False]
    assert [m["kind"] for m in data[1]["manifests"]] == ["RunaiJob", "Service"]
    assert job_objects(fake_api) == []
    assert all(query.get("dryRun") == "All" for method, _, query in fake_api.requests if method == "POST")


# --- all or none -----------------------------------------------------------------------------------------


def test_atomic_with_invalid_jobs_is_a_422_listing_every_error_and_creates_nothing(client, fake_api):
    jobs = [named(0), named(1, gpu=-1), named(2), named(3, image="", cpu=0), 7]

    response = post_batch(client, jobs, query="?atomic=true")

    assert response.status_code == 422, response.json
    fields = [error["field"] for error in response.json["errors"]]
    assert sorted(fields) == ["/jobs/1/gpu", "/jobs/3/cpu", "/jobs/3/image", "/jobs/4"]
    assert fields[0] == "/jobs/1/gpu" and fields[-1] == "/jobs/4"  # in request order
    assert "nothing was created" in response.json["message"]
    statuses = [item["error"]["status"] for item in response.json["data"]]
    assert statuses == [424, 422, 424, 422, 400]
    assert [request for request in fake_api.requests if request[0] == "POST"] == []


@pytest.mark.parametrize("query", ["?atomic=true", "?atomic=true&dryRun=true", "?dryRun=true", ""])
def test_two_jobs_of_one_name_in_one_project_are_refused_up_front_alike_in_every_mode(client, fake_api, query):
    jobs = [named(0), {**named(0), "gpu": 1}, named(0, project="team-b"), named(3), {**named(3), "gpu": -1}]

    response = post_batch(client, jobs, query=query)

    items = response.json["data"]
    repeated = {"field": "/jobs/1/name",
                "message": "job 0 of this batch has the same name in project 'team-a'; a name is one job"}
    assert items[1]["error"]["status"] == 422 and items[1]["error"]["errors"] == [repeated]
    # A repeat that is invalid on its own answers its own problems first.
    assert [error["field"] for error in items[4]["error"]["errors"]] == ["/jobs/4/gpu"]
    if "atomic" in query:
        assert response.status_code == 422, response.json
        assert repeated in response.json["errors"]
        assert [request for request in fake_api.requests if request[0] == "POST"] == []
    else:
        assert response.status_code == 200, response.json
        assert [item["ok"] for item in items] == [True, False, True, True, False]
        created = sorted((obj["metadata"]["namespace"], obj["metadata"]["name"])
                         for obj in job_objects(fake_api))
        assert created == ([] if "dryRun" in query else
                           sorted([("runai-team-a", "b-0"), (TEAM_B, "b-0"), ("runai-team-a", "b-3")]))


@pytest.mark.parametrize("kind, nth", [("RunaiJob", 1), ("RunaiJob", 5), ("Service", 3), ("Ingress", 8)])
def test_atomic_with_a_failure_at_the_kth_create_leaves_nothing(client, fake_api, kind, nth):
    fake_api.fail_request(verb="create", kind=kind, nth=nth, status=403, reason="Forbidden")
    jobs = [{**MAXIMAL_JOB, "name": f"m-{i}", "ports": [{"container": 80}]} for i in range(10)]

    response = post_batch(client, jobs, query="?atomic=true")

    assert response.status_code == 403, response.json
    data = response.json["data"]
    failed = [item for item in data if item["error"]["status"] == 403]
    assert len(failed) == 1
    assert response.json["message"].startswith(f"Job {failed[0]['index']} of the atomic batch failed")
    others = [item for item in data if item["error"]["status"] != 403]
    assert others and all(item["error"]["status"] == 424 for item in others)
    rolled_back = [item for item in others if item["error"]["message"].startswith("Rolled back")]
    assert all(f"job {failed[0]['index']}" in item["error"]["message"] for item in others)
    assert job_objects(fake_api) == []  # not a claim, Service, Ingress or workload of any job remains
    deletes = {path.rsplit("/", 1)[1] for method, path, _ in fake_api.requests if method == "DELETE"}
    assert {f"m-{item['index']}" for item in rolled_back} <= deletes


def test_an_atomic_batch_that_succeeds_is_a_plain_200(client, fake_api):
    response = post_batch(client, [named(i) for i in range(4)], query="?atomic=true")
    assert response.status_code == 200, response.json
    assert all(item["ok"] for item in response.json["data"])
    assert len(fake_api.objects("RunaiJob")) == 4


def test_atomic_dry_run_reports_every_failure_and_creates_nothing(client, fake_api):
    response = post_batch(client, [named(0), named(1, project="nope"), named(2)], query="?atomic=true&dryRun=true")
    assert response.status_code == 404, response.json
    assert "nothing would be created" in response.json["message"]
    assert [item["ok"] for item in response.json["data"]] == [True, False, True]
    assert job_objects(fake_api) == []


# --- limits and malformed bodies -------------------------------------------------------------------------


def test_more_jobs_than_the_limit_is_a_413_with_a_message(fake_api, tmp_path):
    client = make_app(fake_api, tmp_path, max_batch=3).test_client()
    response = post_batch(client, [named(i) for i in range(4)])
    assert response.status_code == 413, response.json
    assert "at most 3 jobs" in response.json["message"]
    assert [error["field"] for error in response.json["errors"]] == ["/jobs"]
    assert job_objects(fake_api) == []
    assert post_batch(client, [named(i) for i in range(3)]).status_code == 200


@pytest.mark.parametrize("body, status, field", [
    ({"jobs": []}, 422, "/jobs"),
    ({"jobs": [SEED_JOB], "atomic": True}, 422, "/atomic"),
    ({"jobs": {"a": SEED_JOB}}, 400, "/jobs"),
    ({"job": SEED_JOB}, 400, "/jobs"),
    ([SEED_JOB], 400, None),
])
def test_malformed_batch_bodies_are_refused_whole(client, fake_api, body, status, field):
    response = client.post(BATCH, json=body, headers={"RA-USER": "john"})
    assert response.status_code == status, response.json
    assert [error["field"] for error in response.json["errors"]] == ([field] if field else [])
    assert job_objects(fake_api) == []


def test_a_batch_needs_the_user_header(client, fake_api):
    assert client.post(BATCH, json={"jobs": [SEED_JOB]}).status_code == 401
    assert job_objects(fake_api) == []


# --- Idempotency-Key on a batch ---------------------------------------------------------------------------


def test_a_retried_keyed_batch_replays_what_exists_and_creates_the_rest(client, fake_api):
    jobs = [SEED_JOB, {**SEED_JOB, "project": "nope"}, SERVICE_JOB, {**SEED_JOB, "gpu": 2}]
    first = post_batch(client, jobs, key="sweep-1")
    assert [item["ok"] for item in first.json["data"]] == [True, False, True, True]

    jobs[1] = {**SEED_JOB, "project": "team-b"}  # the caller fixes the failed job and retries the batch
    retry = post_batch(client, jobs, key="sweep-1")

    assert retry.status_code == 200, retry.json
    data = retry.json["data"]
    assert all(item["ok"] for item in data), data
    assert [item.get("replayed", False) for item in data] == [True, False, True, True]
    for index in (0, 2, 3):
        assert {k: v for k, v in data[index].items() if k != "replayed"} == first.json["data"][index]
    assert len(fake_api.objects("RunaiJob")) == 4
    assert len({item["name"] for item in data}) == 4  # one key, four jobs: each item has its own


def test_the_same_jobs_under_one_key_in_one_batch_are_distinct_jobs(client, fake_api):
    response = post_batch(client, [SEED_JOB, SEED_JOB, SEED_JOB], key="k")
    assert [item["ok"] for item in response.json["data"]] == [True, True, True]
    assert len({item["name"] for item in response.json["data"]}) == 3


def test_a_keyed_batch_item_changed_on_retry_is_refused_alone(client, fake_api):
    assert post_batch(client, [named(0), named(1)], key="k").status_code == 200
    retry = post_batch(client, [named(0), named(1, image="other:2")], key="k")
    data = retry.json["data"]
    assert data[0]["ok"] and data[0]["replayed"]
    assert data[1]["error"]["status"] == 422
    assert [e["field"] for e in data[1]["error"]["errors"]] == ["Idempotency-Key"]


def test_a_keyed_batch_item_in_flight_says_when_to_retry(client, fake_api, tmp_path):
    """A job whose key is bound to an incomplete job (here: its rollback failed) answers 409 with retryAfterSeconds."""
    fake_api.fail_request(verb="create", kind="ConfigMap", status=500)
    fake_api.fail_request(verb="delete", kind="RunaiJob", status=500)
    assert post_batch(client, [named(0)], key="k").json["data"][0]["error"]["status"] == 502
    retry = post_batch(client, [named(0)], key="k").json["data"][0]
    assert retry["error"]["status"] == 409
    assert retry["error"]["retryAfterSeconds"] == 1


# --- concurrency over the one pool -----------------------------------------------------------------------


def test_jobs_are_created_concurrently_and_never_more_than_the_bound(fake_api, tmp_path, caplog):
    """The fake holds each create until 4 are in flight at once, so this batch can only finish if the service
    really sends 4 creates concurrently; and it never sends more than batch_concurrency at once."""
    client = make_app(fake_api, tmp_path, batch_concurrency=4).test_client()
    assert post_batch(client, [named(100)]).status_code == 200  # discovery and the project map: done
    fake_api.reset()
    fake_api.gate(4, verb="create")
    caplog.set_level(logging.WARNING, logger="urllib3")

    response = post_batch(client, [named(i) for i in range(12)])

    assert response.status_code == 200, response.json
    assert all(item["ok"] for item in response.json["data"]), response.json
    assert fake_api.peak_in_flight == 4
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_the_connection_pool_keeps_a_connection_per_concurrent_job(fake_api, tmp_path):
    settings = Settings.load({"backend": "kubeconfig", "batch_concurrency": 48,
                              "kubeconfig": fake_api.write_kubeconfig(tmp_path / "kubeconfig")})
    cluster = KubeCluster.from_settings(settings, "kubeconfig")
    try:
        assert cluster.api.rest_client.pool_manager.connection_pool_kw["maxsize"] >= 48
    finally:
        cluster.close()


def test_concurrency_one_submits_in_order(fake_api, tmp_path):
    client = make_app(fake_api, tmp_path, batch_concurrency=1).test_client()
    fake_api.clear_requests()
    response = post_batch(client, [named(i) for i in range(5)])
    assert response.status_code == 200
    created = [path for method, path, _ in fake_api.requests if method == "POST"]
    assert len(created) == 5
    assert [obj["metadata"]["name"] for obj in fake_api.objects("RunaiJob")] == [f"b-{i}" for i in range(5)]


# --- accounting --------------------------------------------------------------------------------------------


def test_one_audit_record_per_job(client, fake_api, caplog):
    caplog.set_level(logging.INFO, logger="runai_submit.audit")
    post_batch(client, [named(0), named(1, gpu=-1), named(2)])
    records = [r for r in caplog.records if r.name == "runai_submit.audit"]
    assert sorted(r.batch_index for r in records) == [0, 1, 2]
    by_index = {r.batch_index: r for r in records}
    assert by_index[0].outcome == "ok" and by_index[0].status == 200 and by_index[0].job == "b-0"
    assert by_index[0].objects == ["RunaiJob b-0"] and by_index[0].user == "john"
    assert by_index[1].outcome == "error" and by_index[1].status == 422 and by_index[1].job == "b-1"
    assert len({r.request_id for r in records}) == 1 and records[0].request_id


def test_audit_records_say_which_jobs_were_rolled_back(client, fake_api, caplog):
    caplog.set_level(logging.INFO, logger="runai_submit.audit")
    fake_api.fail_request(verb="create", kind="RunaiJob", nth=3, status=403, reason="Forbidden")
    post_batch(client, [named(i) for i in range(3)], query="?atomic=true")
    outcomes = sorted(r.outcome for r in caplog.records if r.name == "runai_submit.audit")
    assert outcomes == ["error", "rolled_back", "rolled_back"]


def test_metrics_count_batch_sizes_and_outcomes(client, fake_api):
    size_count = metric("runai_submit_batch_jobs_count")
    size_sum = metric("runai_submit_batch_jobs_sum")
    partial = metric("runai_submit_batches_total", mode="independent", outcome="partial")
    created = metric("runai_submit_batch_items_total", outcome="created")
    rejected = metric("runai_submit_batch_items_total", outcome="rejected")
    atomic_invalid = metric("runai_submit_batches_total", mode="atomic", outcome="invalid")

    post_batch(client, [named(0), named(1, gpu=-1), named(2)])
    post_batch(client, [named(5, gpu=-1)], query="?atomic=true")

    assert metric("runai_submit_batch_jobs_count") == size_count + 2
    assert metric("runai_submit_batch_jobs_sum") == size_sum + 4
    assert metric("runai_submit_batches_total", mode="independent", outcome="partial") == partial + 1
    assert metric("runai_submit_batch_items_total", outcome="created") == created + 2
    assert metric("runai_submit_batch_items_total", outcome="rejected") == rejected + 2
    assert metric("runai_submit_batches_total", mode="atomic", outcome="invalid") == atomic_invalid + 1


def test_the_documented_batch_item_has_every_field_of_a_single_submit_answer(client, fake_api):
    document = client.get("/api/openapi.json").json
    item = document["components"]["schemas"]["BatchItem"]["properties"]
    single = document["components"]["schemas"]["SubmitResponse"]["properties"]
    assert set(single) <= set(item)
    assert set(document["components"]["schemas"]["BatchItem"].get("required", [])) == {"index", "ok"}
    answer = post_batch(client, [named(0)], query="?dryRun=true").json["data"][0]
    assert set(answer) <= set(item)


# --- token mode: every job of a batch is created as the caller, and a key is the caller's ------------------

ALICE = "eyJhbGciOiJSUzI1NiJ9.alice-batch.c2ln"
JOB_VERBS = ["create", "get", "list", "delete"]
JOB_RESOURCES = ["runaijobs.run.ai", "services", "persistentvolumeclaims", "ingresses.networking.k8s.io"]


@pytest.fixture
def alice_client(fake_api, tmp_path):
    """Token mode; alice may run jobs in team-a (with or without ConfigMaps, as the test grants), nowhere else."""
    fake_api.add_user(fake_api.token, "system:serviceaccount:runai-submit:runai-submit")
    fake_api.grant(user="system:serviceaccount:runai-submit:runai-submit", verbs=["get", "list"],
                   resources=["namespaces"])
    fake_api.add_user(ALICE, "alice")
    fake_api.grant(user="alice", verbs=JOB_VERBS, resources=JOB_RESOURCES, namespace="runai-team-a")
    return make_app(fake_api, tmp_path, auth_mode="token").test_client()


def as_alice(client, jobs, *, key: str | None = None, ra_user: str | None = None):
    headers = {"Authorization": f"Bearer {ALICE}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    if ra_user is not None:
        headers["RA-USER"] = ra_user
    return client.post(BATCH, json={"jobs": jobs}, headers=headers)


def test_a_batch_in_token_mode_is_made_by_the_caller_and_rbac_decides_per_job(alice_client, fake_api):
    response = as_alice(alice_client, [named(0), named(1, project="team-b"), named(2)])

    assert response.status_code == 200, response.json
    assert [item["ok"] for item in response.json["data"]] == [True, False, True]
    assert response.json["data"][1]["error"]["status"] == 403
    creators = {user for method, path, user in fake_api.callers if method == "POST" and "/runaijobs" in path}
    assert creators == {"alice"}
    assert {w["metadata"]["annotations"]["user"] for w in fake_api.objects("RunaiJob")} == {"alice"}


def test_a_key_needs_the_right_to_keep_its_record_and_binds_the_authenticated_user(alice_client, fake_api):
    refused = as_alice(alice_client, [named(0)], key="k")
    assert refused.json["data"][0]["error"]["status"] == 403  # no ConfigMap rights: the job is rolled back
    assert job_objects(fake_api) == []

    fake_api.grant(user="alice", verbs=["create", "get", "delete"], resources=["configmaps"],
                   namespace="runai-team-a")
    first = as_alice(alice_client, [named(0)], key="k", ra_user="alice")
    assert first.json["data"][0]["ok"], first.json
    again = as_alice(alice_client, [named(0)], key="k", ra_user="someone-else")  # RA-USER does not scope a key
    assert again.json["data"][0].get("replayed") is True, again.json
    assert len(fake_api.objects("RunaiJob")) == 1
