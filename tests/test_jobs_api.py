"""List, get, delete, projects, version and health endpoints, end to end through the fake API server.

Every job endpoint runs against both workload kinds: run.ai/v1 RunaiJob (``client``/``fake_api``) and
batch/v1 Job (``batch_client``/``fake_batch_api``, a cluster without the run.ai group).
"""
from __future__ import annotations

from datetime import datetime

import pytest

from runai_submit import __version__
from runai_submit.cluster.kinds import KINDS
from tests.conftest import MAXIMAL_JOB, SEED_JOB, TEAM_A, TEAM_B, make_app, submit

USER = {"RA-USER": "john"}
JOB_FIELDS = {"name", "project", "user", "type", "status", "createdAt", "images", "requestedGPUs", "uid"}


class Env:
    """One API (client) in front of one fake API server, with the workload kind that cluster gets."""

    def __init__(self, client, fake, kind: str) -> None:
        self.client, self.fake, self.kind = client, fake, kind
        # The status of a job nothing has acted on: a new Job's status is empty (Pending); a new RunaiJob has
        # none, as on a real cluster (its CRD makes status a subresource), and without pods that is Unknown.
        self.untouched = "Pending" if kind == "Job" else "Unknown"

    def submit(self, job: dict, **kwargs):
        response = submit(self.client, job, **kwargs)
        assert response.status_code == 200, response.json
        return response.json

    def workload(self, name: str, namespace: str = TEAM_A) -> dict:
        obj = self.fake.get_object(self.kind, namespace, name)
        assert obj is not None, f"{self.kind} {namespace}/{name} is not stored"
        return obj

    def left(self) -> list[tuple[str, str]]:
        """(kind, name) of every stored object but namespaces, once the controllers (garbage collector,
        pvc-protection) have caught up, as they do within a moment on a real cluster."""
        self.fake.run_controllers()
        return sorted((obj["kind"], obj["metadata"]["name"]) for obj in self.fake.objects() if obj["kind"] != "Namespace")

    def delete(self, items, query: str = "", path: str = "/api/job", headers=USER):
        return self.client.delete(f"{path}{query}", json=items, headers=headers)


@pytest.fixture(params=["RunaiJob", "Job"])
def env(request) -> Env:
    if request.param == "RunaiJob":
        return Env(request.getfixturevalue("client"), request.getfixturevalue("fake_api"), "RunaiJob")
    return Env(request.getfixturevalue("batch_client"), request.getfixturevalue("fake_batch_api"), "Job")


def epoch_ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def names(response) -> list[str]:
    return sorted(job["name"] for job in response.json["data"])


# --- listing ---------------------------------------------------------------------------------------


def test_listed_job_has_every_field_from_the_workload(env):
    env.submit({**SEED_JOB, "name": "train-one", "gpu": 2}, user="Jane Doe")
    env.submit({**SEED_JOB, "name": "inter-half", "interactive": True, "gpu": 0.5, "image": "busybox:1.36"})
    env.submit({**SEED_JOB, "name": "no-gpu", "gpu": 0})

    response = env.client.get("/api/job?project=team-a")

    assert response.status_code == 200, response.json
    jobs = {job["name"]: job for job in response.json["data"]}
    assert sorted(jobs) == ["inter-half", "no-gpu", "train-one"]
    for name, job in jobs.items():
        assert JOB_FIELDS <= set(job), job
        stored = env.workload(name)
        assert job["uid"] == stored["metadata"]["uid"] and job["uid"]
        assert job["createdAt"] == epoch_ms(stored["metadata"]["creationTimestamp"])
        assert job["project"] == "team-a"
        assert job["status"] == env.untouched  # created, nothing has acted on it yet
    assert jobs["train-one"]["user"] == "Jane Doe"
    assert jobs["inter-half"]["user"] == "john"
    assert (jobs["train-one"]["type"], jobs["inter-half"]["type"], jobs["no-gpu"]["type"]) == (
        "Train", "Interactive", "Train")
    assert jobs["train-one"]["images"] == [SEED_JOB["image"]]
    assert jobs["inter-half"]["images"] == ["busybox:1.36"]
    assert jobs["train-one"]["requestedGPUs"] == 2
    assert jobs["inter-half"]["requestedGPUs"] == 0.5
    assert jobs["no-gpu"]["requestedGPUs"] == 0


