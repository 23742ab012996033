"""Auth modes against the fake API server: who calls, who decides, every 401 and 403, caches and secrecy.

The fake knows bearer tokens, impersonation headers, SelfSubjectReview, SelfSubjectAccessReview and a small
RBAC table (tests/fake_apiserver.py, "Identities and authorization"); ``fake.callers`` records which user
made each call. The same cases run against a real control plane in tests/test_auth_real.py.
"""
from __future__ import annotations

import logging
import uuid

import pytest

from runai_submit.app import create_app
from runai_submit.errors import ConfigError
from tests.conftest import SEED_JOB, TEAM_A, TEAM_B, make_app

SERVICE_ACCOUNT = "system:serviceaccount:runai-submit:runai-submit"
ALICE = f"eyJhbGciOiJSUzI1NiJ9.alice-{uuid.uuid4().hex}.c2ln"  # shaped like a JWT: three base64url parts
BOB = f"eyJhbGciOiJSUzI1NiJ9.bob-{uuid.uuid4().hex}.c2ln"
CAROL = f"eyJhbGciOiJSUzI1NiJ9.carol-{uuid.uuid4().hex}.c2ln"
JOB_RESOURCES = ["runaijobs.run.ai", "jobs.batch", "services", "persistentvolumeclaims",
                 "ingresses.networking.k8s.io", "pods", "events"]
JOB_VERBS = ["create", "get", "list", "delete"]
SERVICE_JOB = {**SEED_JOB, "name": "with-port", "ports": [8080], "serviceType": "ClusterIP"}
RUNAIJOBS_A = f"/apis/run.ai/v1/namespaces/{TEAM_A}/runaijobs"
SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def bearer(token: str, **headers: str) -> dict:
    return {"Authorization": f"Bearer {token}", **headers}


def post_job(client, job: dict, headers: dict, query: str = ""):
    return client.post(f"/api/job{query}", json={"job": job}, headers=headers)


def job_objects(fake) -> list[dict]:
    return [obj for obj in fake.objects() if obj["kind"] != "Namespace"]


def calls(fake, method: str, path: str) -> list[str]:
    """The users that made ``method path`` calls (exact path, or below it)."""
    return [user for m, p, user in fake.callers if m == method and (p == path or p.startswith(path + "/"))]


@pytest.fixture
def cluster(fake_api):
    """The service as a least-privilege ServiceAccount; alice may run jobs in team-a (by group); bob nowhere."""
    fake_api.add_user(fake_api.token, SERVICE_ACCOUNT)
    fake_api.grant(user=SERVICE_ACCOUNT, verbs=["get", "list"], resources=["namespaces"])
    fake_api.add_user(ALICE, "alice", ["ml-team-a"])
    fake_api.grant(group="ml-team-a", verbs=JOB_VERBS, resources=JOB_RESOURCES, namespace=TEAM_A)
    fake_api.add_user(BOB, "bob")
    return fake_api


@pytest.fixture
def token_client(cluster, tmp_path):
    return make_app(cluster, tmp_path, auth_mode="token").test_client()


# --- token mode: every call is the caller's -----------------------------------------------------------


def test_token_mode_submit_list_get_delete_are_made_as_the_caller(token_client, cluster):
    created = post_job(token_client, SEED_JOB, bearer(ALICE))
    assert created.status_code == 200, created.json
    name = created.json["name"]
    (workload,) = cluster.objects("RunaiJob", TEAM_A)
    assert workload["metadata"]["annotations"]["user"] == "alice"
    assert workload["metadata"]["labels"]["runai/user"] == "alice"
    assert workload["spec"]["template"]["metadata"]["annotations"]["user"] == "alice"

    listed = token_client.get("/api/job?project=team-a", headers=bearer(ALICE))
    assert listed.status_code == 200, listed.json
    assert [(job["name"], job["user"]) for job in listed.json["data"]] == [(name, "alice")]
    got = token_client.get(f"/api/v1/job/team-a/{name}", headers=bearer(ALICE))
    assert got.status_code == 200 and got.json["user"] == "alice"
    deleted = token_client.delete("/api/job", json=[{"name": name, "project": "team-a"}], headers=bearer(ALICE))
    assert deleted.status_code == 200 and deleted.json[0]["ok"] is True, deleted.json
    assert job_objects(cluster) == []

    # Every job call went out as alice; the service's own identity only discovered projects.
    assert set(calls(cluster, "POST", RUNAIJOBS_A)) == {"alice"}
    assert set(calls(cluster, "GET", RUNAIJOBS_A)) == {"alice"}
    assert set(calls(cluster, "DELETE", RUNAIJOBS_A)) == {"alice"}
    assert {user for _, path, user in cluster.callers if user == SERVICE_ACCOUNT} == {SERVICE_ACCOUNT}
    assert {path for _, path, user in cluster.callers if user == SERVICE_ACCOUNT} <= {
        "/api/v1/namespaces", f"/api/v1/namespaces/{TEAM_A}", "/apis/run.ai/v1"}


