"""POST /api/job end to end: Flask -> service -> the real kubernetes client -> the fake API server."""
from __future__ import annotations

import concurrent.futures
import copy
import json
import time
from pathlib import Path

import pytest
import yaml

from runai_submit.cluster.kube import KubeCluster
from runai_submit.config import Settings
from runai_submit.schemas import load_submit_request
from runai_submit.service import JobService
from tests.conftest import MAXIMAL_JOB, MAXIMAL_KINDS, SEED_JOB, TEAM_A, TEAM_B, make_app, submit
from tests.fake_apiserver import FakeApiServer

GOLDEN = Path(__file__).parent / "golden"
SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


def stored(server, kind=None):
    """What the cluster holds once its controllers (garbage collector, pvc-protection) have caught up."""
    server.run_controllers()
    return server.objects(kind=kind) if kind else [
        obj for obj in server.objects() if obj["kind"] != "Namespace"
    ]


def without_server_fields(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    for field in SERVER_FIELDS:
        obj["metadata"].pop(field, None)
    obj.pop("status", None)
    return obj


def test_seed_example_creates_exactly_the_golden_workload(client, fake_api):
    request = json.loads((GOLDEN / "seed-request.json").read_text())
    response = client.post("/api/job", json=request, headers={"RA-USER": "john"})

    assert response.status_code == 200, response.json
    name = response.json["name"]
    assert name.startswith("job-") and len(name) == len("job-") + 5
    assert response.json["objects"] == [{"kind": "RunaiJob", "name": name}]
    golden = yaml.safe_load((GOLDEN / "seed-workload.yaml").read_text().replace("<name>", name))
    objects = stored(fake_api)
    assert len(objects) == 1
    assert without_server_fields(objects[0]) == golden


def test_without_run_ai_group_the_workload_is_a_batch_job(batch_client, fake_batch_api):
    response = submit(batch_client, SEED_JOB)

    assert response.status_code == 200, response.json
    assert response.json["kind"] == "Job"
    (job,) = stored(fake_batch_api)
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["spec"]["template"]["spec"]["schedulerName"] == "runai-scheduler"


def test_maximal_job_creates_every_object_with_owner_references(client, fake_api):
    response = submit(client, MAXIMAL_JOB)

    assert response.status_code == 200, response.json
    assert [obj["kind"] for obj in response.json["objects"]] == MAXIMAL_KINDS
    (workload,) = stored(fake_api, "RunaiJob")
    (pvc,) = stored(fake_api, "PersistentVolumeClaim")
    (service,) = stored(fake_api, "Service")
    (ingress,) = stored(fake_api, "Ingress")
    uid = workload["metadata"]["uid"]
    for dependent in (service, ingress):
        assert dependent["metadata"]["ownerReferences"] == [
            {"apiVersion": "run.ai/v1", "kind": "RunaiJob", "name": "maximal", "uid": uid}
        ]
    assert "ownerReferences" not in pvc["metadata"]
    assert pvc["metadata"]["name"] == "pvc-maximal-0"
    for obj in (workload, pvc, service, ingress):
        assert obj["metadata"]["labels"]["release"] == "maximal"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "runai-submit"


def test_golden_maximal_job(client, fake_api):
    """Every parameter at once: the manifests sent, in creation order, compared with a reviewed golden file."""
    response = submit(client, MAXIMAL_JOB, query="?dryRun=true")

    assert response.status_code == 200, response.json
    manifests = response.json["manifests"]
    owner_uids = set()
    for manifest in manifests:
        for ref in manifest["metadata"].get("ownerReferences", []):
            owner_uids.add(ref.pop("uid"))
            ref["uid"] = "<uid>"
        annotations = manifest["metadata"].get("annotations", {})
        if "runai-submit/job-uid" in annotations:  # a new claim: the uid of the workload it was made with
            owner_uids.add(annotations["runai-submit/job-uid"])
            annotations["runai-submit/job-uid"] = "<uid>"
    assert len(owner_uids) == 1 and "" not in owner_uids
    assert manifests == list(yaml.safe_load_all((GOLDEN / "maximal-job.yaml").read_text()))


def test_project_resolves_to_its_labelled_namespace(client, fake_api):
    response = submit(client, {**SEED_JOB, "project": "team-b"})

    assert response.status_code == 200, response.json
    assert response.json["namespace"] == TEAM_B
    assert [obj["metadata"]["namespace"] for obj in stored(fake_api)] == [TEAM_B]


def test_unlabelled_namespace_is_found_by_convention(client, fake_api):
    response = submit(client, {**SEED_JOB, "project": "legacy"})

    assert response.status_code == 200, response.json
    assert response.json["namespace"] == "runai-legacy"


def test_a_namespace_labelled_for_another_project_is_never_a_fallback(tmp_path):
    """runai-owned is project "other"'s by its label, so project "owned" has no namespace: its jobs would
    otherwise land in other's namespace, count against other's quota, and be listed under neither."""
    with FakeApiServer() as fake:
        fake.add_namespace("runai-owned", {"runai/queue": "other"})
        client = make_app(fake, tmp_path).test_client()

        response = submit(client, {**SEED_JOB, "project": "owned"})

        assert response.status_code == 404, response.json
        assert response.json["errors"] == [{"field": "/job/project", "message": "unknown project 'owned'"}]
        assert "'runai-owned' is labelled runai/queue=other" in response.json["details"]
        assert fake.objects("RunaiJob") == []
        listed = client.get("/api/job?project=owned")
        assert listed.status_code == 404 and listed.json["errors"][0]["field"] == "/project"
        assert submit(client, {**SEED_JOB, "project": "other"}).json["namespace"] == "runai-owned"


def test_two_namespaces_labelled_for_one_project_resolve_to_the_first_by_name(tmp_path, caplog):
    with FakeApiServer() as fake:
        for namespace in ("queue-b", "queue-a", "queue-c"):
            fake.add_namespace(namespace, {"runai/queue": "twice"})
        client = make_app(fake, tmp_path).test_client()

        assert submit(client, {**SEED_JOB, "project": "twice"}).json["namespace"] == "queue-a"
        assert any("queue-a and queue-c are both labelled runai/queue=twice" in record.getMessage()
                   for record in caplog.records)


def test_unknown_project_is_404_naming_it(client, fake_api):
    response = submit(client, {**SEED_JOB, "project": "nope"})

    assert response.status_code == 404
    assert "nope" in response.json["message"]
    assert response.json["errors"] == [{"field": "/job/project", "message": "unknown project 'nope'"}]
    assert stored(fake_api) == []


def test_namespace_lookup_is_not_a_round_trip_per_submit(client, fake_api):
    for _ in range(5):
        assert submit(client, SEED_JOB).status_code == 200
    namespace_calls = [r for r in fake_api.requests if r[1].startswith("/api/v1/namespaces") and r[0] == "GET"]
    discovery_calls = [r for r in fake_api.requests if r[0] == "GET" and r[1].startswith("/apis/run.ai")]
    assert len(namespace_calls) == 1
    assert len(discovery_calls) == 1
    creates = [r for r in fake_api.requests if r[0] == "POST"]
    assert len(creates) == 5


def test_explicit_name_taken_is_409_and_touches_nothing(client, fake_api):
    assert submit(client, {**SEED_JOB, "name": "taken"}).status_code == 200
    (before,) = stored(fake_api)

    response = submit(client, {**SEED_JOB, "name": "taken", "image": "other"})

    assert response.status_code == 409
    assert "taken" in response.json["message"] and "team-a" in response.json["message"]
    (after,) = stored(fake_api)
    assert after == before
    assert not [r for r in fake_api.requests if r[0] == "DELETE"]


def test_explicit_name_taken_by_a_dependent_rolls_back_and_keeps_the_other(client, fake_api):
    # A Service named "web" exists already, created by something else.
    cluster = client.application.extensions["runai_submit"].cluster
    foreign = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"ports": [{"port": 80}], "selector": {"app": "other"}}}
    service_uid = cluster.create(TEAM_A, foreign).uid

    response = submit(client, {**SEED_JOB, "name": "web", "ports": [80], "serviceType": "clusterip"})

    assert response.status_code == 409
    assert response.json["failedObject"] == "Service web"
    assert response.json["message"] == ("The name 'web' is taken in project 'team-a': Service web exists and is "
                                        "not this job's.")
    assert response.json["errors"] == [{"field": "/job/name", "message": "'web' is taken in project 'team-a' by "
                                                                        "Service web"}]
    remaining = stored(fake_api)
    assert [(obj["kind"], obj["metadata"]["uid"]) for obj in remaining] == [("Service", service_uid)]