@pytest.mark.parametrize("path", ["/api/job?project=team-b", "/api/v1/jobs?project=team-b", "/api/v1/job/team-b"])
def test_every_list_alias_lists_one_project(env, path):
    env.submit({**SEED_JOB, "name": "in-a"})
    env.submit({**SEED_JOB, "name": "in-b", "project": "team-b"})

    response = env.client.get(path)

    assert response.status_code == 200, response.json
    assert list(response.json) == ["data"]
    assert names(response) == ["in-b"]
    assert response.json["data"][0]["project"] == "team-b"
    assert response.json["data"][0]["uid"] == env.workload("in-b", TEAM_B)["metadata"]["uid"]


@pytest.mark.parametrize("path", ["/api/job", "/api/v1/jobs"])
def test_without_project_every_projects_jobs_are_listed(env, path):
    env.submit({**SEED_JOB, "name": "in-a"})
    env.submit({**SEED_JOB, "name": "in-b", "project": "team-b"})
    env.submit({**SEED_JOB, "name": "in-legacy", "project": "legacy"})

    response = env.client.get(path)

    assert response.status_code == 200, response.json
    assert {job["name"]: job["project"] for job in response.json["data"]} == {
        "in-a": "team-a", "in-b": "team-b", "in-legacy": "legacy"}


def test_list_of_a_project_without_jobs_is_empty(env):
    env.submit({**SEED_JOB, "name": "in-a"})
    response = env.client.get("/api/v1/job/team-b")
    assert response.status_code == 200
    assert response.json == {"data": []}


def test_list_filters_by_exact_user_even_when_label_forms_collide(env):
    env.submit({**SEED_JOB, "name": "by-space"}, user="a b")
    env.submit({**SEED_JOB, "name": "by-dash"}, user="a-b")
    env.submit({**SEED_JOB, "name": "by-other"}, user="someone")
    env.submit({**SEED_JOB, "name": "by-space-b", "project": "team-b"}, user="a b")
    # Same label-safe form, so only the annotation tells them apart.
    assert env.workload("by-space")["metadata"]["labels"]["runai/user"] == \
        env.workload("by-dash")["metadata"]["labels"]["runai/user"]

    def listed(query):
        response = env.client.get(query)
        assert response.status_code == 200, response.json
        return names(response)

    assert listed("/api/job?project=team-a&user=a%20b") == ["by-space"]
    assert listed("/api/job?project=team-a&user=a-b") == ["by-dash"]
    assert listed("/api/v1/job/team-a?user=a-b") == ["by-dash"]
    assert listed("/api/job?user=a%20b") == ["by-space", "by-space-b"]
    assert listed("/api/v1/jobs?user=nobody") == []
    assert listed("/api/job?project=team-a") == ["by-dash", "by-other", "by-space"]


