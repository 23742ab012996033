"""Idempotency-Key on POST /api/job: replays, refusals, storms and failures, against the fake API server.

What must hold (issue 12): one key never makes two jobs, a repeat gets the first answer, a different job under
a used key is a 422 naming the header, a key in flight is a 409 with Retry-After, and failures bind nothing.
"""
from __future__ import annotations

import concurrent.futures
import json
import threading
import time
import urllib.request

import pytest

from runai_submit.cluster.kinds import CONFIGMAP
from runai_submit.cluster.kube import KubeCluster
from runai_submit.config import Settings
from runai_submit.schemas import load_submit_request
from runai_submit.service.idempotency import IdempotencyKey, job_digest
from tests.conftest import MAXIMAL_JOB, SEED_JOB, TEAM_A, make_app

KEY = "sweep-42/trial-7"
SERVICE_JOB = {**SEED_JOB, "ports": [{"container": 8080}], "serviceType": "clusterip"}


def keyed(client, job: dict, key: str | None = KEY, *, user: str = "john", query: str = "", raw: str | None = None):
    headers = {"RA-USER": user}
    if key is not None:
        headers["Idempotency-Key"] = key
    if raw is not None:
        return client.post(f"/api/job{query}", data=raw, content_type="application/json", headers=headers)
    return client.post(f"/api/job{query}", json={"job": job}, headers=headers)


def stored(fake, kind: str) -> list[dict]:
    """What the cluster holds once its controllers (garbage collector) have caught up, as they do in a moment."""
    fake.run_controllers()
    return fake.objects(kind)


def creates(fake) -> list[tuple[str, str, dict]]:
    return [request for request in fake.requests if request[0] == "POST"]


def workload_names(fake) -> list[str]:
    return sorted(obj["metadata"]["name"] for obj in stored(fake, "RunaiJob"))


# --- replay ----------------------------------------------------------------------------------------------


def test_a_repeat_replays_the_first_answer_and_creates_nothing(client, fake_api):
    first = keyed(client, SERVICE_JOB)
    assert first.status_code == 200, first.json
    assert "Idempotent-Replayed" not in first.headers
    kinds = [obj["kind"] for obj in first.json["objects"]]
    assert kinds == ["RunaiJob", "Service", "ConfigMap"]
    before = fake_api.objects()
    fake_api.clear_requests()

    again = keyed(client, SERVICE_JOB)

    assert again.status_code == 200, again.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    # One create, of the workload, which the API server refused (the name is taken); then reads answer.
    assert [path for _, path, _ in creates(fake_api)] == ["/apis/run.ai/v1/namespaces/runai-team-a/runaijobs"]
    assert fake_api.objects() == before


def test_a_replay_carries_the_api_servers_warnings_for_every_object_of_the_job(client, fake_api):
    fake_api.warn_on_create("RunaiJob", "spec.template: first warning")
    fake_api.warn_on_create("Service", "spec.ports: second warning")
    fake_api.warn_on_create("Service", "spec.template: first warning")  # said twice, answered once
    first = keyed(client, SERVICE_JOB)
    assert first.status_code == 200, first.json
    assert first.json["warnings"] == ["spec.template: first warning", "spec.ports: second warning"]

    again = keyed(client, SERVICE_JOB)

    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json["warnings"] == first.json["warnings"]


def test_the_record_is_owned_by_the_workload_and_holds_no_key(client, fake_api):
    response = keyed(client, SEED_JOB)
    assert response.status_code == 200, response.json
    (workload,) = stored(fake_api, "RunaiJob")
    (record,) = stored(fake_api, "ConfigMap")
    assert record["metadata"]["ownerReferences"] == [{"apiVersion": "run.ai/v1", "kind": "RunaiJob",
                                                       "name": workload["metadata"]["name"],
                                                       "uid": workload["metadata"]["uid"]}]
    assert record["immutable"] is True
    assert record["metadata"]["labels"]["release"] == workload["metadata"]["name"]
    digests = {k: v for k, v in workload["metadata"]["annotations"].items() if k.startswith("runai-submit/")}
    assert set(digests) == {"runai-submit/idempotency-key", "runai-submit/job-digest"}
    assert record["metadata"]["annotations"] == digests
    # The key itself (which may say something about the caller's pipeline) is nowhere in the cluster.
    assert KEY not in json.dumps(fake_api.objects())