def test_a_name_held_by_a_claim_an_earlier_job_kept_says_so_and_how_to_use_it(client, fake_api):
    job = {**SEED_JOB, "name": "keep", "pvc": [{"size": "1Gi", "path": "/data"}]}
    assert submit(client, job).status_code == 200
    deleted = client.delete("/api/job", json=[{"name": "keep", "project": "team-a"}], headers={"RA-USER": "john"})
    assert deleted.json[0]["ok"] is True  # the claim stays (no deletePvcs)

    again = submit(client, job)

    assert again.status_code == 409
    assert again.json["message"] == ("The name 'keep' is taken in project 'team-a': PersistentVolumeClaim "
                                     "pvc-keep-0 exists, a claim an earlier job of that name kept.")
    assert again.json["details"].startswith('Mount it by name ({"claimName": "pvc-keep-0", "path": ...} in pvc)')
    assert 'persistentvolumeclaims "pvc-keep-0" already exists. Failed object: PersistentVolumeClaim pvc-keep-0. ' \
           "Rolled back: RunaiJob keep." in again.json["details"]
    mounted = submit(client, {**job, "pvc": [{"claimName": "pvc-keep-0", "path": "/data"}]})
    assert mounted.status_code == 200, mounted.json
    taken = submit(client, job)
    assert taken.json["message"] == "A job named 'keep' already exists in project 'team-a'."