STATUSES = [
    ({}, "Pending"),
    ({"active": 1, "ready": 0}, "Pending"),
    ({"active": 1, "ready": 1}, "Running"),
    ({"active": 2, "ready": 1, "succeeded": 1}, "Running"),
    ({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}, "Succeeded"),
    ({"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]},
     "Failed"),
    ({"active": 1, "ready": 1, "conditions": [{"type": "Failed", "status": "False"}]}, "Running"),
    (None, "Unknown"),                     # nothing has reported on it (a RunaiJob without Run:AI)
]


@pytest.mark.parametrize("status, expected", STATUSES, ids=[s for _, s in STATUSES])
def test_status_is_derived_from_the_workload_status(env, status, expected):
    env.submit({**SEED_JOB, "name": "watched"})
    env.submit({**SEED_JOB, "name": "other"})
    env.fake.set_status(env.kind, TEAM_A, "watched", status)

    listed = {job["name"]: job["status"] for job in env.client.get("/api/job?project=team-a").json["data"]}
    one = env.client.get("/api/v1/job/team-a/watched")

    assert listed == {"watched": expected, "other": env.untouched}
    assert one.status_code == 200 and one.json["status"] == expected


def test_a_new_workload_is_pending_or_unknown_until_something_reports_on_it(env):
    env.submit({**SEED_JOB, "name": "fresh"})
    # A batch/v1 Job is stored with an empty status: Pending. A RunaiJob is stored with none at all (status
    # is a subresource of its CRD), and the fake has no Run:AI controller and no pods: Unknown.
    assert env.workload("fresh").get("status") == ({} if env.kind == "Job" else None)
    assert env.client.get("/api/v1/job/team-a/fresh").json["status"] == env.untouched


@pytest.mark.parametrize("query", ["/api/job?project=team-a", "/api/job", "/api/v1/job/team-a?user=john",
                                   "/api/v1/jobs?user=john"])
def test_listing_costs_a_bounded_number_of_api_calls(env, query):
    env.submit({**SEED_JOB, "name": "first"})
    env.fake.clear_requests()
    assert len(env.client.get(query).json["data"]) == 1
    calls_for_one = list(env.fake.requests)

    for index in range(19):
        env.submit({**SEED_JOB, "name": f"more-{index}"})
    env.fake.clear_requests()
    assert len(env.client.get(query).json["data"]) == 20
    calls_for_twenty = list(env.fake.requests)

    # the project's namespace, the workloads, and (job insight) the pods of the one namespace listed
    assert len(calls_for_twenty) == len(calls_for_one) <= 3
    assert [(method, path) for method, path, _ in calls_for_twenty] == [
        (method, path) for method, path, _ in calls_for_one]
    assert all(method == "GET" for method, _, _ in calls_for_twenty)


@pytest.mark.parametrize("path", ["/api/job?project=Team_A", "/api/v1/jobs?project=-x", "/api/v1/job/UPPER"])
def test_list_with_an_invalid_project_name_is_422(env, path):
    env.fake.clear_requests()
    response = env.client.get(path)
    assert response.status_code == 422
    assert response.json["status"] == 422
    (error,) = response.json["errors"]
    assert error["field"] == "/project" and error["message"].startswith("must be a DNS-1123 label")
    assert not [r for r in env.fake.requests if "/jobs" in r[1] or "/runaijobs" in r[1]]


def test_list_of_an_unknown_project_is_404_naming_it(env):
    """Contract §4: an unknown project is a 404 that names the project (not an empty list)."""
    response = env.client.get("/api/v1/job/nope")
    assert response.status_code == 404, response.json
    assert "nope" in response.json["message"]


# --- one job ---------------------------------------------------------------------------------------


def test_get_one_job(env):
    env.submit({**SEED_JOB, "name": "solo", "gpu": 0.25, "interactive": True}, user="ann")
    env.submit({**SEED_JOB, "name": "solo", "project": "team-b"}, user="bob")  # same name, other project

    response = env.client.get("/api/v1/job/team-a/solo")

    assert response.status_code == 200, response.json
    job = response.json
    stored = env.workload("solo")
    assert JOB_FIELDS <= set(job)
    assert (job["name"], job["project"], job["user"], job["type"]) == ("solo", "team-a", "ann", "Interactive")
    assert job["uid"] == stored["metadata"]["uid"]
    assert job["createdAt"] == epoch_ms(stored["metadata"]["creationTimestamp"])
    assert job["requestedGPUs"] == 0.25
    assert job["images"] == [SEED_JOB["image"]]
    other = env.client.get("/api/v1/job/team-b/solo").json
    assert (other["project"], other["user"]) == ("team-b", "bob")
    assert other["uid"] == env.workload("solo", TEAM_B)["metadata"]["uid"] != job["uid"]


def test_get_an_absent_job_is_404_in_the_envelope(env):
    env.submit({**SEED_JOB, "name": "present"})
    response = env.client.get("/api/v1/job/team-a/absent")
    assert response.status_code == 404
    assert set(response.json) >= {"status", "message", "details", "errors"}
    assert response.json["status"] == 404
    assert "absent" in response.json["message"] and "team-a" in response.json["message"]


@pytest.mark.parametrize("project", ["Team-A", "team_a", "-team", "a" * 64])
def test_get_with_an_invalid_project_name_is_422(env, project):
    response = env.client.get(f"/api/v1/job/{project}/x")
    assert response.status_code == 422
    assert response.json["status"] == 422
    assert response.json["errors"][0]["field"] == "/project"


@pytest.mark.parametrize("name", ["%23", "%3Fx", "%3FlabelSelector%3Dapp%3Drunaijob"])
def test_get_with_a_name_that_is_not_an_object_name_never_answers_a_job(env, name):
    """A name with URL syntax ("#", "?") must not turn the GET of one object into a list of all."""
    env.submit({**SEED_JOB, "name": "present"})
    response = env.client.get(f"/api/v1/job/team-a/{name}")
    assert response.status_code in (404, 422), response.json
    assert response.json["status"] == response.status_code


def test_get_with_a_suffix_after_hash_is_not_another_job(env):
    env.submit({**SEED_JOB, "name": "present"})
    response = env.client.get("/api/v1/job/team-a/present%23junk")
    assert response.status_code in (404, 422), response.json


# --- delete ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/job", "/api/v1/jobs"])
def test_delete_after_submit_leaves_nothing_but_the_pvcs(env, path):
    assert env.left() == []
    created = env.submit(MAXIMAL_JOB)
    assert [obj["kind"] for obj in created["objects"]] == [env.kind, "PersistentVolumeClaim", "Service", "Ingress"]

    response = env.delete([{"name": "maximal", "project": "team-a"}], path=path)

    assert response.status_code == 200, response.json
    assert response.json == [{"name": "maximal", "project": "team-a", "ok": True, "error": None,
                              "deleted": [f"{env.kind} maximal", "Service maximal", "Ingress maximal"]}]
    assert env.left() == [("PersistentVolumeClaim", "pvc-maximal-0")]


def test_delete_with_delete_pvcs_leaves_nothing_and_keeps_other_jobs(env):
    env.submit(MAXIMAL_JOB)
    env.submit({**MAXIMAL_JOB, "name": "keeper"})
    keeper_before = env.left()

    response = env.delete([{"name": "maximal", "project": "team-a"}], query="?deletePvcs=true")

    assert response.status_code == 200, response.json
    (result,) = response.json
    assert result["ok"] is True
    assert result["deleted"] == [f"{env.kind} maximal", "Service maximal", "Ingress maximal",
                                 "PersistentVolumeClaim pvc-maximal-0"]
    assert env.left() == [item for item in keeper_before if item[1] in ("keeper", "pvc-keeper-0")]
    assert env.left() == sorted([(env.kind, "keeper"), ("PersistentVolumeClaim", "pvc-keeper-0"),
                                 ("Service", "keeper"), ("Ingress", "keeper")])


def test_delete_pvcs_deletes_only_the_claims_this_job_mounts_not_those_an_earlier_job_kept(env):
    env.submit({**SEED_JOB, "name": "j1", "pvc": [{"size": "1Gi", "path": "/data"}]})
    assert env.delete([{"name": "j1", "project": "team-a"}]).json[0]["ok"] is True  # its claim is kept
    env.submit({**SEED_JOB, "name": "j1", "pvc": [{"claimName": "pvc-j1-0", "path": "/old", "readOnly": True},
                                                  {"size": "1Gi", "path": "/scratch"}]})
    assert env.left() == sorted([(env.kind, "j1"), ("PersistentVolumeClaim", "pvc-j1-0"),
                                 ("PersistentVolumeClaim", "pvc-j1-1")])
    env.submit({**SEED_JOB, "name": "j2"})

    response = env.delete([{"name": "j1", "project": "team-a"}, {"name": "j2", "project": "team-a"}],
                          query="?deletePvcs=true")

    # The new j1 mounts pvc-j1-1, its own, and pvc-j1-0, the first j1's data, as an existing claim: only
    # its own goes. j2 has no claim, so nothing of j1's is deleted with it.
    assert [item["deleted"] for item in response.json] == [
        [f"{env.kind} j1", "PersistentVolumeClaim pvc-j1-1"], [f"{env.kind} j2"]]
    assert env.left() == [("PersistentVolumeClaim", "pvc-j1-0")]


def test_delete_pvcs_of_a_job_already_gone_deletes_the_claims_it_kept_unless_a_job_mounts_them(env):
    env.submit({**SEED_JOB, "name": "keep", "pvc": [{"size": "1Gi", "path": "/data"}]})
    assert env.delete([{"name": "keep", "project": "team-a"}]).json[0]["ok"] is True  # the claim stays
    env.submit({**SEED_JOB, "name": "reader", "pvc": [{"claimName": "pvc-keep-0", "path": "/data"}]})

    (in_use,) = env.delete([{"name": "keep", "project": "team-a"}], query="?deletePvcs=true").json
    assert (in_use["ok"], in_use["error"]["status"]) == (False, 404)  # reader's data stays
    assert ("PersistentVolumeClaim", "pvc-keep-0") in env.left()

    assert env.delete([{"name": "reader", "project": "team-a"}]).json[0]["ok"] is True
    (freed,) = env.delete([{"name": "keep", "project": "team-a"}], query="?deletePvcs=true").json
    assert freed["ok"] is True and freed["deleted"] == ["PersistentVolumeClaim pvc-keep-0"]
    assert env.left() == []
    (again,) = env.delete([{"name": "keep", "project": "team-a"}], query="?deletePvcs=true").json
    assert (again["ok"], again["error"]["status"]) == (False, 404)


def test_delete_pvcs_false_keeps_them(env):
    env.submit(MAXIMAL_JOB)
    response = env.delete([{"name": "maximal", "project": "team-a"}], query="?deletePvcs=false")
    assert response.status_code == 200 and response.json[0]["ok"] is True
    assert env.left() == [("PersistentVolumeClaim", "pvc-maximal-0")]


def test_delete_removes_service_and_ingress_in_a_labelled_namespace(env):
    env.submit({**SEED_JOB, "name": "web", "project": "team-b", "ports": [8080], "serviceType": "ingress"})
    assert env.left() == sorted([(env.kind, "web"), ("Service", "web"), ("Ingress", "web")])

    response = env.delete([{"name": "web", "project": "team-b"}])

    assert response.json == [{"name": "web", "project": "team-b", "ok": True, "error": None,
                              "deleted": [f"{env.kind} web", "Service web", "Ingress web"]}]
    # gone when the answer comes, without waiting for the garbage collector
    assert env.fake.objects("Service") == [] and env.fake.objects("Ingress") == []
    deletes = [path.split("?")[0] for method, path, _ in env.fake.requests if method == "DELETE"]
    assert [path.rsplit("/", 2)[-2:] for path in deletes] == [
        [KINDS[env.kind].plural, "web"], ["services", "web"], ["ingresses", "web"]]
    assert all(f"/namespaces/{TEAM_B}/" in path for path in deletes)


def test_delete_leaves_a_service_of_the_same_name_that_the_job_does_not_own(env):
    env.submit({**SEED_JOB, "name": "web", "project": "team-b"})
    cluster = env.client.application.extensions["runai_submit"].cluster
    cluster.create(TEAM_B, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                            "spec": {"ports": [{"port": 80}]}})  # someone else's, by chance of the same name

    response = env.delete([{"name": "web", "project": "team-b"}])

    assert response.json[0]["deleted"] == [f"{env.kind} web"]
    assert [s["metadata"]["name"] for s in env.fake.objects("Service")] == ["web"]