def test_the_same_job_spelled_differently_is_a_replay(client, fake_api):
    job = {**SEED_JOB, "command": "python train.py --epochs 3", "gpu": 1, "environment": {"A": "1", "B": 2}}
    first = keyed(client, job)
    assert first.status_code == 200, first.json
    respelled = {"environment": {"B": 2, "A": "1"}, "gpu": 1.0, "command": ["python", "train.py", "--epochs", "3"],
                 **{k: v for k, v in SEED_JOB.items()}}
    raw = json.dumps({"job": respelled}, indent=4)  # other key order, other whitespace

    again = keyed(client, None, raw=raw)

    assert again.status_code == 200, again.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json["name"] == first.json["name"]
    assert len(stored(fake_api, "RunaiJob")) == 1


def test_job_digest_ignores_spelling_but_not_meaning():
    base = {**SEED_JOB, "command": "a b", "gpu": 2, "environment": {"X": 1, "Y": "2"},
            "volume": {"/data": "/mnt/data", "/logs": "/mnt/logs"}}
    one = load_submit_request({"job": base})
    same = load_submit_request({"job": {**SEED_JOB, "command": ["a", "b"], "gpu": 2.0,
                                        "environment": {"Y": 2, "X": "1"},
                                        "volumes": [{"sourcePath": "/logs", "targetPath": "/mnt/logs"},
                                                    {"sourcePath": "/data", "targetPath": "/mnt/data"}]}})
    assert job_digest(one) == job_digest(same)
    for change in ({"gpu": 3}, {"environment": {"X": 1}}, {"command": "a c"}, {"name": "x"}, {"project": "b"},
                   {"volume": {"/data": "/mnt/logs", "/logs": "/mnt/data"}}):
        other = load_submit_request({"job": {**base, **change}})
        assert job_digest(other) != job_digest(one), change


def test_scopes_differ_by_user_project_key_and_index():
    scopes = {IdempotencyKey("k").scope("john", "a"), IdempotencyKey("k").scope("jane", "a"),
              IdempotencyKey("k").scope("john", "b"), IdempotencyKey("k2").scope("john", "a"),
              IdempotencyKey("k", 0).scope("john", "a"), IdempotencyKey("k", 1).scope("john", "a")}
    assert len(scopes) == 6


def test_dry_run_with_a_key_binds_nothing(client, fake_api):
    dry = keyed(client, SEED_JOB, query="?dryRun=true")
    assert dry.status_code == 200, dry.json
    assert [m["kind"] for m in dry.json["manifests"]] == ["RunaiJob", "ConfigMap"]
    assert fake_api.objects("RunaiJob") == []

    real = keyed(client, SEED_JOB)
    assert real.status_code == 200, real.json
    assert "Idempotent-Replayed" not in real.headers
    assert real.json["name"] == dry.json["name"]  # the name derives from the key, dry or not

    dry_again = keyed(client, SEED_JOB, query="?dryRun=true")
    assert dry_again.status_code == 200
    assert dry_again.headers["Idempotent-Replayed"] == "true"
    assert dry_again.json["manifests"] == []  # a replay would create nothing


# --- a different job under a used key ------------------------------------------------------------------


@pytest.mark.parametrize("change", [
    {"image": "busybox:1.37"},
    {"name": "renamed"},                # an explicit name instead of the derived one
    {"jobNamePrefix": "other"},         # another derived name
], ids=["image", "explicit-name", "prefix"])
def test_a_different_job_under_a_used_key_is_a_422_naming_the_header(client, fake_api, change):
    first = keyed(client, SERVICE_JOB)
    assert first.status_code == 200, first.json
    before = fake_api.objects()

    other = keyed(client, {**SERVICE_JOB, **change})

    assert other.status_code == 422, other.json
    assert [error["field"] for error in other.json["errors"]] == ["Idempotency-Key"]
    assert first.json["name"] in other.json["message"]
    assert fake_api.objects() == before  # whatever the retry created on the way was rolled back


