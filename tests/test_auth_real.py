"""Auth modes against a real control plane: the cluster's own RBAC decides (issue 9).

Set-up, once for the module: projects A and B; two ServiceAccounts with TokenRequest tokens, "alice" with a
Role and RoleBinding in A only (the workload kind, Services, PVCs, Ingresses, pods and events) and "bob" with
nothing. The same Role is bound by name to the plain users "alice" (and not "bob") for impersonate mode. The
service itself runs as ServiceAccounts holding exactly the rights deploy/ gives it: the base's (token mode) and
the impersonate overlay's, read from the rendered manifests.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest

from runai_submit.errors import ConfigError
from tests.conftest import SEED_JOB, make_real_app
from tests.test_deploy import DEPLOY, MODE_OVERLAYS, _for_callers, of_kind, render

pytestmark = pytest.mark.real

RBAC = "/apis/rbac.authorization.k8s.io/v1"
JOB_RULES = [
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "delete"]},
    {"apiGroups": ["run.ai"], "resources": ["runaijobs"], "verbs": ["create", "get", "list", "delete"]},
    {"apiGroups": [""], "resources": ["services", "persistentvolumeclaims"], "verbs": ["create", "get", "list", "delete"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["create", "get", "list", "delete"]},
    {"apiGroups": [""], "resources": ["pods", "pods/log", "events"], "verbs": ["get", "list"]},
]
# The seed job plus a Service: two kinds the Role must cover.
JOB = {**SEED_JOB, "ports": [8080], "serviceType": "ClusterIP"}


@dataclass
class World:
    a: str                    # project names and their namespaces
    ns_a: str
    b: str
    ns_b: str
    alice: str                # tokens
    bob: str
    alice_user: str           # the ServiceAccounts' user names
    token_kubeconfig: str     # the service, with the base's rights (token mode)
    impersonate_kubeconfig: str  # the service, with the impersonate overlay's rights
    users: tuple[str, str]    # plain user names for impersonate mode: (bound in A, bound nowhere)


def _service_account_rules(folder) -> list[dict]:
    """The rules deploy/ grants the service account in ``folder`` (every non-researcher ClusterRole bound)."""
    objects = render(folder)
    bound = {b["roleRef"]["name"] for b in of_kind(objects, "ClusterRoleBinding") if not _for_callers(b)}
    return [rule for role in of_kind(objects, "ClusterRole") if role["metadata"]["name"] in bound
            for rule in role["rules"]]


@pytest.fixture(scope="module")
def world(real_cluster, tmp_path_factory):
    tag = uuid.uuid4().hex[:6]
    a, b = f"auth-a-{tag}", f"auth-b-{tag}"
    ns_a = real_cluster.create_namespace(f"runai-{a}", {"runai/queue": a,
                                                        "pod-security.kubernetes.io/enforce": "baseline"})
    ns_b = real_cluster.create_namespace(f"runai-{b}", {"runai/queue": b})
    home = real_cluster.create_namespace(f"auth-users-{tag}")
    alice = real_cluster.service_account_token(home, "alice")
    bob = real_cluster.service_account_token(home, "bob")
    alice_user, users = f"system:serviceaccount:{home}:alice", (f"alice-{tag}", f"bob-{tag}")

    real_cluster.create(f"{RBAC}/namespaces/{ns_a}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "researcher"},
        "rules": JOB_RULES})
    real_cluster.create(f"{RBAC}/namespaces/{ns_a}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "researcher"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "researcher"},
        "subjects": [{"kind": "ServiceAccount", "name": "alice", "namespace": home},
                     {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": users[0]}]})

    cluster_wide = []
    kubeconfigs = {}
    folder = tmp_path_factory.mktemp("auth-kubeconfigs")
    for mode, source in (("token", DEPLOY / "base"), ("impersonate", MODE_OVERLAYS["impersonate"])):
        name = f"runai-submit-{mode}-{tag}"
        role = real_cluster.create(f"{RBAC}/clusterroles", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
            "rules": _service_account_rules(source)})
        binding = real_cluster.create(f"{RBAC}/clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": f"service-{mode}", "namespace": home}]})
        cluster_wide += [f"{RBAC}/clusterroles/{role['metadata']['name']}",
                         f"{RBAC}/clusterrolebindings/{binding['metadata']['name']}"]
        token = real_cluster.service_account_token(home, f"service-{mode}")
        kubeconfigs[mode] = real_cluster.token_kubeconfig(folder / f"{mode}.yaml", token)
    yield World(a, ns_a, b, ns_b, alice, bob, alice_user, kubeconfigs["token"], kubeconfigs["impersonate"], users)
    for path in cluster_wide:
        real_cluster.delete(path)
    for namespace in (ns_a, ns_b, home):
        real_cluster.delete_namespace(namespace)


def objects_in(real_cluster, namespace: str) -> list[str]:
    """Every Job and Service in ``namespace`` (what a submit creates on this cluster), as admin."""
    found = []
    for path, kind in ((f"/apis/batch/v1/namespaces/{namespace}/jobs", "Job"),
                       (f"/api/v1/namespaces/{namespace}/services", "Service")):
        found += [f"{kind} {item['metadata']['name']}" for item in real_cluster.get(path)["items"]]
    return found


# --- token mode ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_client(real_cluster, world):
    return make_real_app(real_cluster, kubeconfig=world.token_kubeconfig, auth_mode="token").test_client()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_token_mode_the_first_user_submits_lists_gets_and_deletes_in_a(real_cluster, world, token_client):
    created = token_client.post("/api/job", json={"job": {**JOB, "project": world.a}}, headers=bearer(world.alice))
    assert created.status_code == 200, created.json
    name = created.json["name"]
    stored = real_cluster.get(f"/apis/batch/v1/namespaces/{world.ns_a}/jobs/{name}")
    assert stored["metadata"]["annotations"]["user"] == world.alice_user
    assert sorted(objects_in(real_cluster, world.ns_a)) == [f"Job {name}", f"Service {name}"]

    listed = token_client.get(f"/api/job?project={world.a}", headers=bearer(world.alice))
    assert listed.status_code == 200 and [j["name"] for j in listed.json["data"]] == [name], listed.json
    assert listed.json["data"][0]["user"] == world.alice_user
    everywhere = token_client.get("/api/job", headers=bearer(world.alice))  # no cluster-wide right: per project
    assert everywhere.status_code == 200 and [j["name"] for j in everywhere.json["data"]] == [name]
    got = token_client.get(f"/api/v1/job/{world.a}/{name}", headers=bearer(world.alice))
    assert got.status_code == 200 and got.json["name"] == name

    deleted = token_client.delete("/api/job", json=[{"name": name, "project": world.a}], headers=bearer(world.alice))
    assert deleted.status_code == 200 and deleted.json[0]["ok"] is True, deleted.json
    assert not real_cluster.exists(f"/apis/batch/v1/namespaces/{world.ns_a}/jobs/{name}")


def test_token_mode_the_first_user_gets_403_in_b_and_nothing_is_created(real_cluster, world, token_client):
    response = token_client.post("/api/job", json={"job": {**JOB, "project": world.b}}, headers=bearer(world.alice))
    assert response.status_code == 403, response.json
    assert (f'User "{world.alice_user}" cannot create resource "jobs" in API group "batch" in the namespace '
            f'"{world.ns_b}"') in response.json["message"]
    assert objects_in(real_cluster, world.ns_b) == []
    assert token_client.get(f"/api/v1/job/{world.b}", headers=bearer(world.alice)).status_code == 403


def test_token_mode_the_second_user_gets_403_everywhere(real_cluster, world, token_client):
    for project in (world.a, world.b):
        response = token_client.post("/api/job", json={"job": {**JOB, "project": project}}, headers=bearer(world.bob))
        assert response.status_code == 403, response.json
        assert "cannot create resource" in response.json["message"]
        assert token_client.get(f"/api/v1/job/{project}", headers=bearer(world.bob)).status_code == 403
        assert token_client.get(f"/api/v1/job/{project}/x", headers=bearer(world.bob)).status_code == 403
        deleted = token_client.delete("/api/job", json=[{"name": "x", "project": project}], headers=bearer(world.bob))
        assert deleted.json[0]["error"]["status"] == 403
    assert objects_in(real_cluster, world.ns_a) == objects_in(real_cluster, world.ns_b) == []


def test_token_mode_pod_security_is_read_with_the_services_rights(real_cluster, world, token_client):
    """alice may not read namespaces; the project's Pod Security level is still known at submit."""
    response = token_client.post("/api/job", json={"job": {**JOB, "project": world.a, "hostNetwork": True}},
                                 headers=bearer(world.alice))
    assert response.status_code == 422, response.json
    assert [e["field"] for e in response.json["errors"]] == ["/job/hostNetwork"]
    assert objects_in(real_cluster, world.ns_a) == []