def test_token_mode_refusal_in_another_project_is_a_403_in_the_api_servers_words(token_client, cluster):
    response = post_job(token_client, {**SEED_JOB, "project": "team-b"}, bearer(ALICE))
    assert response.status_code == 403, response.json
    words = f'User "alice" cannot create resource "runaijobs" in API group "run.ai" in the namespace "{TEAM_B}"'
    assert words in response.json["message"]
    assert job_objects(cluster) == []


def test_a_user_without_rights_gets_403_everywhere_and_sees_no_project(token_client, cluster):
    submitted = post_job(token_client, SEED_JOB, bearer(BOB))
    assert submitted.status_code == 403 and 'User "bob" cannot create' in submitted.json["message"]
    listed = token_client.get("/api/v1/job/team-a", headers=bearer(BOB))
    assert listed.status_code == 403 and 'User "bob" cannot list' in listed.json["message"]
    got = token_client.get("/api/v1/job/team-a/anything", headers=bearer(BOB))
    assert got.status_code == 403
    deleted = token_client.delete("/api/job", json=[{"name": "x", "project": "team-a"}], headers=bearer(BOB))
    assert deleted.json[0]["ok"] is False and deleted.json[0]["error"]["status"] == 403
    assert token_client.get("/api/v1/projects", headers=bearer(BOB)).json == {"data": []}
    assert token_client.get("/api/job", headers=bearer(BOB)).json == {"data": []}
    assert job_objects(cluster) == []


def test_projects_are_those_where_the_caller_may_create_the_workload(token_client, cluster):
    cluster.add_user(CAROL, "carol", ["system:masters"])
    assert token_client.get("/api/v1/projects", headers=bearer(ALICE)).json == {
        "data": [{"name": "team-a", "namespace": TEAM_A}]}
    assert [p["name"] for p in token_client.get("/api/v1/projects", headers=bearer(CAROL)).json["data"]] == [
        "team-a", "team-b"]
    # Asked as each caller, with their own token: the service needs no right to review others.
    assert set(calls(cluster, "POST", SSAR)) == {"alice", "carol"}


def test_listing_every_project_shows_the_callers_jobs_without_cluster_wide_rights(token_client, cluster):
    cluster.add_user(CAROL, "carol", ["system:masters"])
    mine = post_job(token_client, SEED_JOB, bearer(ALICE)).json["name"]
    theirs = post_job(token_client, {**SEED_JOB, "project": "team-b"}, bearer(CAROL)).json["name"]

    alice_sees = token_client.get("/api/job", headers=bearer(ALICE))
    assert alice_sees.status_code == 200, alice_sees.json
    assert [job["name"] for job in alice_sees.json["data"]] == [mine]
    carol_sees = token_client.get("/api/job", headers=bearer(CAROL))
    assert sorted(job["name"] for job in carol_sees.json["data"]) == sorted([mine, theirs])
    assert calls(cluster, "GET", "/apis/run.ai/v1/runaijobs") == ["carol"]  # one cluster-wide list, hers


def test_the_rollback_deletes_as_the_caller_and_leaves_nothing(token_client, cluster):
    cluster.add_user(CAROL, "carol")
    cluster.grant(user="carol", verbs=JOB_VERBS, resources=["runaijobs.run.ai"], namespace=TEAM_A)

    response = post_job(token_client, SERVICE_JOB, bearer(CAROL))

    assert response.status_code == 403, response.json
    assert 'User "carol" cannot create resource "services"' in response.json["message"]
    assert response.json["failedObject"] == "Service with-port" and response.json["leftBehind"] == []
    assert job_objects(cluster) == []
    assert calls(cluster, "DELETE", RUNAIJOBS_A) == ["carol"]