def test_a_workload_that_is_not_a_job_is_not_found_and_left_alone(env):
    """A CI Job (or any object of the workload kind without the jobs' ``app=runaijob``) shares the namespace:
    it is not listed, so it cannot be read, suspended, resumed, or deleted either."""
    cluster = env.client.application.extensions["runai_submit"].cluster
    kind = cluster.workload_kind()
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}
    cluster.create(TEAM_A, {"apiVersion": kind.api_version, "kind": kind.kind,
                            "metadata": {"name": "ci-build", "labels": {"app": "ci"}}, "spec": {"template": template}})

    assert env.client.get("/api/job?project=team-a").json["data"] == []
    for answer in (env.client.get("/api/v1/job/team-a/ci-build"),
                   env.client.post("/api/v1/job/team-a/ci-build/suspend", headers=USER),
                   env.client.post("/api/v1/job/team-a/ci-build/resume", headers=USER),
                   env.client.get("/api/v1/job/team-a/ci-build/logs")):
        assert answer.status_code == 404, answer.json
        assert answer.json["message"] == "Job 'ci-build' does not exist in project 'team-a'."
    (item,) = env.delete([{"name": "ci-build", "project": "team-a"}]).json
    assert (item["ok"], item["error"]["status"]) == (False, 404)
    (stored,) = env.fake.objects(env.kind)
    assert stored["metadata"]["name"] == "ci-build" and not stored["spec"].get("suspend")