def test_generated_name_collision_is_retried_with_a_new_suffix(fake_api, tmp_path):
    settings = Settings.load({"backend": "kubeconfig", "kubeconfig": fake_api.write_kubeconfig(tmp_path / "k")})
    names = iter(["job-aaaaa", "job-aaaaa", "job-bbbbb"])
    service = JobService(KubeCluster.from_settings(settings, "kubeconfig"), settings,
                         name_factory=lambda prefix: next(names))
    spec = load_submit_request({"job": SEED_JOB})

    first = service.submit(spec, "john")
    second = service.submit(spec, "john")

    assert (first.name, second.name) == ("job-aaaaa", "job-bbbbb")
    assert sorted(obj["metadata"]["name"] for obj in stored(fake_api)) == ["job-aaaaa", "job-bbbbb"]


def test_generated_names_give_up_after_bounded_retries(fake_api, tmp_path):
    settings = Settings.load({"backend": "kubeconfig", "kubeconfig": fake_api.write_kubeconfig(tmp_path / "k"),
                              "name_retries": 3})
    service = JobService(KubeCluster.from_settings(settings, "kubeconfig"), settings,
                         name_factory=lambda prefix: "job-same")
    spec = load_submit_request({"job": SEED_JOB})
    service.submit(spec, "john")

    with pytest.raises(Exception) as caught:
        service.submit(spec, "john")

    assert getattr(caught.value, "status", None) == 409
    assert len([r for r in fake_api.requests if r[0] == "POST"]) == 1 + 3


def test_job_name_prefix_is_used_for_generated_names(client, fake_api):
    response = submit(client, {**SEED_JOB, "jobNamePrefix": "exp"})

    assert response.status_code == 200
    assert response.json["name"].startswith("exp-")


@pytest.mark.parametrize("position", range(1, len(MAXIMAL_KINDS) + 1))
@pytest.mark.parametrize("status", [403, 422, 500])
def test_failure_at_any_object_leaves_nothing_behind(client, fake_api, position, status):
    fake_api.fail_request(verb="create", nth=position, status=status)

    response = submit(client, MAXIMAL_JOB)

    assert response.status_code == {403: 403, 422: 422, 500: 502}[status], response.json
    assert response.json["failedObject"].split()[0] == MAXIMAL_KINDS[position - 1]
    assert response.json["leftBehind"] == []
    assert stored(fake_api) == []