def test_ra_user_is_optional_and_a_disagreeing_one_is_only_noted_in_the_audit(token_client, cluster, caplog):
    response = post_job(token_client, SEED_JOB, bearer(ALICE, **{"RA-USER": "mallory"}))
    assert response.status_code == 200, response.json
    (workload,) = cluster.objects("RunaiJob", TEAM_A)
    assert workload["metadata"]["annotations"]["user"] == "alice"
    (audit,) = [r for r in caplog.records if r.name == "runai_submit.audit"]
    assert (audit.user, audit.claimed_user, audit.auth_mode) == ("alice", "mallory", "token")
    assert audit.groups == ["ml-team-a", "system:authenticated"]


def test_delete_audit_records_name_the_authenticated_user_and_groups(token_client, cluster, caplog):
    name = post_job(token_client, SEED_JOB, bearer(ALICE)).json["name"]
    caplog.clear()
    token_client.delete("/api/job", json=[{"name": name, "project": "team-a"}], headers=bearer(ALICE))
    (audit,) = [r for r in caplog.records if r.name == "runai_submit.audit"]
    assert (audit.event, audit.user, audit.groups) == ("delete", "alice", ["ml-team-a", "system:authenticated"])


def test_whoami_answers_the_tokens_identity(token_client):
    response = token_client.get("/api/v1/whoami", headers=bearer(ALICE))
    assert response.status_code == 200
    assert response.json == {"user": "alice", "groups": ["ml-team-a", "system:authenticated"], "authMode": "token"}


# --- token mode: 401s --------------------------------------------------------------------------------

API_ENDPOINTS = [
    ("POST", "/api/job"), ("POST", "/api/v1/job"), ("POST", "/api/v1/jobs"), ("POST", "/api/job?dryRun=true"),
    ("GET", "/api/job"), ("GET", "/api/v1/jobs"), ("GET", "/api/v1/job/team-a"), ("GET", "/api/v1/job/team-a/x"),
    ("DELETE", "/api/job"), ("DELETE", "/api/v1/jobs"),
    ("GET", "/api/v1/projects"), ("GET", "/api/v1/version"), ("GET", "/api/v1/whoami"),
]
OPEN_ENDPOINTS = ["/healthz", "/readyz", "/metrics", "/api/openapi.json", "/api/docs", "/api/docs/init.js"]


@pytest.mark.parametrize(("method", "path"), API_ENDPOINTS)
@pytest.mark.parametrize("authorization", [None, "", "Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer a b", "bearer  ",
                                           "Bearer tok\u00e9n"])
def test_every_api_endpoint_needs_a_well_formed_bearer_token(token_client, cluster, method, path, authorization):
    headers = {"RA-USER": "john"} if authorization is None else {"Authorization": authorization, "RA-USER": "john"}
    body = [{"name": "x", "project": "team-a"}] if method == "DELETE" else {"job": SEED_JOB}
    response = token_client.open(path, method=method, headers=headers, json=body if method != "GET" else None)
    assert response.status_code == 401, response.json
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert ("invalid_request" in challenge) == bool((authorization or "").strip())
    assert "YWxpY2U6c2VjcmV0" not in response.get_data(as_text=True)
    assert job_objects(cluster) == []
    assert cluster.callers == []  # refused before any call to the cluster


@pytest.mark.parametrize(("method", "path"), API_ENDPOINTS)
def test_a_token_the_api_server_rejects_is_a_401(token_client, cluster, method, path):
    body = [{"name": "x", "project": "team-a"}] if method == "DELETE" else {"job": SEED_JOB}
    response = token_client.open(path, method=method, headers=bearer("garbage.token"),
                                 json=body if method != "GET" else None)
    assert response.status_code == 401, response.json
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert job_objects(cluster) == []


@pytest.mark.parametrize("path", OPEN_ENDPOINTS)
def test_health_metrics_and_docs_need_no_credentials(token_client, path):
    assert token_client.get(path).status_code == 200


def test_a_token_revoked_after_its_review_is_a_401_and_creates_nothing(token_client, cluster):
    assert post_job(token_client, {**SEED_JOB, "name": "first"}, bearer(ALICE)).status_code == 200
    cluster.revoke(ALICE)  # the review is cached, but every call still carries the token
    response = post_job(token_client, {**SEED_JOB, "name": "second"}, bearer(ALICE))
    assert response.status_code == 401, response.json
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert [obj["metadata"]["name"] for obj in job_objects(cluster)] == ["first"]