def test_delete_in_a_project_that_does_not_exist_is_a_404_naming_the_project(env):
    (item,) = env.delete([{"name": "x", "project": "nope"}]).json
    assert item["ok"] is False
    assert item["error"]["status"] == 404 and item["error"]["message"] == "Project 'nope' does not exist."


def test_delete_reports_each_item_and_one_failure_does_not_stop_the_others(env):
    env.submit({**SEED_JOB, "name": "one"})
    env.submit({**SEED_JOB, "name": "two", "project": "team-b"})
    items = [
        {"name": "one", "project": "team-a"},
        {"name": "ghost", "project": "team-a"},
        {"name": "two", "project": "team-b"},
    ]

    response = env.delete(items)

    assert response.status_code == 200, response.json
    results = response.json
    assert [r["ok"] for r in results] == [True, False, True]
    assert results[0] == {"name": "one", "project": "team-a", "ok": True, "error": None, "deleted": [f"{env.kind} one"]}
    assert results[2] == {"name": "two", "project": "team-b", "ok": True, "error": None, "deleted": [f"{env.kind} two"]}
    ghost = results[1]
    assert (ghost["name"], ghost["project"], ghost["error"]["status"]) == ("ghost", "team-a", 404)
    assert set(ghost["error"]) >= {"status", "message", "details", "errors"}
    assert "ghost" in ghost["error"]["message"]
    assert env.left() == []