def test_an_explicit_name_with_a_key_replays_instead_of_409(client, fake_api):
    job = {**SEED_JOB, "name": "train-once"}
    first = keyed(client, job)
    assert first.status_code == 200, first.json
    assert first.json["name"] == "train-once"

    again = keyed(client, job)
    assert again.status_code == 200, again.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json

    unkeyed = keyed(client, job, key=None)
    assert unkeyed.status_code == 409  # without the key the same request is a name conflict
    other_key = keyed(client, job, key="another")
    assert other_key.status_code == 409  # and another key does not own the name either
    assert [e["field"] for e in other_key.json["errors"]] == ["/job/name"]
    assert workload_names(fake_api) == ["train-once"]


def test_two_users_with_the_same_key_get_two_jobs(client, fake_api):
    john = keyed(client, SEED_JOB, user="john")
    jane = keyed(client, SEED_JOB, user="jane")
    assert john.status_code == jane.status_code == 200
    assert john.json["name"] != jane.json["name"]
    assert "Idempotent-Replayed" not in jane.headers
    assert len(stored(fake_api, "RunaiJob")) == 2
    assert keyed(client, SEED_JOB, user="jane").headers["Idempotent-Replayed"] == "true"


def test_a_derived_name_taken_by_an_unrelated_job_moves_on_and_stays_there(client, fake_api):
    derived = keyed(client, SEED_JOB, query="?dryRun=true").json["name"]
    squatter = keyed(client, {**SEED_JOB, "name": derived}, key=None)
    assert squatter.status_code == 200, squatter.json

    first = keyed(client, SEED_JOB)
    assert first.status_code == 200, first.json
    assert first.json["name"] not in (derived, "")
    again = keyed(client, SEED_JOB)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json["name"] == first.json["name"]
    assert len(stored(fake_api, "RunaiJob")) == 2


# --- malformed keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["k" * 256, "", "caf\u00e9", "tab\there"],
                         ids=["too-long", "empty", "non-ascii", "tab"])
def test_a_malformed_key_is_a_400_naming_the_header(client, fake_api, key):
    response = client.post("/api/job", json={"job": SEED_JOB},
                           headers={"RA-USER": "john", "Idempotency-Key": key.encode("utf-8").decode("latin-1")})
    assert response.status_code == 400, response.json
    assert [error["field"] for error in response.json["errors"]] == ["Idempotency-Key"]
    assert creates(fake_api) == []


def test_a_key_of_255_printable_characters_is_accepted(client, fake_api):
    key = ("A-z 0~!" * 40)[:255]
    assert keyed(client, SEED_JOB, key=key).status_code == 200
    assert keyed(client, SEED_JOB, key=key).headers["Idempotent-Replayed"] == "true"


# --- failures bind nothing -------------------------------------------------------------------------------


def test_an_invalid_job_leaves_the_key_free(client, fake_api):
    bad = keyed(client, {**SEED_JOB, "gpu": -1})
    assert bad.status_code == 422
    fixed = keyed(client, SEED_JOB)
    assert fixed.status_code == 200, fixed.json
    assert "Idempotent-Replayed" not in fixed.headers


def test_a_cluster_refusal_leaves_the_key_free(client, fake_api):
    fake_api.fail_request(verb="create", kind="Service", status=403, reason="Forbidden")
    refused = keyed(client, SERVICE_JOB)
    assert refused.status_code == 403, refused.json
    assert [obj for obj in fake_api.objects() if obj["kind"] != "Namespace"] == []

    retried = keyed(client, SERVICE_JOB)
    assert retried.status_code == 200, retried.json
    assert "Idempotent-Replayed" not in retried.headers
    assert len(stored(fake_api, "RunaiJob")) == len(stored(fake_api, "ConfigMap")) == 1


def test_a_failed_record_create_rolls_back_and_leaves_the_key_free(client, fake_api):
    fake_api.fail_request(verb="create", kind="ConfigMap", status=500)
    failed = keyed(client, SERVICE_JOB)
    assert failed.status_code == 502, failed.json
    assert failed.json["failedObject"].startswith("ConfigMap idempotency-")
    assert [obj for obj in fake_api.objects() if obj["kind"] != "Namespace"] == []
    assert keyed(client, SERVICE_JOB).status_code == 200