# --- token mode: the review cache -------------------------------------------------------------------


def test_a_cached_review_costs_no_api_call(token_client, cluster):
    for name in ("one", "two", "three"):
        assert post_job(token_client, {**SEED_JOB, "name": name}, bearer(ALICE)).status_code == 200
    assert len(calls(cluster, "POST", SSR)) == 1
    # Per token: bob's first request is reviewed once too.
    token_client.get("/api/v1/whoami", headers=bearer(BOB))
    token_client.get("/api/v1/whoami", headers=bearer(BOB))
    assert calls(cluster, "POST", SSR) == ["alice", "bob"]
    # After the first request a submit is exactly its creates: no review, no lookup.
    cluster.clear_requests()
    cluster.callers.clear()
    assert post_job(token_client, {**SEED_JOB, "name": "four"}, bearer(ALICE)).status_code == 200
    assert [(m, p) for m, p, _ in cluster.callers] == [("POST", RUNAIJOBS_A)]


def test_reviews_are_not_cached_past_auth_cache_seconds(cluster, tmp_path):
    client = make_app(cluster, tmp_path, auth_mode="token", auth_cache_seconds=0).test_client()
    for _ in range(2):
        assert client.get("/api/v1/whoami", headers=bearer(ALICE)).status_code == 200
    assert calls(cluster, "POST", SSR) == ["alice", "alice"]


def test_a_refused_token_is_remembered_briefly(token_client, cluster):
    for _ in range(3):
        assert token_client.get("/api/v1/whoami", headers=bearer("garbage.token")).status_code == 401
    assert len([p for m, p, _ in cluster.requests if p == SSR]) == 1


def test_a_cluster_outage_during_the_review_is_a_503_and_is_not_cached(token_client, cluster):
    cluster.refuse_connections()
    response = token_client.get("/api/v1/whoami", headers=bearer(ALICE))
    assert response.status_code == 503 and "Retry-After" in response.headers
    cluster.refuse_connections(False)
    assert token_client.get("/api/v1/whoami", headers=bearer(ALICE)).status_code == 200


# --- token mode: the token stays secret ----------------------------------------------------------------


def test_the_token_appears_in_no_log_line_error_metric_or_audit_record(cluster, tmp_path, caplog, capfd):
    app = make_app(cluster, tmp_path, auth_mode="token", log_level="DEBUG", log_format="text")
    client = app.test_client()
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "kubernetes", "runai_submit"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    secret_bob = BOB
    answers = [
        post_job(client, SEED_JOB, bearer(ALICE)),                                  # 200
        post_job(client, {**SEED_JOB, "project": "team-b"}, bearer(ALICE)),          # 403 from the API server
        post_job(client, SERVICE_JOB, bearer(secret_bob)),                            # 403
        client.get("/api/job", headers=bearer(ALICE)),
        client.get("/api/v1/whoami", headers=bearer(ALICE)),
        client.get("/api/v1/projects", headers=bearer(ALICE)),
        post_job(client, SEED_JOB, bearer(ALICE + "x")),                              # 401: rejected
        post_job(client, SEED_JOB, {"Authorization": f"Token {ALICE}"}),              # 401: malformed
    ]
    answers.append(client.get("/metrics"))
    assert [a.status_code for a in answers] == [200, 403, 403, 200, 200, 200, 401, 401, 200]
    assert any(r.name.startswith("urllib3") for r in caplog.records), "DEBUG logging of the HTTP client is on"
    captured = capfd.readouterr()
    for secret in (ALICE, secret_bob, ALICE.split(".")[1]):
        for record in caplog.records:
            assert secret not in record.getMessage(), record.name
            assert secret not in repr(vars(record)), record.name
        assert secret not in captured.out + captured.err
        for answer in answers:
            assert secret not in answer.get_data(as_text=True)
            assert secret not in str(answer.headers)


def test_caller_repr_hides_the_credentials(token_client, cluster):
    from runai_submit.identity import AUTHORIZATION, Caller

    caller = Caller(user="alice", mode="token", credentials=((AUTHORIZATION, f"Bearer {ALICE}"),), key="k")
    assert ALICE not in repr(caller) and "k" not in repr(caller).replace("token", "")


# --- one client, one pool ------------------------------------------------------------------------------


