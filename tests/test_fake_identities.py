"""The fake API server's identities (tests/fake_apiserver.py, issue 9), called directly over HTTP.

tests/test_auth_real.py compares the same answers with a real API server; these pin the rules the
service's tests rely on, without one.
"""
from __future__ import annotations

import http.client
import json

import pytest

from tests.conftest import TEAM_A

SAR = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
JOBS_A = f"/apis/batch/v1/namespaces/{TEAM_A}/jobs"


def call(fake, method: str, path: str, body: dict | None = None, headers: list[tuple[str, str]] = ()):
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    connection.putrequest(method, path)
    for name, value in [("Content-Type", "application/json"), *headers]:
        connection.putheader(name, value)
    data = json.dumps(body).encode() if body is not None else b""
    connection.putheader("Content-Length", str(len(data)))
    connection.endheaders(data)
    response = connection.getresponse()
    answer = response.status, json.loads(response.read())
    connection.close()
    return answer


def token(value: str) -> tuple[str, str]:
    return ("Authorization", f"Bearer {value}")


def review(kind: str, **spec) -> dict:
    return {"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": spec}


def test_tokens_are_users_and_unknown_ones_are_401(fake_api):
    fake_api.add_user("t-alice", "alice", ["devs"])
    status, body = call(fake_api, "POST", SSR, {"apiVersion": "authentication.k8s.io/v1",
                                                 "kind": "SelfSubjectReview"}, [token("t-alice")])
    assert status == 201 and body["status"]["userInfo"] == {"username": "alice",
                                                             "groups": ["devs", "system:authenticated"]}
    assert call(fake_api, "GET", JOBS_A, headers=[token("t-unknown")])[0] == 401
    fake_api.revoke("t-alice")
    assert call(fake_api, "GET", JOBS_A, headers=[token("t-alice")])[0] == 401


def test_grants_are_per_namespace_or_cluster_wide(fake_api):
    fake_api.add_user("t-alice", "alice", ["devs"])
    fake_api.grant(group="devs", verbs=["list"], resources=["jobs.batch"], namespace=TEAM_A)
    assert call(fake_api, "GET", JOBS_A, headers=[token("t-alice")])[0] == 200
    status, body = call(fake_api, "GET", "/apis/batch/v1/jobs", headers=[token("t-alice")])
    assert status == 403 and body["message"] == ('jobs.batch is forbidden: User "alice" cannot list resource "jobs" '
                                                 'in API group "batch" at the cluster scope')
    status, body = call(fake_api, "POST", JOBS_A, {"apiVersion": "batch/v1", "kind": "Job"}, [token("t-alice")])
    assert status == 403 and body["details"] == {"group": "batch", "kind": "jobs"}
    fake_api.grant(user="alice", verbs=["*"], resources=["*"])
    assert call(fake_api, "GET", "/apis/batch/v1/jobs", headers=[token("t-alice")])[0] == 200


def test_impersonation_needs_the_verb_and_sends_each_group(fake_api):
    fake_api.add_user("t-proxy", "proxy")
    as_dana = [token("t-proxy"), ("Impersonate-User", "dana"), ("Impersonate-Group", "g1"),
               ("Impersonate-Group", "g2")]
    status, body = call(fake_api, "GET", JOBS_A, headers=as_dana)
    assert status == 403 and 'cannot impersonate resource "users"' in body["message"]
    fake_api.grant(user="proxy", verbs=["impersonate"], resources=["users"])
    status, body = call(fake_api, "GET", JOBS_A, headers=as_dana)
    assert status == 403 and body["message"].startswith('groups "g1" is forbidden')
    fake_api.grant(user="proxy", verbs=["impersonate"], resources=["groups"])
    fake_api.grant(group="g2", verbs=["list"], resources=["jobs.batch"], namespace=TEAM_A)
    assert call(fake_api, "GET", JOBS_A, headers=as_dana)[0] == 200
    assert fake_api.callers[-1] == ("GET", JOBS_A, "dana")
    status, _ = call(fake_api, "GET", JOBS_A, headers=[token("t-proxy"), ("Impersonate-Group", "g1")])
    assert status == 500  # like kube-apiserver: groups without a user


@pytest.mark.parametrize(("kind", "path"), [("SelfSubjectAccessReview", SSAR), ("SubjectAccessReview", SAR)])
def test_access_reviews_answer_from_the_table(fake_api, kind, path):
    fake_api.grant(user="alice", verbs=["create"], resources=["jobs.batch"], namespace=TEAM_A)
    fake_api.add_user("t-alice", "alice")
    who = {} if kind == "SelfSubjectAccessReview" else {"user": "alice"}
    requester = "t-alice" if kind == "SelfSubjectAccessReview" else fake_api.token
    for namespace, allowed in ((TEAM_A, True), ("science", False)):
        attributes = {"namespace": namespace, "verb": "create", "group": "batch", "resource": "jobs"}
        status, body = call(fake_api, "POST", path, review(kind, resourceAttributes=attributes, **who),
                            [token(requester)])
        assert status == 201 and body["status"]["allowed"] is allowed


def test_only_the_privileged_may_review_others(fake_api):
    fake_api.add_user("t-alice", "alice")
    status, body = call(fake_api, "POST", SAR, review("SubjectAccessReview", user="bob",
                                                      resourceAttributes={"verb": "get", "resource": "pods"}),
                        [token("t-alice")])
    assert status == 403 and "subjectaccessreviews" in body["message"]


def test_reset_forgets_users_and_grants(fake_api):
    fake_api.add_user("t-alice", "alice")
    fake_api.add_user(fake_api.token, "restricted")
    fake_api.reset()
    assert call(fake_api, "GET", JOBS_A, headers=[token("t-alice")])[0] == 401
    assert call(fake_api, "GET", JOBS_A, headers=[token(fake_api.token)])[0] == 200  # admin again