def test_a_key_is_free_again_after_its_job_is_deleted(client, fake_api):
    first = keyed(client, SERVICE_JOB)
    assert first.status_code == 200
    old_uid = stored(fake_api, "RunaiJob")[0]["metadata"]["uid"]
    deleted = client.delete("/api/job", json=[{"name": first.json["name"], "project": "team-a"}],
                            headers={"RA-USER": "john"})
    assert deleted.status_code == 200 and deleted.json[0]["ok"], deleted.json
    assert stored(fake_api, "ConfigMap") == []  # the garbage collector took the record with its owner

    again = keyed(client, SERVICE_JOB)

    assert again.status_code == 200, again.json
    assert "Idempotent-Replayed" not in again.headers
    (workload,) = stored(fake_api, "RunaiJob")
    assert workload["metadata"]["uid"] != old_uid


def test_a_job_left_behind_by_a_failed_rollback_is_never_duplicated(client, fake_api):
    """The record's create fails and so does the rollback's delete of the workload: the key's job stays
    incomplete. A retry must neither replay it as done nor create a second job."""
    fake_api.fail_request(verb="create", kind="ConfigMap", status=500)
    fake_api.fail_request(verb="delete", kind="RunaiJob", status=500)
    failed = keyed(client, SEED_JOB)
    assert failed.status_code == 502
    assert failed.json["leftBehind"] == [f"RunaiJob {stored(fake_api, 'RunaiJob')[0]['metadata']['name']}"]

    retry = keyed(client, SEED_JOB)

    assert retry.status_code == 409, retry.json
    assert [error["field"] for error in retry.json["errors"]] == ["Idempotency-Key"]
    assert retry.headers["Retry-After"] == "1"
    assert len(stored(fake_api, "RunaiJob")) == 1
    assert keyed(client, {**SEED_JOB, "image": "other:1"}).status_code == 422  # a different job: refused


# --- in flight and storms --------------------------------------------------------------------------------


def test_a_repeat_while_the_first_is_in_flight_is_a_409_with_retry_after(client, fake_api, tmp_path):
    release = fake_api.hold(verb="create", kind="ConfigMap")  # the first request stops before its record
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(keyed, client, SERVICE_JOB)
        _wait_for(lambda: any("/configmaps" in path for method, path, _ in fake_api.requests if method == "POST"),
                  "the first request to reach its record")
        second_client = make_app(fake_api, tmp_path).test_client()  # another replica
        in_flight = keyed(second_client, SERVICE_JOB)
        release.set()
        done = first.result(timeout=60)

    assert in_flight.status_code == 409, in_flight.json
    assert in_flight.headers["Retry-After"] == "1"
    assert [error["field"] for error in in_flight.json["errors"]] == ["Idempotency-Key"]
    assert "still being created" in in_flight.json["message"]
    assert done.status_code == 200, done.json
    later = keyed(second_client, SERVICE_JOB)
    assert later.status_code == 200 and later.headers["Idempotent-Replayed"] == "true"
    assert later.json == done.json