def test_every_identity_shares_one_api_client_and_one_pool(cluster, tmp_path):
    app = make_app(cluster, tmp_path, auth_mode="token")
    client = app.test_client()
    for token in (ALICE, BOB, ALICE, BOB):
        client.get("/api/v1/job/team-a", headers=bearer(token))
    state = app.extensions["runai_submit"]
    from runai_submit.identity import AUTHORIZATION, Caller

    bound = state.service_for(Caller("bob", mode="token", credentials=((AUTHORIZATION, f"Bearer {BOB}"),)))
    assert bound.cluster is not state.cluster
    assert bound.cluster.api is state.cluster.api
    assert len(state.cluster.api.rest_client.pool_manager.pools) == 1


# --- start-up checks -----------------------------------------------------------------------------------


def test_token_mode_refuses_a_client_certificate_kubeconfig(tmp_path):
    """The API server would take the certificate and ignore the caller's token (tests/test_auth_real.py)."""
    cert = tmp_path / "client.crt"
    cert.write_text("not read before a connection")
    key = tmp_path / "client.key"
    key.write_text("not read before a connection")
    kubeconfig = tmp_path / "cert-kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:9'}}}}]\n"
        f"users: [{{name: u, user: {{client-certificate: '{cert}', client-key: '{key}'}}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n")
    with pytest.raises(ConfigError, match="client certificate"):
        create_app({"backend": "kubeconfig", "kubeconfig": str(kubeconfig), "auth_mode": "token"})
    # The same configuration is fine where the service's own identity acts (impersonate) or in header mode.
    create_app({"backend": "kubeconfig", "kubeconfig": str(kubeconfig), "auth_mode": "impersonate"})


@pytest.mark.parametrize("mode", ["token", "impersonate"])
def test_identity_modes_need_a_cluster(tmp_path, mode):
    with pytest.raises(ConfigError, match=f"auth_mode {mode} needs a Kubernetes cluster"):
        create_app({"backend": "offline", "offline_dir": str(tmp_path), "auth_mode": mode})


def test_header_mode_against_a_cluster_warns_once_at_start(fake_api, tmp_path, caplog):
    make_app(fake_api, tmp_path)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "AUTH MODE header" in r.getMessage()]
    assert len(warnings) == 1 and "anyone who can reach this port" in warnings[0].getMessage()
    caplog.clear()
    make_app(fake_api, tmp_path, auth_mode="token")
    create_app({"backend": "offline", "offline_dir": str(tmp_path)})
    assert not [r for r in caplog.records if "AUTH MODE" in r.getMessage()]


# --- impersonate mode ----------------------------------------------------------------------------------


@pytest.fixture
def impersonating(fake_api):
    """The service may only impersonate (and discover projects); alice is bound by name in team-a."""
    fake_api.add_user(fake_api.token, SERVICE_ACCOUNT)
    fake_api.grant(user=SERVICE_ACCOUNT, verbs=["get", "list"], resources=["namespaces"])
    fake_api.grant(user=SERVICE_ACCOUNT, verbs=["impersonate"], resources=["users", "groups"])
    fake_api.grant(user="alice", verbs=JOB_VERBS, resources=JOB_RESOURCES, namespace=TEAM_A)
    fake_api.grant(group="science-devs", verbs=JOB_VERBS, resources=JOB_RESOURCES, namespace=TEAM_B)
    return fake_api


@pytest.fixture
def impersonate_client(impersonating, tmp_path):
    return make_app(impersonating, tmp_path, auth_mode="impersonate").test_client()


def test_impersonate_mode_acts_as_ra_user(impersonate_client, impersonating):
    created = post_job(impersonate_client, SEED_JOB, {"RA-USER": "alice"})
    assert created.status_code == 200, created.json
    name = created.json["name"]
    assert impersonate_client.get(f"/api/v1/job/team-a/{name}", headers={"RA-USER": "alice"}).status_code == 200
    listed = impersonate_client.get("/api/job", headers={"RA-USER": "alice"}).json["data"]
    assert [(job["name"], job["user"]) for job in listed] == [(name, "alice")]
    deleted = impersonate_client.delete("/api/job", json=[{"name": name, "project": "team-a"}],
                                        headers={"RA-USER": "alice"})
    assert deleted.json[0]["ok"] is True, deleted.json
    assert set(calls(impersonating, "POST", RUNAIJOBS_A)) == {"alice"}
    assert set(calls(impersonating, "DELETE", RUNAIJOBS_A)) == {"alice"}
    assert job_objects(impersonating) == []


