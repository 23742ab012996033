"""Pod Security at submit, against the fake API server (issue 10).

The namespace's ``pod-security.kubernetes.io/enforce`` label decides: ``baseline`` and ``restricted`` refuse
host namespaces and host paths (one error per field, nothing created); ``restricted`` also renders a pod
the level admits; the API server's ``Warning`` headers reach the caller. The fake's Pod Security warnings
are checked here against texts taken from a real v1.28 API server, and in test_real_podsecurity.py
against the real server itself (PSA_CASES is shared).
"""
from __future__ import annotations

import copy
import http.client
import json

import pytest

from tests.conftest import SEED_JOB, make_app, submit
from tests.fake_apiserver import FakeApiServer

ENFORCE = "pod-security.kubernetes.io/enforce"
WARN = "pod-security.kubernetes.io/warn"
# project -> namespace labels; "conv" is found by the naming convention only (no runai/queue label).
NAMESPACES = {
    "base": {"runai/queue": "base", ENFORCE: "baseline"},
    "strict": {"runai/queue": "strict", ENFORCE: "restricted"},
    "open": {"runai/queue": "open", ENFORCE: "privileged"},
    "plain": {"runai/queue": "plain"},
    "warned": {"runai/queue": "warned", WARN: "restricted"},
    "conv": {ENFORCE: "baseline"},
}
RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
HOSTILE = {"hostNetwork": True, "hostIpc": True, "volume": {"/raid/a": "/a", "/raid/b": "/b"},
           "volumes": ["/scratch:/scratch"]}


@pytest.fixture(scope="module")
def psa_servers():
    """Servers of their own: namespaces added here must not show up in other tests' project lists."""
    with FakeApiServer(serve_runai=False) as batch, FakeApiServer(serve_runai=True) as runai:
        for server in (batch, runai):
            for project, labels in NAMESPACES.items():
                server.add_namespace(f"runai-{project}", labels)
        yield batch, runai


def _reset_around(server: FakeApiServer):
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def batch_server(psa_servers):
    yield from _reset_around(psa_servers[0])


@pytest.fixture
def runai_server(psa_servers):
    yield from _reset_around(psa_servers[1])


@pytest.fixture
def client(batch_server, tmp_path):
    return make_app(batch_server, tmp_path).test_client()


def job(project: str, **fields) -> dict:
    return {**SEED_JOB, "project": project, **fields}


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


# --- baseline and restricted refuse what they would refuse on the pods ---------------------------------


@pytest.mark.parametrize(("project", "level"), [("base", "baseline"), ("strict", "restricted"),
                                                ("conv", "baseline")])
def test_host_namespaces_and_host_paths_are_refused_one_error_per_field(client, batch_server, project, level):
    response = submit(client, job(project, **HOSTILE))

    enforces = f'namespace runai-{project} enforces Pod Security "{level}"'
    assert response.status_code == 422, response.json
    assert response.json["errors"] == [
        {"field": "/job/hostNetwork", "message": f"{enforces}; host namespaces are not allowed"},
        {"field": "/job/hostIpc", "message": f"{enforces}; host namespaces are not allowed"},
        {"field": "/job/volume/~1raid~1a", "message": f"{enforces}; hostPath volumes are not allowed"},
        {"field": "/job/volume/~1raid~1b", "message": f"{enforces}; hostPath volumes are not allowed"},
        {"field": "/job/volumes/0", "message": f"{enforces}; hostPath volumes are not allowed"},
    ]
    assert batch_server.objects("Job") == []
    assert not [r for r in batch_server.requests if r[0] == "POST"]  # not even a dry run was sent


def test_pod_security_errors_come_with_the_schema_errors(client):
    response = submit(client, job("base", hostNetwork=True, gpu=-1))
    assert [(e["field"], e["message"]) for e in response.json["errors"]] == [
        ("/job/gpu", "must be 0 or more"),
        ("/job/hostNetwork", 'namespace runai-base enforces Pod Security "baseline"; host namespaces are not allowed'),
    ]