def test_concurrent_auto_named_submits_get_distinct_names(client, fake_api):
    def one(_):
        return submit(client, SEED_JOB)

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(one, range(50)))

    assert [r.status_code for r in responses] == [200] * 50
    names = {r.json["name"] for r in responses}
    assert len(names) == 50
    assert {obj["metadata"]["name"] for obj in stored(fake_api)} == names


def test_dry_run_renders_and_asks_the_api_server_but_creates_nothing(client, fake_api):
    response = submit(client, MAXIMAL_JOB, query="?dryRun=true")

    assert response.status_code == 200, response.json
    assert [m["kind"] for m in response.json["manifests"]] == MAXIMAL_KINDS
    assert stored(fake_api) == []
    posts = [r for r in fake_api.requests if r[0] == "POST"]
    assert len(posts) == 4 and all(query.get("dryRun") in ("All", ["All"]) for _, _, query in posts)


def test_dry_run_still_reports_a_taken_name(client, fake_api):
    assert submit(client, {**SEED_JOB, "name": "x1"}).status_code == 200
    assert submit(client, {**SEED_JOB, "name": "x1"}, query="?dryRun=true").status_code == 409


def test_api_server_unreachable_is_503_with_retry_after(client, fake_api):
    assert submit(client, SEED_JOB).status_code == 200  # discovery and namespaces are cached now
    fake_api.refuse_connections(True)
    try:
        response = submit(client, SEED_JOB)
    finally:
        fake_api.refuse_connections(False)

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert submit(client, SEED_JOB).status_code == 200  # back without restarting anything


def test_api_server_unreachable_at_first_request_is_503(fake_api, tmp_path):
    client = make_app(fake_api, tmp_path).test_client()
    fake_api.refuse_connections(True)
    try:
        response = submit(client, SEED_JOB)
    finally:
        fake_api.refuse_connections(False)
    assert response.status_code == 503
    assert "Retry-After" in response.headers


def test_api_server_slower_than_timeout_is_503_and_rolls_back(fake_api, tmp_path):
    client = make_app(fake_api, tmp_path, request_timeout=0.5).test_client()
    assert submit(client, SEED_JOB).status_code == 200
    fake_api.reset()
    fake_api.delay(1.5, verb="create", kind="Service", times=1)

    response = submit(client, {**SEED_JOB, "name": "slow", "ports": [80], "serviceType": "clusterip"})

    assert response.status_code == 503
    assert response.json["failedObject"] == "Service slow"
    # The API server may still store the Service after we gave up (rollback's delete came first). Then it
    # points at the deleted workload, so the garbage collector removes it: nothing else may remain.
    time.sleep(1.2)
    workload_uids = {obj["metadata"]["uid"] for obj in stored(fake_api, "RunaiJob")}
    assert not [obj for obj in stored(fake_api, "RunaiJob") if obj["metadata"]["name"] == "slow"]
    for leftover in [obj for obj in stored(fake_api) if obj["metadata"]["name"] == "slow"]:
        owners = {ref["uid"] for ref in leftover["metadata"]["ownerReferences"]}
        assert owners and not owners & workload_uids


def test_user_is_recorded_exactly_and_label_safe(client, fake_api):
    response = submit(client, SEED_JOB, user="Jane Doe <jane@example.com>")

    assert response.status_code == 200
    (workload,) = stored(fake_api)
    assert workload["metadata"]["annotations"]["user"] == "Jane Doe <jane@example.com>"
    assert workload["spec"]["template"]["metadata"]["annotations"]["user"] == "Jane Doe <jane@example.com>"
    assert workload["metadata"]["labels"]["runai/user"] == "Jane-Doe-jane-example.com"


@pytest.mark.parametrize("path", ["/api/job", "/api/v1/job", "/api/v1/jobs"])
def test_every_alias_submits(client, fake_api, path):
    response = client.post(path, json={"job": SEED_JOB}, headers={"RA-USER": "john"})
    assert response.status_code == 200
    assert len(stored(fake_api)) == 1