def test_impersonate_mode_refuses_as_the_cluster_decides(impersonate_client, impersonating):
    other = post_job(impersonate_client, {**SEED_JOB, "project": "team-b"}, {"RA-USER": "alice"})
    assert other.status_code == 403 and 'User "alice" cannot create' in other.json["message"]
    nobody = post_job(impersonate_client, SEED_JOB, {"RA-USER": "bob"})
    assert nobody.status_code == 403 and 'User "bob" cannot create' in nobody.json["message"]
    assert impersonate_client.get("/api/v1/projects", headers={"RA-USER": "bob"}).json == {"data": []}
    assert [p["name"] for p in impersonate_client.get("/api/v1/projects", headers={"RA-USER": "alice"}).json[
        "data"]] == ["team-a"]
    assert job_objects(impersonating) == []


def test_impersonate_mode_sends_each_group(impersonate_client, impersonating):
    headers = {"RA-USER": "dana", "RA-GROUPS": " science-devs , ,other,science-devs"}
    created = post_job(impersonate_client, {**SEED_JOB, "project": "team-b"}, headers)
    assert created.status_code == 200, created.json
    whoami = impersonate_client.get("/api/v1/whoami", headers=headers).json
    assert whoami == {"user": "dana", "groups": ["science-devs", "other", "system:authenticated"],
                      "authMode": "impersonate"}


def test_impersonate_mode_acts_as_a_utf8_user_and_groups_as_written(impersonate_client, impersonating):
    """Header values reach the app as latin-1 text, one character per byte (PEP 3333): the test client is
    given them so, as gunicorn would hand them over."""
    def as_wsgi(text: str) -> str:
        return text.encode("utf-8").decode("latin-1")
    headers = {"RA-USER": as_wsgi("Jöhn 张"), "RA-GROUPS": as_wsgi("ml-ünits, science-devs")}
    whoami = impersonate_client.get("/api/v1/whoami", headers=headers)
    assert whoami.status_code == 200, whoami.json
    assert whoami.json == {"user": "Jöhn 张", "groups": ["ml-ünits", "science-devs", "system:authenticated"],
                           "authMode": "impersonate"}


@pytest.mark.parametrize(("method", "path"), API_ENDPOINTS)
def test_impersonate_mode_needs_ra_user_on_every_api_endpoint(impersonate_client, impersonating, method, path):
    body = [{"name": "x", "project": "team-a"}] if method == "DELETE" else {"job": SEED_JOB}
    response = impersonate_client.open(path, method=method, json=body if method != "GET" else None)
    assert response.status_code == 401 and "RA-USER" in response.json["message"]
    assert impersonating.callers == []


def test_impersonation_the_service_may_not_do_is_a_403(fake_api, tmp_path):
    fake_api.add_user(fake_api.token, SERVICE_ACCOUNT)
    fake_api.grant(user=SERVICE_ACCOUNT, verbs=["get", "list"], resources=["namespaces"])
    client = make_app(fake_api, tmp_path, auth_mode="impersonate").test_client()
    response = client.get("/api/v1/whoami", headers={"RA-USER": "alice"})
    assert response.status_code == 403
    assert f'User "{SERVICE_ACCOUNT}" cannot impersonate resource "users"' in response.json["message"]


# --- header mode (the default) -----------------------------------------------------------------------


def test_header_mode_whoami_is_ra_user_on_trust(client):
    assert client.get("/api/v1/whoami", headers={"RA-USER": "john"}).json == {
        "user": "john", "groups": [], "authMode": "header"}
    assert client.get("/api/v1/whoami").status_code == 401


def test_header_mode_acts_with_the_services_own_identity(client, fake_api):
    assert post_job(client, SEED_JOB, {"RA-USER": "john"}).status_code == 200
    assert set(calls(fake_api, "POST", RUNAIJOBS_A)) == {"system:admin"}


# --- OpenAPI: the active mode's security scheme ---------------------------------------------------------


@pytest.mark.parametrize(("mode", "scheme"), [("token", "bearerToken"), ("impersonate", "raUser"),
                                              ("header", "raUser")])