def test_token_mode_a_garbage_token_is_a_401(world, token_client):
    response = token_client.post("/api/job", json={"job": {**JOB, "project": world.a}}, headers=bearer("garbage"))
    assert response.status_code == 401, response.json
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert token_client.get("/api/v1/projects", headers=bearer("garbage")).status_code == 401


def test_token_mode_projects_and_whoami_differ_per_user(world, token_client):
    alice = token_client.get("/api/v1/projects", headers=bearer(world.alice)).json["data"]
    assert [p["name"] for p in alice] == [world.a]
    assert token_client.get("/api/v1/projects", headers=bearer(world.bob)).json == {"data": []}
    whoami = token_client.get("/api/v1/whoami", headers=bearer(world.alice)).json
    assert whoami["user"] == world.alice_user and "system:authenticated" in whoami["groups"]


def test_a_client_certificate_wins_over_the_bearer_token(real_cluster, world):
    """Why token mode refuses a certificate kubeconfig: the API server would ignore the caller's token."""
    _, review, _ = real_cluster.request(
        "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", headers=bearer(world.bob),
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, auth=False)
    assert review["status"]["userInfo"]["username"] != world.alice_user.rpartition(":")[0] + ":bob"
    assert "system:masters" in review["status"]["userInfo"]["groups"]  # the admin certificate's identity
    with pytest.raises(ConfigError, match="client certificate"):
        make_real_app(real_cluster, auth_mode="token")