@pytest.mark.parametrize("project", ["open", "plain"])
def test_privileged_or_unlabelled_namespaces_change_nothing(client, batch_server, project):
    response = submit(client, job(project, **HOSTILE))

    assert response.status_code == 200, response.json
    (workload,) = batch_server.objects("Job")
    spec = pod_spec(workload)
    assert spec["hostNetwork"] is True and spec["hostIPC"] is True
    # (the API server itself defaults the pod's securityContext to {})
    assert not spec.get("securityContext") and "securityContext" not in spec["containers"][0]


def test_baseline_renders_the_pod_unchanged(client, batch_server):
    response = submit(client, job("base"))
    assert response.status_code == 200, response.json
    (workload,) = batch_server.objects("Job")
    assert not pod_spec(workload).get("securityContext")
    assert "securityContext" not in pod_spec(workload)["containers"][0]


# --- restricted: a pod the level admits ---------------------------------------------------------------


def test_restricted_renders_the_security_context_the_level_asks_for(client, batch_server):
    response = submit(client, job("strict"), query="?dryRun=true")

    assert response.status_code == 200, response.json
    (manifest,) = response.json["manifests"]
    name = response.json["name"]
    assert pod_spec(manifest) == {
        "schedulerName": "runai-scheduler",
        "restartPolicy": "Never",
        "containers": [{"name": name, "image": SEED_JOB["image"], "imagePullPolicy": "Always",
                        "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        "securityContext": RESTRICTED_CONTAINER}],
        "securityContext": RESTRICTED_POD,
    }
    assert response.json["warnings"] == []  # the fake's Pod Security finds nothing to warn about
    assert batch_server.objects("Job") == []


def test_restricted_keeps_what_the_job_asked_of_the_container(client, batch_server):
    response = submit(client, job("strict", preventPrivilegeEscalation=True, largeShm=True))

    assert response.status_code == 200, response.json
    (workload,) = batch_server.objects("Job")
    spec = pod_spec(workload)
    assert spec["containers"][0]["securityContext"] == RESTRICTED_CONTAINER
    assert spec["securityContext"] == RESTRICTED_POD
    assert spec["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]


# --- the namespace's labels: with the project map, or one cached read --------------------------------


def namespace_reads(server: FakeApiServer, namespace: str) -> int:
    return len([r for r in server.requests if r[:2] == ("GET", f"/api/v1/namespaces/{namespace}")])


def test_labels_of_labelled_namespaces_come_with_the_project_map(client, batch_server):
    for _ in range(3):
        assert submit(client, job("base", hostNetwork=True)).status_code == 422
    assert namespace_reads(batch_server, "runai-base") == 0
    assert len([r for r in batch_server.requests if r[:2] == ("GET", "/api/v1/namespaces")]) == 1


def test_a_conventional_namespace_is_read_once_per_cache_period(batch_server, tmp_path):
    client = make_app(batch_server, tmp_path, namespace_cache_seconds=300).test_client()
    for _ in range(3):
        assert submit(client, job("conv", hostNetwork=True)).status_code == 422
    assert namespace_reads(batch_server, "runai-conv") == 1


def test_a_level_set_later_applies_once_the_cache_expires(tmp_path):
    with FakeApiServer(serve_runai=False) as server:
        server.add_namespace("runai-late", {"runai/queue": "late"})
        client = make_app(server, tmp_path, namespace_cache_seconds=0).test_client()
        assert submit(client, job("late", hostNetwork=True)).status_code == 200
        server.add_namespace("runai-late", {ENFORCE: "baseline"})
        response = submit(client, job("late", hostNetwork=True))
        assert response.status_code == 422, response.json


def test_a_missing_conventional_namespace_is_still_a_404(client):
    response = submit(client, job("nowhere", hostNetwork=True))
    assert response.status_code == 404, response.json
    assert response.json["errors"] == [{"field": "/job/project", "message": "unknown project 'nowhere'"}]


# --- the API server's warnings reach the caller --------------------------------------------------------

SEED_WARNING = (
    'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "{name}" must '
    'set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "{name}" must '
    'set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "{name}" must set '
    'securityContext.runAsNonRoot=true), seccompProfile (pod or container "{name}" must set '
    'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
)


@pytest.mark.parametrize("query", ["", "?dryRun=true"])
def test_warnings_of_the_api_server_are_passed_through(client, query):
    response = submit(client, job("warned"), query=query)

    assert response.status_code == 200, response.json
    assert response.json["warnings"] == [SEED_WARNING.format(name=response.json["name"])]


def test_no_warning_means_an_empty_list(client):
    response = submit(client, job("plain"))
    assert response.status_code == 200, response.json
    assert response.json["warnings"] == []
    assert response.json["defaulted"] == []


def test_a_runai_job_gets_no_pod_security_warning(runai_server, tmp_path):
    """Pod Security Admission reads the pod templates of built-in workloads only, not custom resources."""
    client = make_app(runai_server, tmp_path).test_client()
    response = submit(client, job("warned"))
    assert response.status_code == 200, response.json
    assert response.json["kind"] == "RunaiJob"
    assert response.json["warnings"] == []


# --- the fake's Pod Security warnings, against texts of a real v1.28 API server -------------------------

C = {"name": "c", "image": "busybox"}
D = {"name": "d", "image": "busybox"}
SAFE_C = {**C, "securityContext": RESTRICTED_CONTAINER}
# (case id, namespace labels, pod spec, the Warning text of a real v1.28 kube-apiserver or None)
PSA_CASES = [
    ("host-network-restricted", {WARN: "restricted"}, {"hostNetwork": True, "containers": [C]},
     'would violate PodSecurity "restricted:latest": host namespaces (hostNetwork=true), allowPrivilegeEscalation '
     '!= false (container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities '
     '(container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container '
     '"c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set '
     'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'),
    ("host-network-enforce-baseline-warns-too", {ENFORCE: "baseline"}, {"hostNetwork": True, "containers": [C]},
     'would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)'),
    ("everything-restricted", {WARN: "restricted"}, {
        "hostNetwork": True, "hostIPC": True, "hostPID": True,
        "volumes": [{"name": "a", "hostPath": {"path": "/x"}}, {"name": "b", "hostPath": {"path": "/y"}},
                    {"name": "e", "emptyDir": {}}],
        "containers": [{**C, "ports": [{"containerPort": 80, "hostPort": 80}],
                        "securityContext": {"privileged": True}}, D]},
     'would violate PodSecurity "restricted:latest": host namespaces (hostNetwork=true, hostPID=true, '
     'hostIPC=true), hostPort (container "c" uses hostPort 80), privileged (container "c" must not set '
     'securityContext.privileged=true), allowPrivilegeEscalation != false (containers "c", "d" must set '
     'securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (containers "c", "d" must set '
     'securityContext.capabilities.drop=["ALL"]), restricted volume types (volumes "a", "b" use restricted volume '
     'type "hostPath"), runAsNonRoot != true (pod or containers "c", "d" must set securityContext.runAsNonRoot=true), '
     'seccompProfile (pod or containers "c", "d" must set securityContext.seccompProfile.type to "RuntimeDefault" '
     'or "Localhost")'),
    ("everything-baseline", {ENFORCE: "baseline"}, {
        "hostNetwork": True, "hostIPC": True, "hostPID": True,
        "volumes": [{"name": "a", "hostPath": {"path": "/x"}}, {"name": "b", "hostPath": {"path": "/y"}},
                    {"name": "e", "emptyDir": {}}],
        "containers": [{**C, "ports": [{"containerPort": 80, "hostPort": 80}],
                        "securityContext": {"privileged": True}}, D]},
     'would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true, hostPID=true, hostIPC=true), '
     'hostPath volumes (volumes "a", "b"), hostPort (container "c" uses hostPort 80), privileged (container "c" '
     'must not set securityContext.privileged=true)'),
    ("explicit-bad-values", {WARN: "restricted"}, {
        "securityContext": {"seccompProfile": {"type": "Unconfined"}},
        "containers": [{**C, "securityContext": {"allowPrivilegeEscalation": True, "runAsNonRoot": False,
                                                 "capabilities": {"drop": ["NET_RAW"]}}}]},
     'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "c" must set '
     'securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set '
     'securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (container "c" must not set '
     'securityContext.runAsNonRoot=false), seccompProfile (pod must not set securityContext.seccompProfile.type to '
     '"Unconfined")'),
    ("unconfined-baseline", {ENFORCE: "baseline"}, {
        "securityContext": {"seccompProfile": {"type": "Unconfined"}}, "containers": [C]},
     'would violate PodSecurity "baseline:latest": seccompProfile (pod must not set '
     'securityContext.seccompProfile.type to "Unconfined")'),
    ("host-ports-and-volume-types", {WARN: "restricted"}, {
        "volumes": [{"name": "a", "hostPath": {"path": "/x"}}, {"name": "n", "nfs": {"server": "s", "path": "/"}}],
        "containers": [{**C, "ports": [{"containerPort": 80, "hostPort": 80}, {"containerPort": 81, "hostPort": 81}],
                        "securityContext": {"privileged": True, "allowPrivilegeEscalation": True,
                                            "capabilities": {"drop": ["ALL"]}}},
                       {**D, "ports": [{"containerPort": 82, "hostPort": 82}],
                        "securityContext": {"privileged": True, "seccompProfile": {"type": "Unconfined"}}}]},
     'would violate PodSecurity "restricted:latest": hostPort (containers "c", "d" use hostPorts 80, 81, 82), '
     'privileged (containers "c", "d" must not set securityContext.privileged=true), allowPrivilegeEscalation != '
     'false (containers "c", "d" must set securityContext.allowPrivilegeEscalation=false), unrestricted '
     'capabilities (container "d" must set securityContext.capabilities.drop=["ALL"]), restricted volume types '
     '(volumes "a", "n" use restricted volume types "hostPath", "nfs"), runAsNonRoot != true (pod or containers '
     '"c", "d" must set securityContext.runAsNonRoot=true), seccompProfile (container "d" must not set '
     'securityContext.seccompProfile.type to "Unconfined")'),
    ("what-restricted-renders-passes", {WARN: "restricted"},
     {"securityContext": RESTRICTED_POD, "containers": [SAFE_C]}, None),
    ("warn-privileged-overrides-enforce", {ENFORCE: "restricted", WARN: "privileged"},
     {"hostNetwork": True, "containers": [C]}, None),
]


def batch_job(name: str, spec: dict) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"restartPolicy": "Never", **copy.deepcopy(spec)}}}}


def warning_header_text(header: str | None) -> str | None:
    """The text of ``299 - "..."`` (quotes unescaped), as kubectl prints it."""
    if header is None:
        return None
    assert header.startswith('299 - "') and header.endswith('"'), header
    return header[len('299 - "'):-1].replace('\\"', '"').replace("\\\\", "\\")


def fake_dry_run_warning(server: FakeApiServer, namespace: str, manifest: dict) -> str | None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs?dryRun=All", json.dumps(manifest),
                           {"Content-Type": "application/json", "Authorization": f"Bearer {server.token}"})
        response = connection.getresponse()
        response.read()
        assert response.status == 201, response.status
        return response.getheader("Warning")
    finally:
        connection.close()


@pytest.mark.parametrize(("labels", "spec", "expected"), [case[1:] for case in PSA_CASES],
                         ids=[case[0] for case in PSA_CASES])
def test_the_fake_warns_like_a_real_api_server(labels, spec, expected):
    with FakeApiServer(serve_runai=False) as server:
        server.add_namespace("psa", labels)
        header = fake_dry_run_warning(server, "psa", batch_job("j1", spec))
    assert warning_header_text(header) == expected