def test_openapi_declares_the_active_modes_security(cluster, tmp_path, mode, scheme):
    document = make_app(cluster, tmp_path, auth_mode=mode).test_client().get("/api/openapi.json").json
    schemes = document["components"]["securitySchemes"]
    assert scheme in schemes
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/api/"):
                assert any(scheme in requirement for requirement in operation["security"]), (method, path)
            else:
                assert operation["security"] == [], (method, path)
    if mode == "token":
        assert schemes["bearerToken"] == {**schemes["bearerToken"], "type": "http", "scheme": "bearer"}
        submit_headers = {p["name"]: p for p in document["paths"]["/api/job"]["post"]["parameters"]
                          if p["in"] == "header"}
        assert submit_headers["RA-USER"]["required"] is False


def test_token_mode_documents_what_the_tokens_review_answers_when_the_cluster_fails(token_client, cluster):
    """Every request's token is reviewed before anything else (a SelfSubjectReview): an API server that is down
    makes any operation a 503, and the document must list it (no catch-all answer), e.g. for DELETE."""
    document = token_client.get("/api/openapi.json").json
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/api/") and operation["security"]:
                assert {"502", "503"} <= operation["responses"].keys(), (method, path)
                assert "Retry-After" in operation["responses"]["503"]["headers"], (method, path)
    assert "503" not in document["paths"]["/healthz"]["get"]["responses"]

    cluster.refuse_connections(True)
    deleted = token_client.delete("/api/job", json=[{"name": "a", "project": "team-a"}],
                                  headers={"Authorization": f"Bearer {ALICE}"})
    assert deleted.status_code == 503 and deleted.headers["Retry-After"]
    assert "503" in document["paths"]["/api/job"]["delete"]["responses"]


# --- the review cache itself (a counting review and a clock of our own, injected) --------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting_review(outcomes: dict[str, object]):
    """A review that answers from ``outcomes`` (token -> Identity or exception) and counts its calls."""
    from runai_submit.identity import AUTHORIZATION

    seen: list[str] = []

    def review(caller):
        token = dict(caller.credentials)[AUTHORIZATION].removeprefix("Bearer ")
        seen.append(token)
        outcome = outcomes[token]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return review, seen


def test_reviews_are_kept_for_the_ttl_and_refusals_briefly():
    from runai_submit.identity import REFUSAL_SECONDS, Authenticator, Identity, TokenRejected

    clock = Clock()
    review, seen = counting_review({"good": Identity("alice", ("g",)), "bad": TokenRejected()})
    authenticator = Authenticator("token", review, ttl=60, clock=clock)
    good, bad = {"Authorization": "Bearer good"}, {"Authorization": "Bearer bad"}

    assert authenticator.caller(good).user == "alice"
    for _ in range(3):
        with pytest.raises(TokenRejected):
            authenticator.caller(bad)
    assert seen == ["good", "bad"]
    clock.now += REFUSAL_SECONDS + 0.1
    assert authenticator.caller(good).groups == ("g",)
    with pytest.raises(TokenRejected):
        authenticator.caller(bad)
    assert seen == ["good", "bad", "bad"]  # the refusal expired, the identity did not
    clock.now += 60
    authenticator.caller(good)
    assert seen == ["good", "bad", "bad", "good"]


def test_the_review_cache_is_bounded_and_keyed_by_digest():
    from runai_submit.identity import Authenticator, Identity, digest

    tokens = [f"token-{i}" for i in range(5)]
    review, seen = counting_review({token: Identity(token, ()) for token in tokens})
    authenticator = Authenticator("token", review, ttl=60, maxsize=3)
    for token in tokens:
        authenticator.caller({"Authorization": f"Bearer {token}"})
    keys = list(authenticator._cache.keys())
    assert len(keys) == 3
    assert set(keys) <= {digest(token) for token in tokens} and not set(keys) & set(tokens)
    authenticator.caller({"Authorization": "Bearer token-0"})  # evicted: reviewed again
    assert seen.count("token-0") == 2


def test_a_review_that_fails_for_another_reason_is_not_cached():
    from runai_submit.errors import ClusterUnavailable
    from runai_submit.identity import Authenticator

    review, seen = counting_review({"t": ClusterUnavailable("down")})
    authenticator = Authenticator("token", review, ttl=60)
    for _ in range(2):
        with pytest.raises(ClusterUnavailable):
            authenticator.caller({"Authorization": "Bearer t"})
    assert seen == ["t", "t"]