# --- impersonate mode ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def impersonate_client(real_cluster, world):
    return make_real_app(real_cluster, kubeconfig=world.impersonate_kubeconfig,
                         auth_mode="impersonate").test_client()


def test_impersonate_mode_a_user_bound_by_name_submits_lists_gets_and_deletes(real_cluster, world,
                                                                             impersonate_client):
    as_user = {"RA-USER": world.users[0]}
    created = impersonate_client.post("/api/job", json={"job": {**JOB, "project": world.a}}, headers=as_user)
    assert created.status_code == 200, created.json
    name = created.json["name"]
    stored = real_cluster.get(f"/apis/batch/v1/namespaces/{world.ns_a}/jobs/{name}")
    assert stored["metadata"]["annotations"]["user"] == world.users[0]
    listed = impersonate_client.get(f"/api/job?project={world.a}", headers=as_user).json["data"]
    assert [(j["name"], j["user"]) for j in listed] == [(name, world.users[0])]
    assert impersonate_client.get(f"/api/v1/job/{world.a}/{name}", headers=as_user).status_code == 200
    deleted = impersonate_client.delete("/api/job", json=[{"name": name, "project": world.a}], headers=as_user)
    assert deleted.json[0]["ok"] is True, deleted.json
    assert not real_cluster.exists(f"/apis/batch/v1/namespaces/{world.ns_a}/jobs/{name}")


def test_impersonate_mode_refusals_are_the_clusters(real_cluster, world, impersonate_client):
    alice, bob = ({"RA-USER": user} for user in world.users)
    other = impersonate_client.post("/api/job", json={"job": {**JOB, "project": world.b}}, headers=alice)
    assert other.status_code == 403 and f'User "{world.users[0]}" cannot create' in other.json["message"]
    for project in (world.a, world.b):
        refused = impersonate_client.post("/api/job", json={"job": {**JOB, "project": project}}, headers=bob)
        assert refused.status_code == 403 and f'User "{world.users[1]}" cannot create' in refused.json["message"]
        assert impersonate_client.get(f"/api/v1/job/{project}", headers=bob).status_code == 403
    assert objects_in(real_cluster, world.ns_a) == objects_in(real_cluster, world.ns_b) == []
    assert [p["name"] for p in impersonate_client.get("/api/v1/projects", headers=alice).json["data"]] == [world.a]
    assert impersonate_client.get("/api/v1/projects", headers=bob).json == {"data": []}
    assert impersonate_client.get("/api/v1/projects").status_code == 401