def test_a_storm_of_one_key_across_two_replicas_makes_exactly_one_job(fake_api, tmp_path):
    """20 threads, two service instances (two pools, two caches), one key: one workload, one answer."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    replicas = [make_app(fake_api, tmp_path / "a").test_client(), make_app(fake_api, tmp_path / "b").test_client()]
    fake_api.delay(0.02, verb="create", kind="Service")  # widen the window in which the job is in flight
    start = threading.Barrier(20)

    def caller(index: int) -> tuple[int, dict, list[int]]:
        client = replicas[index % 2]
        start.wait(timeout=60)
        statuses = []
        for _ in range(500):  # a client that honours Retry-After (shortened: only a hang bound matters here)
            response = keyed(client, SERVICE_JOB)
            statuses.append(response.status_code)
            if response.status_code != 409:
                return response.status_code, response.json, statuses
            assert response.headers["Retry-After"] == "1", response.json
            time.sleep(0.01)
        raise AssertionError(f"caller {index} never got past 409: {statuses[-3:]}")

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(caller, range(20)))

    assert {status for status, _, _ in outcomes} == {200}, outcomes
    assert len({json.dumps(body, sort_keys=True) for _, body, _ in outcomes}) == 1  # same name, same objects
    assert len(stored(fake_api, "RunaiJob")) == 1
    assert len(stored(fake_api, "Service")) == 1
    assert len(stored(fake_api, "ConfigMap")) == 1
    assert workload_names(fake_api) == [outcomes[0][1]["name"]]


def test_a_storm_with_an_explicit_name_makes_exactly_one_job(fake_api, tmp_path):
    client = make_app(fake_api, tmp_path).test_client()
    job = {**MAXIMAL_JOB, "name": "storm"}

    def caller(_: int) -> tuple[int, str]:
        for _ in range(500):
            response = keyed(client, job)
            if response.status_code != 409:
                return response.status_code, response.json.get("name", "")
            time.sleep(0.01)
        raise AssertionError("never got past 409")

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(caller, range(20)))

    assert set(outcomes) == {(200, "storm")}
    assert workload_names(fake_api) == ["storm"]
    assert [obj["metadata"]["name"] for obj in stored(fake_api, "PersistentVolumeClaim")] == ["pvc-storm-0"]


def _wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_a_record_orphaned_by_an_orphan_delete_is_released_by_the_next_request(client, fake_api):
    """kubectl delete --cascade=orphan removes the job but keeps its record, without an owner: the garbage
    collector will never take it. The next request with the key deletes it and says to retry."""
    first = keyed(client, SEED_JOB)
    assert first.status_code == 200
    request = urllib.request.Request(
        f"{fake_api.url}/apis/run.ai/v1/namespaces/runai-team-a/runaijobs/{first.json['name']}"
        "?propagationPolicy=Orphan", method="DELETE", headers={"Authorization": f"Bearer {fake_api.token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    (orphan,) = stored(fake_api, "ConfigMap")
    assert "ownerReferences" not in orphan["metadata"]

    released = keyed(client, SEED_JOB)
    assert released.status_code == 409, released.json
    assert released.headers["Retry-After"] == "1"
    assert stored(fake_api, "ConfigMap") == [] and stored(fake_api, "RunaiJob") == []

    again = keyed(client, SEED_JOB)
    assert again.status_code == 200, again.json
    assert "Idempotent-Replayed" not in again.headers
    assert again.json["name"] == first.json["name"]


def test_delete_with_a_uid_precondition_spares_a_newer_object(fake_api, tmp_path):
    settings = Settings.load({"backend": "kubeconfig", "kubeconfig": fake_api.write_kubeconfig(tmp_path / "k")})
    cluster = KubeCluster.from_settings(settings, "kubeconfig")
    try:
        manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "b"}}
        created = cluster.create(TEAM_A, manifest)
        assert cluster.delete(TEAM_A, CONFIGMAP, "cm", uid="not-its-uid") is False
        assert cluster.get(TEAM_A, CONFIGMAP, "cm") is not None
        assert cluster.delete(TEAM_A, CONFIGMAP, "cm", uid=created.uid) is True
        assert cluster.get(TEAM_A, CONFIGMAP, "cm") is None
        assert cluster.delete(TEAM_A, CONFIGMAP, "cm", uid=created.uid) is False
    finally:
        cluster.close()


# --- with an admin policy: a key binds the request as sent, not the defaults the policy adds -------------


def _policy_client(fake_api, folder, text: str):
    folder.mkdir()
    (folder / "policy.yaml").write_text(text)
    return make_app(fake_api, folder, policy_file=str(folder / "policy.yaml")).test_client()


@pytest.mark.parametrize("job", [
    {"project": "team-a", "image": "busybox:1.36"},  # valid on its own
    {"project": "team-a"},                           # needs the policy's default image to be valid
], ids=["valid-alone", "needs-defaults"])
def test_a_retry_after_the_policy_changed_replays_the_first_answer(fake_api, tmp_path, job):
    """The retry lands on a replica whose policy fills in other defaults: it is still the same request."""
    before = _policy_client(fake_api, tmp_path / "before", "defaults: {cpu: 0.5, image: 'busybox:1.36'}\n")
    after = _policy_client(fake_api, tmp_path / "after", "defaults: {cpu: 2, image: 'busybox:1.37'}\n")

    first = keyed(before, job)
    assert first.status_code == 200, first.json
    assert "cpu" in first.json["defaulted"]
    again = keyed(after, job)

    assert again.status_code == 200, again.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json  # the first answer, with what the first policy filled in
    assert len(stored(fake_api, "RunaiJob")) == 1
    changed = keyed(after, {**job, "gpu": 1})
    assert changed.status_code == 422
    assert [error["field"] for error in changed.json["errors"]] == ["Idempotency-Key"]