def test_delete_with_malformed_items_is_422_naming_each_and_deletes_nothing(env):
    """The document promises an array of {name, project}: a body that breaks it is refused whole, every bad item
    named by its JSON pointer, before anything is deleted."""
    env.submit({**SEED_JOB, "name": "one"})
    items = [
        {"name": "one", "project": "team-a"},
        "not-an-object",
        {"name": "lonely"},
        {"project": "team-a"},
        {"name": "Bad_Name", "project": "team-a"},
        {"name": "x", "project": "Bad_Project"},
        {"name": "x", "project": "team-a", "extra": True},
        {"name": 5, "project": "team-a"},
    ]

    response = env.delete(items)

    assert response.status_code == 422, response.json
    assert response.json["status"] == 422 and "nothing was deleted" in response.json["message"]
    fields = [error["field"] for error in response.json["errors"]]
    assert fields == ["/1", "/2/project", "/3/name", "/4/name", "/5/project", "/6/extra", "/7/name"]
    assert response.json["errors"][5]["message"] == "unknown field (check its spelling)"  # an item is no job
    assert env.left() == [(env.kind, "one")]
    assert not [r for r in env.fake.requests if r[0] == "DELETE"]


@pytest.mark.parametrize("body", [{"name": "one", "project": "team-a"}, "one", 3, None])
def test_delete_body_that_is_not_a_list_is_400(env, body):
    env.submit({**SEED_JOB, "name": "one"})
    response = env.client.delete("/api/job", json=body, headers=USER)
    assert response.status_code == 400
    assert response.json["status"] == 400
    assert env.left() == [(env.kind, "one")]


def test_delete_body_that_is_not_json_is_400(env):
    response = env.client.delete("/api/job", data="[{", headers=USER)
    assert response.status_code == 400 and response.json["status"] == 400


@pytest.mark.parametrize("headers", [{}, {"RA-USER": ""}, {"RA-USER": "   "}])
def test_delete_without_ra_user_is_401_and_deletes_nothing(env, headers):
    env.submit({**SEED_JOB, "name": "one"})
    response = env.delete([{"name": "one", "project": "team-a"}], headers=headers)
    assert response.status_code == 401
    assert response.json["status"] == 401 and "RA-USER" in response.json["message"]
    assert env.left() == [(env.kind, "one")]


def test_delete_with_a_bad_delete_pvcs_flag_is_400_and_deletes_nothing(env):
    env.submit({**SEED_JOB, "name": "one"})
    response = env.delete([{"name": "one", "project": "team-a"}], query="?deletePvcs=maybe")
    assert response.status_code == 400 and "deletePvcs" in response.json["message"]
    assert env.left() == [(env.kind, "one")]


def test_delete_of_an_empty_list_is_an_empty_answer(env):
    response = env.delete([])
    assert response.status_code == 200 and response.json == []


# --- projects, version ----------------------------------------------------------------------------


def test_projects_are_the_labelled_namespaces(env):
    response = env.client.get("/api/v1/projects")
    assert response.status_code == 200, response.json
    assert response.json == {"data": [{"name": "team-a", "namespace": TEAM_A}, {"name": "team-b", "namespace": TEAM_B}]}


def test_projects_follow_new_labels(env):
    env.fake.add_namespace("ml-research", {"runai/queue": "research"})
    response = env.client.get("/api/v1/projects")
    assert {"name": "research", "namespace": "ml-research"} in response.json["data"]
    assert len(response.json["data"]) == 3