def test_impersonate_mode_whoami_is_what_the_cluster_sees(world, impersonate_client):
    response = impersonate_client.get("/api/v1/whoami", headers={"RA-USER": world.users[1], "RA-GROUPS": "g1,g2"})
    assert response.json == {"user": world.users[1], "groups": ["g1", "g2", "system:authenticated"],
                             "authMode": "impersonate"}


def test_impersonate_mode_a_utf8_user_and_group_reach_the_cluster_as_written(world, impersonate_client):
    """Header values reach the app as latin-1 text, one character per byte (PEP 3333, as gunicorn hands them
    over); the cluster reads Impersonate-* bytes as UTF-8."""
    def as_wsgi(text: str) -> str:
        return text.encode("utf-8").decode("latin-1")
    response = impersonate_client.get("/api/v1/whoami", headers={"RA-USER": as_wsgi("Jöhn 张"),
                                                                 "RA-GROUPS": as_wsgi("ml-ünits")})
    assert response.status_code == 200, response.json
    assert response.json == {"user": "Jöhn 张", "groups": ["ml-ünits", "system:authenticated"],
                             "authMode": "impersonate"}


def test_impersonating_needs_the_overlays_right(real_cluster, world):
    """The base's service account (token mode rights) may not impersonate: the cluster says 403."""
    client = make_real_app(real_cluster, kubeconfig=world.token_kubeconfig, auth_mode="impersonate").test_client()
    response = client.get("/api/v1/whoami", headers={"RA-USER": world.users[0]})
    assert response.status_code == 403 and 'cannot impersonate resource "users"' in response.json["message"]


# --- the fake API server answers as the real one does (tests/fake_apiserver.py, identities) -----------------


def _call(api, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = api.param_serialize(method=method, resource_path=path, body=body, auth_settings=["BearerToken"],
                                  header_params={"Accept": "application/json", "Content-Type": "application/json",
                                                 **(headers or {})})
    response = api.call_api(*request, _request_timeout=(5, 30))
    return response.status, json.loads(response.read())


def test_the_fake_answers_identity_calls_like_the_real_api_server(real_cluster, world, fake_api, tmp_path):
    from tests.kube_kit import _client

    bob_user = world.alice_user.rpartition(":")[0] + ":bob"
    real = _client(real_cluster.token_kubeconfig(tmp_path / "bob.yaml", world.bob))
    fake_api.add_namespace(world.ns_a)
    fake_api.add_user(fake_api.token, bob_user, ["system:serviceaccounts"])
    fake = _client(fake_api.write_kubeconfig(tmp_path / "fake.yaml"))
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}}
    cases = [
        ("POST", f"/apis/batch/v1/namespaces/{world.ns_a}/jobs", job, None),
        ("GET", f"/apis/batch/v1/namespaces/{world.ns_a}/jobs/x", None, None),
        ("GET", "/api/v1/namespaces", None, None),
        ("GET", f"/api/v1/namespaces/{world.ns_a}/services", None, {"Impersonate-User": "somebody"}),
        ("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
         {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, None),
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
         {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
          "spec": {"resourceAttributes": {"namespace": world.ns_a, "verb": "create", "group": "batch",
                                          "resource": "jobs"}}}, None),
    ]
    for method, path, body, headers in cases:
        real_status, real_body = _call(real, method, path, body, headers)
        fake_status, fake_body = _call(fake, method, path, body, headers)
        assert fake_status == real_status, (path, fake_body, real_body)
        if real_body.get("kind") == "Status":
            keep = ("kind", "status", "message", "reason", "details", "code")
            assert {k: fake_body.get(k) for k in keep} == {k: real_body.get(k) for k in keep}, path
        elif real_body["kind"] == "SelfSubjectReview":
            assert fake_body["status"]["userInfo"]["username"] == real_body["status"]["userInfo"]["username"]
        else:
            assert fake_body["status"] == real_body["status"], path