def test_version_names_the_service_and_the_api_server(env):
    response = env.client.get("/api/v1/version")
    assert response.status_code == 200, response.json
    assert response.json["version"] == __version__
    assert response.json["kubernetes"] == env.fake.kube_version == "v1.28.0"


# --- dry run ---------------------------------------------------------------------------------------


def test_dry_run_with_the_batch_kind(batch_client, fake_batch_api):
    response = submit(batch_client, MAXIMAL_JOB, query="?dryRun=true")

    assert response.status_code == 200, response.json
    manifests = response.json["manifests"]
    assert [(m["apiVersion"], m["kind"]) for m in manifests] == [
        ("batch/v1", "Job"), ("v1", "PersistentVolumeClaim"), ("v1", "Service"), ("networking.k8s.io/v1", "Ingress")]
    assert response.json["kind"] == "Job"
    for dependent in manifests[2:]:
        (owner,) = dependent["metadata"]["ownerReferences"]
        assert (owner["apiVersion"], owner["kind"], owner["name"]) == ("batch/v1", "Job", "maximal")
    assert manifests[0]["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert [obj for obj in fake_batch_api.objects() if obj["kind"] != "Namespace"] == []
    posts = [r for r in fake_batch_api.requests if r[0] == "POST"]
    assert [path.rsplit("/", 1)[1] for _, path, _ in posts] == ["jobs", "persistentvolumeclaims", "services",
                                                                 "ingresses"]
    assert all(query.get("dryRun") == "All" for _, _, query in posts)


@pytest.mark.parametrize("value", ["maybe", "2", "tru"])
def test_dry_run_with_a_bad_value_is_400_and_creates_nothing(env, value):
    response = submit(env.client, SEED_JOB, query=f"?dryRun={value}")
    assert response.status_code == 400
    assert response.json["status"] == 400 and "dryRun" in response.json["message"]
    assert not [r for r in env.fake.requests if r[0] == "POST"]
    assert env.left() == []


@pytest.mark.parametrize(("method", "path", "query", "meant", "status"), [
    ("POST", "/api/job", "dryrun=true", "dryRun", 400),
    ("POST", "/api/v1/jobs/batch", "Atomic=true&DRYRUN=true", "atomic", 400),
    ("DELETE", "/api/job", "deletePVCs=true", "deletePvcs", 400),
    ("GET", "/api/job", "Project=team-a", "project", 422),
])
def test_a_query_parameter_in_the_wrong_case_is_refused_naming_the_one_meant(env, method, path, query, meant,
                                                                             status):
    """Unknown parameters are ignored, but one that differs from the operation's own only in case is a mistake
    whose silence would act otherwise than asked (``dryrun=true`` would create the job)."""
    env.submit({**SEED_JOB, "name": "kept"})
    body = ({"jobs": [SEED_JOB]} if "batch" in path else {"job": SEED_JOB} if method == "POST"
            else [{"name": "kept", "project": "team-a"}] if method == "DELETE" else None)
    env.fake.clear_requests()

    response = env.client.open(f"{path}?{query}&unknown=1", method=method, json=body, headers=USER)

    assert response.status_code == status, response.json
    given = [part.split("=")[0] for part in query.split("&")]
    assert [error["field"] for error in response.json["errors"]] == [f"/{name}" for name in given]
    assert f"did you mean {meant!r}?" in response.json["errors"][0]["message"]
    assert [request for request in env.fake.requests if request[0] in ("POST", "DELETE")] == []
    assert env.left() == [(env.kind, "kept")]


# --- health -----------------------------------------------------------------------------------------


def test_healthz_answers_without_the_cluster(fake_api, tmp_path):
    client = make_app(fake_api, tmp_path).test_client()
    fake_api.refuse_connections(True)
    try:
        response = client.get("/healthz")
    finally:
        fake_api.refuse_connections(False)
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
    assert fake_api.requests == []


def test_readyz_follows_the_api_server(fake_api, tmp_path):
    client = make_app(fake_api, tmp_path, ready_cache_seconds=0).test_client()

    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json
    assert ready.json == {"status": "ready", "backend": "kubeconfig"}

    fake_api.refuse_connections(True)
    try:
        down = client.get("/readyz")
    finally:
        fake_api.refuse_connections(False)
    assert down.status_code == 503
    assert down.json["status"] == 503 and down.json["message"]
    assert set(down.json) >= {"status", "message", "details", "errors"}
    assert int(down.headers["Retry-After"]) >= 1

    again = client.get("/readyz")
    assert again.status_code == 200


def test_readyz_result_is_cached_briefly(fake_api, tmp_path):
    client = make_app(fake_api, tmp_path, ready_cache_seconds=60).test_client()
    assert client.get("/readyz").status_code == 200
    fake_api.clear_requests()
    assert client.get("/readyz").status_code == 200
    assert fake_api.requests == []


# --- API server errors ------------------------------------------------------------------------------


def _refused(env, call):
    env.fake.refuse_connections(True)
    try:
        return call()
    finally:
        env.fake.refuse_connections(False)


def test_list_while_the_api_server_refuses_connections_is_503(env):
    env.submit({**SEED_JOB, "name": "one"})  # discovery and the namespace map are cached now
    for path in ("/api/job", "/api/job?project=team-a", "/api/v1/job/team-b"):
        response = _refused(env, lambda: env.client.get(path))
        assert response.status_code == 503, (path, response.json)
        assert response.json["status"] == 503
        assert int(response.headers["Retry-After"]) >= 1
    assert env.client.get("/api/job").status_code == 200  # and back


def test_get_while_the_api_server_refuses_connections_is_503(env):
    env.submit({**SEED_JOB, "name": "one"})
    response = _refused(env, lambda: env.client.get("/api/v1/job/team-a/one"))
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert env.client.get("/api/v1/job/team-a/one").status_code == 200


def test_delete_while_the_api_server_refuses_connections_reports_503_and_deletes_nothing(env):
    env.submit({**SEED_JOB, "name": "one"})
    response = _refused(env, lambda: env.delete([{"name": "one", "project": "team-a"}]))
    assert response.status_code in (200, 503), response.json
    if response.status_code == 200:  # one result per item
        (result,) = response.json
        assert result["ok"] is False and result["error"]["status"] == 503
    assert env.left() == [(env.kind, "one")]


def test_projects_and_version_while_the_api_server_refuses_connections_are_503(env):
    for path in ("/api/v1/projects", "/api/v1/version"):
        response = _refused(env, lambda: env.client.get(path))
        assert response.status_code == 503, (path, response.json)
        assert int(response.headers["Retry-After"]) >= 1
        if path == "/api/v1/projects":  # namespaces are in no namespace
            assert response.json["message"] == "The cluster did not answer; could not list namespaces."


def test_list_forbidden_by_the_api_server_is_403(env):
    env.submit({**SEED_JOB, "name": "one"})
    env.fake.fail_request(verb="list", kind=env.kind, status=403)

    response = env.client.get("/api/job?project=team-a")

    assert response.status_code == 403, response.json
    assert response.json["status"] == 403 and "forbidden" in response.json["details"]
    assert env.client.get("/api/job?project=team-a").status_code == 200


def test_get_forbidden_by_the_api_server_is_403(env):
    env.submit({**SEED_JOB, "name": "one"})
    env.fake.fail_request(verb="get", kind=env.kind, status=403)
    response = env.client.get("/api/v1/job/team-a/one")
    assert response.status_code == 403 and response.json["status"] == 403


def test_delete_forbidden_by_the_api_server_is_reported_per_item(env):
    env.submit({**SEED_JOB, "name": "one"})
    env.submit({**SEED_JOB, "name": "two"})
    env.fake.fail_request(verb="delete", kind=env.kind, status=403)

    response = env.delete([{"name": "one", "project": "team-a"}, {"name": "two", "project": "team-a"}])

    assert response.status_code == 200, response.json
    assert [r["ok"] for r in response.json] == [False, True]
    assert response.json[0]["error"]["status"] == 403
    assert env.left() == [(env.kind, "one")]


def test_delete_pvcs_forbidden_is_reported(env):
    env.submit(MAXIMAL_JOB)
    env.fake.fail_request(verb="delete", kind="PersistentVolumeClaim", status=403)
    response = env.delete([{"name": "maximal", "project": "team-a"}], query="?deletePvcs=true")
    assert response.status_code == 200
    (result,) = response.json
    assert result["ok"] is False and result["error"]["status"] == 403
    assert env.left() == [("PersistentVolumeClaim", "pvc-maximal-0")]
