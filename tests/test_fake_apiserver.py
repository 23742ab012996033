"""Tests of tests/fake_apiserver.py, driven through the real kubernetes client (v37)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import (
    ApiException,
    ConflictException,
    NotFoundException,
    ServiceException,
    UnauthorizedException,
    UnprocessableEntityException,
    BadRequestException,
)

try:
    from tests.fake_apiserver import _DECODER, FakeApiServer, parse_label_selector
except ImportError:  # run from inside tests/
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fake_apiserver import _DECODER, FakeApiServer, parse_label_selector  # type: ignore[no-redef]

NS = "runai-team-a"
GEN_RE = r"[bcdfghjklmnpqrstvwxz2456789]{5}"


# ----------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _no_proxy():
    """The v37 Configuration picks HTTP(S)_PROXY up from the environment: bypass it for loopback."""
    saved = {k: os.environ.get(k) for k in ("NO_PROXY", "no_proxy")}
    for k in saved:
        os.environ[k] = ",".join(filter(None, [saved[k], "127.0.0.1", "localhost"]))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def make_client(srv: FakeApiServer, path: Path) -> client.ApiClient:
    kc = srv.write_kubeconfig(path)
    with _no_proxy():
        return config.new_client_from_config(config_file=kc)


def job_body(name: str | None = None, *, image: str | None = "busybox:1.36", labels=None, generate_name=None,
             restart_policy: str | None = "Never", resources=None, owner_refs=None) -> client.V1Job:
    return client.V1Job(
        api_version="batch/v1", kind="Job",
        metadata=client.V1ObjectMeta(name=name, generate_name=generate_name, labels=labels,
                                     owner_references=owner_refs),
        spec=client.V1JobSpec(backoff_limit=0, template=client.V1PodTemplateSpec(
            spec=client.V1PodSpec(restart_policy=restart_policy, containers=[client.V1Container(
                name="main", image=image, command=["sleep", "1"],
                resources=client.V1ResourceRequirements(limits=resources) if resources else None)]))))


def job_dict(name: str, **extra_spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "main", "image": "busybox"}]}}, **extra_spec}}


def runai_job(name: str, **meta) -> dict:
    d = job_dict(name)
    d["apiVersion"], d["kind"] = "run.ai/v1", "RunaiJob"
    d["metadata"].update(meta)
    return d


def service_body(name: str, *, ports=None, type_: str = "ClusterIP", labels=None, owner_refs=None) -> client.V1Service:
    ports = ports if ports is not None else [client.V1ServicePort(port=80, target_port=8080)]
    return client.V1Service(api_version="v1", kind="Service",
                            metadata=client.V1ObjectMeta(name=name, labels=labels, owner_references=owner_refs),
                            spec=client.V1ServiceSpec(type=type_, selector={"app": name}, ports=ports))


def owner_ref(obj) -> client.V1OwnerReference:
    return client.V1OwnerReference(api_version=obj.api_version, kind=obj.kind, name=obj.metadata.name,
                                   uid=obj.metadata.uid, controller=True, block_owner_deletion=True)


def status_of(exc: ApiException) -> dict:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return body


def raw(api: client.ApiClient, method: str, path: str, body=None, query=None, auth: bool = True):
    """A raw request through ApiClient.param_serialize + call_api (v37 signature); returns (status, json)."""
    req = api.param_serialize(method, path, query_params=query or [], header_params={"Accept": "application/json",
                              "Content-Type": "application/json"}, body=body,
                              auth_settings=["BearerToken"] if auth else [])
    resp = api.call_api(*req)
    resp.read()
    try:
        return resp.status, json.loads(resp.data or b"null"), resp.headers
    except ValueError:   # the plain-text 404 of paths no API group serves
        return resp.status, resp.data.decode(), resp.headers


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def srv():
    # the controllers run only when a test says so (run_controllers), so in-between states can be checked
    with FakeApiServer(controller_delay=None) as s:
        s.add_namespace(NS, {"runai/queue": "team-a"})
        yield s


@pytest.fixture(scope="module")
def api(srv, tmp_path_factory):
    c = make_client(srv, tmp_path_factory.mktemp("kc") / "config")
    yield c
    c.close()


@pytest.fixture(autouse=True)
def _clean(srv):
    srv.reset()
    yield
    srv.reset()


@pytest.fixture
def batch(api):
    return client.BatchV1Api(api)


@pytest.fixture
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture
def custom(api):
    return client.CustomObjectsApi(api)


@pytest.fixture
def net(api):
    return client.NetworkingV1Api(api)


# ----------------------------------------------------------------------------- version / discovery / auth
def test_version_and_discovery(api, srv):
    v = client.VersionApi(api).get_code()
    assert (v.major, v.minor, v.git_version, v.platform) == ("1", "28", "v1.28.0", "linux/amd64")
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]
    groups = {g.name: g for g in client.ApisApi(api).get_api_versions().groups}
    assert set(groups) == {"batch", "networking.k8s.io", "run.ai"}
    assert groups["run.ai"].preferred_version.group_version == "run.ai/v1"
    jobs = {r.name: r for r in client.BatchV1Api(api).get_api_resources().resources}["jobs"]
    assert (jobs.kind, jobs.namespaced, jobs.singular_name) == ("Job", True, "job")
    assert {"create", "get", "list", "delete"} <= set(jobs.verbs)
    core_res = {r.name: r for r in client.CoreV1Api(api).get_api_resources().resources}
    assert core_res["namespaces"].namespaced is False
    assert core_res["persistentvolumeclaims"].kind == "PersistentVolumeClaim"
    assert {r.name for r in client.NetworkingV1Api(api).get_api_resources().resources} >= {"ingresses"}
    code, body, _ = raw(api, "GET", "/apis/run.ai/v1")
    assert code == 200 and body["groupVersion"] == "run.ai/v1"
    assert [r["kind"] for r in body["resources"] if r["name"] == "runaijobs"] == ["RunaiJob"]
    # the v37 typed discovery calls put a trailing slash on the path (the real server accepts both)
    assert ("GET", "/version/", {}) in srv.requests


def test_runai_group_off(tmp_path):
    with FakeApiServer(serve_runai=False) as s:
        s.add_namespace(NS)
        c = make_client(s, tmp_path / "kc")
        groups = [g.name for g in client.ApisApi(c).get_api_versions().groups]
        assert "run.ai" not in groups and "batch" in groups
        code, body, headers = raw(c, "GET", "/apis/run.ai/v1")
        # an unserved group is the Go mux's plain-text 404, as on a real server
        assert (code, body, headers["Content-Type"]) == (404, "404 page not found\n", "text/plain; charset=utf-8")
        with pytest.raises(NotFoundException) as ei:
            client.CustomObjectsApi(c).create_namespaced_custom_object("run.ai", "v1", NS, "runaijobs",
                                                                       runai_job("rj"))
        assert ei.value.body == "404 page not found\n"
        assert s.objects("RunaiJob") == []
        c.close()


def test_validate_off_accepts_what_validation_rejects(tmp_path):
    with FakeApiServer(validate=False) as s:
        s.add_namespace(NS)
        c = make_client(s, tmp_path / "kc")
        body = job_dict("loose", bogusField=1)
        del body["spec"]["template"]["spec"]["containers"][0]["image"]
        code, out, headers = raw(c, "POST", f"/apis/batch/v1/namespaces/{NS}/jobs", body=body)
        assert code == 201 and out["spec"]["bogusField"] == 1 and out["status"] == {}
        assert "Warning" not in headers
        code, out, _ = raw(c, "POST", f"/apis/batch/v1/namespaces/{NS}/jobs", body=job_dict(""))
        assert code == 422 and out["details"]["causes"][0]["field"] == "metadata.name"
        c.close()


def test_token_required(srv, tmp_path):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request("GET", "/api/v1/namespaces")
    resp = conn.getresponse()
    body = json.loads(resp.read())
    assert resp.status == 401 and body["reason"] == "Unauthorized" and body["kind"] == "Status"
    conn.close()
    other = FakeApiServer(token="other-token")
    other.url = srv.url          # a kubeconfig for srv carrying the wrong token
    c = make_client(other, tmp_path / "kc")
    with pytest.raises(UnauthorizedException) as ei:
        client.CoreV1Api(c).list_namespace()
    assert status_of(ei.value)["message"] == "Unauthorized"
    c.close()


def test_unknown_path_and_method(api):
    code, body, _ = raw(api, "GET", "/apis/apps/v1/deployments")   # a group this fake does not serve
    assert (code, body) == (404, "404 page not found\n")
    code, body, _ = raw(api, "GET", "/api/v2")
    assert (code, body["reason"], body["message"]) == (404, "NotFound", "the server could not find the requested resource")
    # PUT is not implemented (a real server would update, or answer 404 for a missing Job)
    code, body, _ = raw(api, "PUT", f"/apis/batch/v1/namespaces/{NS}/jobs/x", body=job_dict("x"))
    assert (code, body["reason"], body["kind"]) == (405, "MethodNotAllowed", "Status")
    code, body, _ = raw(api, "POST", "/version", body={})
    assert code == 405


# ----------------------------------------------------------------------------- Jobs
def test_job_create_get_list_delete(batch, srv):
    created = batch.create_namespaced_job(NS, job_body("train-1", labels={"app": "x"},
                                                       resources={"nvidia.com/gpu": "1"}))
    md = created.metadata
    assert md.namespace == NS and md.generation == 1 and re.fullmatch(r"[0-9a-f-]{36}", md.uid)
    assert int(md.resource_version) > 0 and md.creation_timestamp.tzinfo is not None
    assert created.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": md.uid}
    assert created.spec.template.metadata.labels["batch.kubernetes.io/job-name"] == "train-1"
    assert created.status is not None and created.status.conditions is None
    assert srv.get_object("Job", NS, "train-1")["spec"]["template"]["spec"]["containers"][0]["resources"] == \
        {"limits": {"nvidia.com/gpu": "1"}}

    got = batch.read_namespaced_job("train-1", NS)
    assert got.metadata.uid == md.uid
    listed = batch.list_namespaced_job(NS)
    assert [j.metadata.name for j in listed.items] == ["train-1"] and listed.kind == "JobList"
    assert [j.metadata.name for j in batch.list_job_for_all_namespaces().items] == ["train-1"]

    out, code, headers = batch.delete_namespaced_job_with_http_info("train-1", NS,
                                                                    propagation_policy="Background")
    assert code == 200 and "Warning" not in headers
    assert out == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                   "details": {"name": "train-1", "group": "batch", "kind": "jobs", "uid": md.uid}}
    with pytest.raises(NotFoundException) as ei:
        batch.read_namespaced_job("train-1", NS)
    body = status_of(ei.value)
    assert body["message"] == 'jobs.batch "train-1" not found'
    assert body["details"] == {"name": "train-1", "group": "batch", "kind": "jobs"}
    with pytest.raises(NotFoundException):
        batch.delete_namespaced_job("train-1", NS)


def test_job_already_exists_409(batch):
    batch.create_namespaced_job(NS, job_body("dup"))
    with pytest.raises(ConflictException) as ei:
        batch.create_namespaced_job(NS, job_body("dup"))
    body = status_of(ei.value)
    assert ei.value.status == 409 and body["reason"] == "AlreadyExists"
    assert body["message"] == 'jobs.batch "dup" already exists'
    assert body["details"] == {"name": "dup", "group": "batch", "kind": "jobs"}


def test_namespace_missing_404(batch, core):
    with pytest.raises(NotFoundException) as ei:
        batch.create_namespaced_job("nope", job_body("j"))
    assert status_of(ei.value) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                   "message": 'namespaces "nope" not found', "reason": "NotFound",
                                   "details": {"name": "nope", "kind": "namespaces"}, "code": 404}
    with pytest.raises(NotFoundException) as ei:
        core.create_namespaced_service("nope", service_body("s"))
    assert status_of(ei.value)["message"] == 'namespaces "nope" not found'


def test_job_missing_image_and_restart_policy_422(batch, srv):
    with pytest.raises(UnprocessableEntityException) as ei:
        batch.create_namespaced_job(NS, job_body("noimg", image=None, restart_policy=None))
    body = status_of(ei.value)
    assert body["reason"] == "Invalid" and body["details"]["kind"] == "Job" and body["details"]["group"] == "batch"
    causes = {c["field"]: c for c in body["details"]["causes"]}
    assert causes["spec.template.spec.containers[0].image"]["reason"] == "FieldValueRequired"
    assert causes["spec.template.spec.restartPolicy"]["message"] == \
        'Required value: valid values: "OnFailure", "Never"'
    assert body["message"].startswith('Job.batch "noimg" is invalid: [')
    assert srv.objects("Job") == []


def test_unknown_fields_warn_by_default_and_fail_when_strict(api, srv):
    """fieldValidation: Warn (the default) drops the field with a Warning, Strict refuses, Ignore is silent."""
    path = f"/apis/batch/v1/namespaces/{NS}/jobs"
    code, body, headers = raw(api, "POST", path, body=job_dict("warned", bogusField=1))
    assert code == 201 and "bogusField" not in body["spec"]
    assert headers["Warning"] == '299 - "unknown field \\"spec.bogusField\\""'
    code, body, _ = raw(api, "POST", path, body=job_dict("strict", bogusField=1), query=[("fieldValidation", "Strict")])
    assert (code, body["reason"]) == (400, "BadRequest")
    assert body["message"] == ('Job in version "v1" cannot be handled as a Job: strict decoding error: '
                               'unknown field "spec.bogusField"')
    code, body, headers = raw(api, "POST", path, body=job_dict("quiet", bogusField=1),
                              query=[("fieldValidation", "Ignore")])
    assert code == 201 and "Warning" not in headers
    code, body, _ = raw(api, "POST", path, body=dict(job_dict("wrongtype"), spec={"template": {"spec": {"containers": "x"}}}))
    assert (code, body["reason"]) == (400, "BadRequest")
    assert body["message"].endswith("json: cannot unmarshal string into Go struct field "
                                    "PodSpec.spec.template.spec.containers of type []v1.Container")
    assert sorted(j["metadata"]["name"] for j in srv.objects("Job")) == ["quiet", "warned"]


def test_bad_body_400(api):
    code, body, _ = raw(api, "POST", f"/apis/batch/v1/namespaces/{NS}/jobs",
                        body=dict(job_dict("x"), apiVersion="v1"))
    assert (code, body["reason"]) == (400, "BadRequest") and "expected API version (batch/v1)" in body["message"]
    code, body, _ = raw(api, "POST", f"/apis/batch/v1/namespaces/{NS}/jobs",
                        body=dict(job_dict("x"), metadata={"name": "x", "namespace": "other"}))
    assert code == 400 and "does not match the namespace" in body["message"]


def test_gpu_resource_rules(batch, api):
    with pytest.raises(UnprocessableEntityException) as ei:
        batch.create_namespaced_job(NS, job_body("frac", resources={"nvidia.com/gpu": "0.5"}))
    assert "must be an integer" in status_of(ei.value)["message"]
    bad_req = job_dict("reqonly")
    bad_req["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"nvidia.com/gpu": 1}}
    code, body, _ = raw(api, "POST", f"/apis/batch/v1/namespaces/{NS}/jobs", body=bad_req)
    assert code == 422 and body["details"]["causes"][0] == {
        "reason": "FieldValueRequired", "field": "spec.template.spec.containers[0].resources.limits",
        "message": "Required value: Limit must be set for non overcommitable resources"}
    with pytest.raises(BadRequestException) as ei:
        batch.create_namespaced_job(NS, job_body("badqty", resources={"cpu": "lots"}))
    assert "quantities must match the regular expression" in status_of(ei.value)["message"]


def test_generate_name(batch, srv):
    j = batch.create_namespaced_job(NS, job_body(generate_name="train-"))
    assert re.fullmatch("train-" + GEN_RE, j.metadata.name)
    assert j.metadata.generate_name == "train-"
    assert srv.get_object("Job", NS, j.metadata.name)["metadata"]["uid"] == j.metadata.uid
    with pytest.raises(UnprocessableEntityException) as ei:
        batch.create_namespaced_job(NS, job_body(None))
    assert status_of(ei.value)["details"]["causes"] == [{
        "reason": "FieldValueRequired", "field": "metadata.name",
        "message": "Required value: name or generateName is required"}]


def test_dry_run_does_not_persist(batch, core, srv):
    out = batch.create_namespaced_job(NS, job_body("dry"), dry_run="All")
    assert out.metadata.name == "dry" and out.metadata.uid
    assert srv.objects("Job") == [] and srv.requests[-1][2] == {"dryRun": "All"}
    batch.create_namespaced_job(NS, job_body("dry"))
    with pytest.raises(ConflictException):
        batch.create_namespaced_job(NS, job_body("dry"), dry_run="All")
    with pytest.raises(UnprocessableEntityException):
        batch.create_namespaced_job(NS, job_body("dry2", image=None), dry_run="All")
    svc = core.create_namespaced_service(NS, service_body("drysvc", type_="NodePort"), dry_run="All")
    assert 30000 <= svc.spec.ports[0].node_port <= 32767 and srv.objects("Service") == []


def test_set_status_visible_through_client(batch, srv):
    batch.create_namespaced_job(NS, job_body("st"))
    srv.set_status("Job", NS, "st", {"succeeded": 1, "conditions": [
        {"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]})
    j = batch.read_namespaced_job_status("st", NS)
    assert j.status.succeeded == 1 and j.status.conditions[0].type == "Complete"
    with pytest.raises(KeyError):
        srv.set_status("Job", NS, "missing", {})


# ----------------------------------------------------------------------------- Services / PVC / Ingress / RunaiJob
def test_service_rules_and_allocation(core, srv):
    svc = core.create_namespaced_service(NS, service_body("web", type_="NodePort", ports=[
        client.V1ServicePort(name="http", port=80, target_port=8080),
        client.V1ServicePort(name="ssh", port=22, node_port=30022)]))
    ports = {p.name: p for p in svc.spec.ports}
    assert ports["ssh"].node_port == 30022 and 30000 <= ports["http"].node_port <= 32767
    assert ports["http"].node_port != 30022 and ports["http"].protocol == "TCP"
    assert svc.spec.cluster_ip.startswith("10.") and svc.spec.cluster_ips == [svc.spec.cluster_ip]

    with pytest.raises(UnprocessableEntityException) as ei:   # node port taken
        core.create_namespaced_service(NS, service_body("web2", type_="NodePort", ports=[
            client.V1ServicePort(port=22, node_port=30022)]))
    assert status_of(ei.value)["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "spec.ports[0].nodePort",
        "message": "Invalid value: 30022: provided port is already allocated"}]
    with pytest.raises(UnprocessableEntityException) as ei:   # out of range
        core.create_namespaced_service(NS, service_body("web3", type_="NodePort", ports=[
            client.V1ServicePort(port=22, node_port=8080)]))
    assert "The range of valid ports is 30000-32767" in status_of(ei.value)["message"]
    with pytest.raises(UnprocessableEntityException) as ei:   # duplicate / missing port names
        core.create_namespaced_service(NS, service_body("web4", ports=[
            client.V1ServicePort(name="a", port=1), client.V1ServicePort(name="a", port=2),
            client.V1ServicePort(port=3)]))
    fields = [(c["field"], c["reason"]) for c in status_of(ei.value)["details"]["causes"]]
    assert fields == [("spec.ports[1].name", "FieldValueDuplicate"), ("spec.ports[2].name", "FieldValueRequired")]
    with pytest.raises(UnprocessableEntityException) as ei:   # DNS-1035 name
        core.create_namespaced_service(NS, service_body("1web"))
    body = status_of(ei.value)
    assert body["details"]["causes"][0]["field"] == "metadata.name" and "DNS-1035" in body["message"]
    assert [s["metadata"]["name"] for s in srv.objects("Service")] == ["web"]

    gone = core.delete_namespaced_service("web", NS)   # Services answer a delete with the deleted object
    assert isinstance(gone, client.V1Service) and gone.metadata.uid == svc.metadata.uid
    again = core.create_namespaced_service(NS, service_body("web5", type_="NodePort", ports=[
        client.V1ServicePort(port=22, node_port=30022)]))
    assert again.spec.ports[0].node_port == 30022


def test_pvc_lifecycle(core, srv):
    pvc = client.V1PersistentVolumeClaim(
        api_version="v1", kind="PersistentVolumeClaim", metadata=client.V1ObjectMeta(name="data"),
        spec=client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"],
                                                resources=client.V1VolumeResourceRequirements(
                                                    requests={"storage": "10Gi"})))
    out = core.create_namespaced_persistent_volume_claim(NS, pvc)
    assert out.status.phase == "Pending" and out.metadata.finalizers == ["kubernetes.io/pvc-protection"]
    assert core.read_namespaced_persistent_volume_claim("data", NS).spec.volume_mode == "Filesystem"
    deleted = core.delete_namespaced_persistent_volume_claim("data", NS)
    # pending finalizer: the server answers with the object, marked for deletion (typed for PVCs in v37)
    assert isinstance(deleted, client.V1PersistentVolumeClaim) and deleted.metadata.deletion_timestamp
    # ... and stays until the pvc-protection controller sees no pod using it
    assert srv.get_object("PersistentVolumeClaim", NS, "data")["metadata"]["deletionTimestamp"]
    srv.run_controllers()
    assert srv.objects("PersistentVolumeClaim") == []
    pvc.spec.access_modes = None
    with pytest.raises(UnprocessableEntityException) as ei:
        core.create_namespaced_persistent_volume_claim(NS, pvc)
    assert status_of(ei.value)["details"]["causes"][0]["field"] == "spec.accessModes"


def _ingress(name: str) -> client.V1Ingress:
    backend = client.V1IngressBackend(service=client.V1IngressServiceBackend(
        name="web", port=client.V1ServiceBackendPort(number=80)))
    return client.V1Ingress(api_version="networking.k8s.io/v1", kind="Ingress",
                            metadata=client.V1ObjectMeta(name=name),
                            spec=client.V1IngressSpec(rules=[client.V1IngressRule(
                                host="x.example.com", http=client.V1HTTPIngressRuleValue(paths=[
                                    client.V1HTTPIngressPath(path="/", path_type="Prefix", backend=backend)]))]))


def test_ingress_lifecycle(net, api, srv):
    out = net.create_namespaced_ingress(NS, _ingress("ing"))
    assert out.metadata.uid and out.spec.rules[0].host == "x.example.com"
    assert [i.metadata.name for i in net.list_namespaced_ingress(NS).items] == ["ing"]
    assert net.read_namespaced_ingress("ing", NS).metadata.uid == out.metadata.uid
    assert net.delete_namespaced_ingress("ing", NS)["status"] == "Success"
    # v37 typed methods validate the body client-side (pydantic): a raw call gets it to the server
    no_path_type = _ingress("ing2").to_dict(serialize=True)
    del no_path_type["spec"]["rules"][0]["http"]["paths"][0]["pathType"]
    code, body, _ = raw(api, "POST", f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses", body=no_path_type)
    assert code == 422 and [(c["field"], c["reason"]) for c in body["details"]["causes"]] == [
        ("spec.rules[0].http.paths[0].pathType", "FieldValueRequired")]
    assert body["message"].endswith("pathType: Required value: pathType must be specified")
    assert srv.objects("Ingress") == []


def test_runaijob_custom_objects(custom, srv):
    out = custom.create_namespaced_custom_object("run.ai", "v1", NS, "runaijobs",
                                                 runai_job("rj1", labels={"user": "alice"}))
    # a custom resource with a status subresource: no status on create, generation 1 (tests/crds/runaijob.yaml)
    assert out["kind"] == "RunaiJob" and "status" not in out and out["metadata"]["uid"]
    assert out["metadata"]["generation"] == 1
    got = custom.get_namespaced_custom_object("run.ai", "v1", NS, "runaijobs", "rj1")
    assert got["metadata"]["uid"] == out["metadata"]["uid"]
    lst = custom.list_namespaced_custom_object("run.ai", "v1", NS, "runaijobs", label_selector="user=alice")
    assert lst["kind"] == "RunaiJobList" and [i["metadata"]["name"] for i in lst["items"]] == ["rj1"]
    assert lst["items"][0]["apiVersion"] == "run.ai/v1"
    with pytest.raises(ConflictException) as ei:
        custom.create_namespaced_custom_object("run.ai", "v1", NS, "runaijobs", runai_job("rj1"))
    assert status_of(ei.value)["message"] == 'runaijobs.run.ai "rj1" already exists'
    loose = runai_job("rj2")
    loose["spec"]["template"]["spec"]["containers"][0]["gpu"] = 1   # the CRD keeps unknown spec fields
    kept = custom.create_namespaced_custom_object("run.ai", "v1", NS, "runaijobs", loose)
    assert kept["spec"]["template"]["spec"]["containers"][0]["gpu"] == 1
    bad = runai_job("Rj3")
    with pytest.raises(UnprocessableEntityException) as ei:
        custom.create_namespaced_custom_object("run.ai", "v1", NS, "runaijobs", bad)
    body = status_of(ei.value)
    assert body["details"]["kind"] == "RunaiJob" and body["details"]["group"] == "run.ai"
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    res = custom.delete_namespaced_custom_object("run.ai", "v1", NS, "runaijobs", "rj1")
    assert res["status"] == "Success" and res["details"]["uid"] == out["metadata"]["uid"]
    assert [j["metadata"]["name"] for j in srv.objects("RunaiJob")] == ["rj2"]


# ----------------------------------------------------------------------------- selectors
def test_label_selectors(core, srv):
    for name, labels in (("a", {"tier": "web", "env": "prod"}), ("b", {"tier": "db", "env": "dev"}),
                         ("c", {"tier": "web"})):
        core.create_namespaced_service(NS, service_body(name, labels=labels))

    def names(sel: str) -> list[str]:
        return sorted(s.metadata.name for s in core.list_namespaced_service(NS, label_selector=sel).items)

    assert names("tier=web") == ["a", "c"]
    assert names("tier==web,env=prod") == ["a"]
    assert names("tier!=web") == ["b"]
    assert names("env") == ["a", "b"]
    assert names("!env") == ["c"]
    assert names("env in (prod, dev),tier in (db)") == ["b"]
    assert names("env notin (prod)") == ["b", "c"]
    assert names("") == ["a", "b", "c"]
    assert [s.metadata.name for s in core.list_service_for_all_namespaces(label_selector="tier=db").items] == ["b"]
    assert [s.metadata.name for s in core.list_namespaced_service(NS, field_selector="metadata.name=c").items] \
        == ["c"]
    assert ("GET", f"/api/v1/namespaces/{NS}/services", {"fieldSelector": "metadata.name=c"}) in srv.requests
    with pytest.raises(BadRequestException):
        core.list_namespaced_service(NS, label_selector="tier in (web")
    assert parse_label_selector("a in (x,y),!b") == [("a", "in", ("x", "y")), ("b", "!", ())]
    nss = core.list_namespace(label_selector="runai/queue=team-a").items
    assert [n.metadata.name for n in nss] == [NS] and nss[0].metadata.labels["kubernetes.io/metadata.name"] == NS


# ----------------------------------------------------------------------------- deletion / GC
def test_owner_reference_cascade(batch, core, net, srv):
    job = batch.create_namespaced_job(NS, job_body("owner"))
    svc = core.create_namespaced_service(NS, service_body("owned-svc", owner_refs=[owner_ref(job)]))
    net.create_namespaced_ingress(NS, client.V1Ingress(
        api_version="networking.k8s.io/v1", kind="Ingress",
        metadata=client.V1ObjectMeta(name="grandchild", owner_references=[owner_ref(svc)]),
        spec=_ingress("x").spec))
    other = batch.create_namespaced_job(NS, job_body("other"))
    shared = core.create_namespaced_service(NS, service_body("shared", owner_refs=[
        owner_ref(job), client.V1OwnerReference(api_version="batch/v1", kind="Job", name="other",
                                                uid=other.metadata.uid)]))
    assert shared.metadata.owner_references[1].name == "other"
    batch.delete_namespaced_job("owner", NS, propagation_policy="Foreground")
    # foreground: the owner waits, marked for deletion, until the collector has removed its dependents
    assert srv.get_object("Job", NS, "owner")["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert srv.get_object("Service", NS, "owned-svc") is not None
    srv.run_controllers()
    assert srv.get_object("Job", NS, "owner") is None
    assert srv.get_object("Service", NS, "owned-svc") is None          # dependent
    assert srv.get_object("Ingress", NS, "grandchild") is None         # dependent of the dependent
    left = srv.get_object("Service", NS, "shared")                     # still has a live owner
    assert [r["name"] for r in left["metadata"]["ownerReferences"]] == ["other"]


def test_job_default_delete_orphans_like_real_server(batch, core, srv):
    job = batch.create_namespaced_job(NS, job_body("j"))
    core.create_namespaced_service(NS, service_body("kept", owner_refs=[owner_ref(job)]))
    out, code, headers = batch.delete_namespaced_job_with_http_info("j", NS)
    assert code == 200 and "child pods are preserved by default" in headers["Warning"]
    # pending "orphan" finalizer: the API answers with the Job itself, not a Status
    assert out["kind"] == "Job" and out["metadata"]["finalizers"] == ["orphan"]
    assert out["metadata"]["deletionTimestamp"] and out["metadata"]["generation"] == 2
    again, code, _ = batch.delete_namespaced_job_with_http_info("j", NS)   # still there: same answer
    assert code == 200 and again["metadata"]["uid"] == out["metadata"]["uid"]
    srv.run_controllers()
    assert srv.get_object("Job", NS, "j") is None
    kept = srv.get_object("Service", NS, "kept")
    assert kept is not None and "ownerReferences" not in kept["metadata"]


def test_orphan_via_delete_options_body(batch, core, srv):
    job = batch.create_namespaced_job(NS, job_body("j2"))
    core.create_namespaced_service(NS, service_body("svc2", owner_refs=[owner_ref(job)]))
    batch.delete_namespaced_job("j2", NS, body=client.V1DeleteOptions(propagation_policy="Orphan"))
    srv.run_controllers()
    assert srv.get_object("Service", NS, "svc2") is not None
    job = batch.create_namespaced_job(NS, job_body("j3"))
    core.create_namespaced_service(NS, service_body("svc3", owner_refs=[owner_ref(job)]))
    batch.delete_namespaced_job("j3", NS, body=client.V1DeleteOptions(propagation_policy="Background"))
    # background: the owner is gone at once, its dependents when the garbage collector gets to them
    assert srv.get_object("Job", NS, "j3") is None and srv.get_object("Service", NS, "svc3") is not None
    srv.run_controllers()
    assert srv.get_object("Service", NS, "svc3") is None


def test_dangling_owner_reference_is_collected(core, srv):
    """A dependent whose owner never existed (or is gone) is deleted by the collector, as on a real cluster."""
    ghost = client.V1OwnerReference(api_version="batch/v1", kind="Job", name="ghost",
                                    uid="00000000-0000-0000-0000-000000000001")
    foreign = client.V1OwnerReference(api_version="apps/v1", kind="Deployment", name="d",
                                      uid="00000000-0000-0000-0000-000000000002")
    core.create_namespaced_service(NS, service_body("orphaned", owner_refs=[ghost]))
    core.create_namespaced_service(NS, service_body("unmapped", owner_refs=[foreign]))
    srv.run_controllers()
    assert srv.get_object("Service", NS, "orphaned") is None
    # an owner kind the server does not serve cannot be looked up: the collector leaves the dependent
    assert srv.get_object("Service", NS, "unmapped") is not None


def test_controllers_catch_up_on_their_own(tmp_path):
    with FakeApiServer(controller_delay=0.01) as s:
        s.add_namespace(NS)
        c = make_client(s, tmp_path / "kc")
        job = client.BatchV1Api(c).create_namespaced_job(NS, job_body("auto"))
        client.CoreV1Api(c).create_namespaced_service(NS, service_body("auto", owner_refs=[owner_ref(job)]))
        client.BatchV1Api(c).delete_namespaced_job("auto", NS, propagation_policy="Background")
        deadline = time.monotonic() + 30   # a hang bound only
        while s.get_object("Service", NS, "auto") is not None:
            assert time.monotonic() < deadline, "the garbage collector never ran"
            time.sleep(0.01)
        c.close()


def test_namespace_create_delete(core, batch, srv):
    ns = core.create_namespace(client.V1Namespace(api_version="v1", kind="Namespace",
                                                  metadata=client.V1ObjectMeta(name="tmp-ns", labels={"x": "y"})))
    assert ns.status.phase == "Active" and ns.metadata.labels == {"x": "y", "kubernetes.io/metadata.name": "tmp-ns"}
    batch.create_namespaced_job("tmp-ns", job_body("inside"))
    core.create_namespaced_service("tmp-ns", service_body("inside"))
    out = core.delete_namespace("tmp-ns")
    assert out["kind"] == "Namespace" and out["status"]["phase"] == "Terminating"
    # Terminating until the namespace controller has emptied it; no new content meanwhile
    assert core.read_namespace("tmp-ns").status.phase == "Terminating"
    with pytest.raises(client.exceptions.ForbiddenException) as ei:
        core.create_namespaced_service("tmp-ns", service_body("late"))
    body = status_of(ei.value)
    assert body["message"] == ('services "late" is forbidden: unable to create new content in namespace tmp-ns '
                               "because it is being terminated")
    assert body["details"]["causes"] == [{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                                          "message": "namespace tmp-ns is being terminated"}]
    srv.run_controllers()
    assert srv.objects(namespace="tmp-ns") == [] and srv.get_object("Namespace", None, "tmp-ns") is None
    with pytest.raises(NotFoundException):
        core.read_namespace("tmp-ns")
    with pytest.raises(UnprocessableEntityException):
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "Bad.NS"}})


def test_reset_keeps_namespaces(batch, srv):
    batch.create_namespaced_job(NS, job_body("r"))
    srv.fail_request(verb="get")
    srv.reset()
    assert srv.objects("Job") == [] and srv.requests == [] and srv.faults == []
    assert {n["metadata"]["name"] for n in srv.objects("Namespace")} == {"default", NS}


# ----------------------------------------------------------------------------- fault injection
def test_fail_nth_create_with_retry_after(batch, core, srv):
    batch.create_namespaced_job(NS, job_body("before"))        # not counted: armed afterwards
    srv.fail_request(verb="create", kind="Job", nth=2, status=500, headers={"Retry-After": "7"})
    core.create_namespaced_service(NS, service_body("unrelated"))  # other kind: not counted
    batch.create_namespaced_job(NS, job_body("first"))
    with pytest.raises(ServiceException) as ei:
        batch.create_namespaced_job(NS, job_body("second"))
    assert ei.value.status == 500 and ei.value.headers["Retry-After"] == "7"
    body = status_of(ei.value)
    assert body["reason"] == "InternalError" and body["details"]["retryAfterSeconds"] == 7
    assert srv.get_object("Job", NS, "second") is None
    batch.create_namespaced_job(NS, job_body("second"))          # times=1: next one passes
    assert srv.faults == []


def test_fail_429_and_409_conflict_shapes(batch, srv):
    srv.fail_request(verb="create", status=429, times=2, headers={"Retry-After": "1"})
    for _ in range(2):
        with pytest.raises(ApiException) as ei:     # POST is never retried by the client
            batch.create_namespaced_job(NS, job_body("busy"))
        assert ei.value.status == 429 and status_of(ei.value)["reason"] == "TooManyRequests"
    srv.fail_request(verb="delete", kind="Job", status=409)
    batch.create_namespaced_job(NS, job_body("busy"))
    with pytest.raises(ConflictException) as ei:
        batch.delete_namespaced_job("busy", NS)
    assert status_of(ei.value)["reason"] == "Conflict"
    assert srv.get_object("Job", NS, "busy") is not None


def test_client_retries_get_on_503_with_retry_after(core, srv):
    # urllib3's default Retry honours Retry-After on 503/429 for GET/DELETE (not POST).
    srv.fail_request(verb="get", kind="Namespace", status=503, times=2, headers={"Retry-After": "0"})
    srv.clear_requests()
    assert core.read_namespace(NS).metadata.name == NS
    assert [r[1] for r in srv.requests] == [f"/api/v1/namespaces/{NS}"] * 3


def test_delay_and_client_timeout(core, srv):
    srv.delay(0.3, verb="get", kind="Namespace", times=1)
    t0 = time.perf_counter()
    core.read_namespace(NS)
    slow = time.perf_counter() - t0
    t0 = time.perf_counter()
    core.read_namespace(NS)
    fast = time.perf_counter() - t0
    assert slow >= 0.3 and fast < 0.2
    srv.delay(0.5, verb="create", kind="Namespace", times=1)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):   # POST read timeout is not wrapped
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "late"}},
                              _request_timeout=0.1)


def test_refuse_connections_then_back_on_same_port(core, srv):
    port = srv.port
    assert core.read_namespace(NS).metadata.name == NS      # leaves a kept-alive connection in the pool
    srv.refuse_connections(True)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(urllib3.exceptions.MaxRetryError) as ei:
        core.read_namespace(NS)
    assert isinstance(ei.value.reason, urllib3.exceptions.NewConnectionError)
    srv.refuse_connections(False)
    assert srv.port == port
    assert core.read_namespace(NS).metadata.name == NS


def test_keep_alive(srv, api, core):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    hdrs = {"Authorization": "Bearer fake-token"}
    conn.request("GET", "/version", headers=hdrs)
    sock = conn.sock
    r1 = conn.getresponse()
    assert r1.getheader("Content-Length") == str(len(r1.read())) and r1.getheader("Connection") is None
    conn.request("POST", f"/api/v1/namespaces/{NS}/services", headers=hdrs,
                 body=json.dumps(service_body("ka").to_dict(serialize=True)))
    r2 = conn.getresponse()
    assert r2.status == 201 and json.loads(r2.read())["metadata"]["name"] == "ka"
    conn.request("GET", f"/api/v1/namespaces/{NS}/services/ka", headers=hdrs)
    r3 = conn.getresponse()
    assert r3.status == 200 and conn.sock is sock      # same TCP connection all along
    r3.read()
    conn.close()
    core.read_namespace(NS)
    pool = api.rest_client.pool_manager.connection_from_url(srv.url)
    opened = pool.num_connections
    for _ in range(5):
        core.read_namespace(NS)
    assert pool.num_connections == opened      # the client reused its kept-alive connection


def test_response_written_in_one_write(srv, monkeypatch):
    import socketserver

    writes: list[bytes] = []
    orig = socketserver._SocketWriter.write

    def spy(self, b):
        writes.append(bytes(b))
        return orig(self, b)

    monkeypatch.setattr(socketserver._SocketWriter, "write", spy)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer fake-token\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < int(
            re.search(rb"Content-Length: (\d+)", data).group(1)):
        data += s.recv(65536)
    s.close()
    assert len(writes) == 1 and writes[0] == data      # status line + headers + body: one write
    assert json.loads(data.partition(b"\r\n\r\n")[2])["gitVersion"] == "v1.28.0"


# ----------------------------------------------------------------------------- validation cache fidelity / speed
@pytest.mark.parametrize("obj, error, unknown", [
    (job_dict("ok"), None, []),
    (job_dict("bad", foo=1), None, ["spec.foo"]),
    (job_dict("bad2", backoffLimit="six"),
     "json: cannot unmarshal string into Go struct field JobSpec.spec.backoffLimit of type int32", []),
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "x": 1},
      "spec": {"ports": [{"port": 8.5, "y": 2}]}},
     "json: cannot unmarshal number 8.5 into Go struct field ServicePort.spec.ports.port of type int32",
     ["metadata.x", "spec.ports[0].y"]),
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"targetPort": True}]}},
     "json: cannot unmarshal bool into Go struct field ServicePort.spec.ports.targetPort of type int32", []),
    ({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"labels": {"a": 1}}},
     "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string", []),
    ({"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {"containers": "x"}}}},
     "json: cannot unmarshal string into Go struct field PodSpec.spec.template.spec.containers of type "
     "[]v1.Container", []),
])
def test_decoding_reports_what_the_real_decoder_reports(obj, error, unknown):
    """Messages recorded from kube-apiserver v1.28 (tests/test_fake_vs_real.py compares them live)."""
    obj = json.loads(json.dumps(obj))
    assert _DECODER.decode(obj, obj["apiVersion"], obj["kind"]) == (error, unknown)
    assert all("." not in u or u.rsplit(".", 1)[1] not in json.dumps(obj) for u in unknown if "[" not in u)


def test_concurrent_creates(batch, srv):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda i: batch.create_namespaced_job(NS, job_body(generate_name="c-")),
                             range(80)))
    names = {j.metadata.name for j in made}
    rvs = {j.metadata.resource_version for j in made}
    assert len(names) == 80 and len(rvs) == 80
    assert {j["metadata"]["name"] for j in srv.objects("Job", NS)} == names


def test_create_throughput(batch, srv):
    batch.create_namespaced_job(NS, job_body("warm"))
    n = 100
    t0 = time.perf_counter()
    for i in range(n):
        batch.create_namespaced_job(NS, job_body(f"perf-{i}"))
    per = (time.perf_counter() - t0) / n
    assert len(srv.objects("Job", NS)) == n + 1
    assert per < 0.02, f"{per * 1000:.2f} ms per create"


# ----------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("ns_args,label,expected", [
    (["--namespace", "proj-a=runai/queue=a,tier=gold", "--no-runai"], "tier=gold", [("proj-a", "a")]),
    ([], "runai/queue", [("runai-team-a", "team-a")]),      # the CLI's default namespace
])
def test_cli_serves_until_sigterm(tmp_path, ns_args, label, expected):
    kc = tmp_path / "kc.yaml"
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("fake_apiserver.py")), "--port", "0",
                             "--kubeconfig", str(kc), *ns_args], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("fake apiserver listening on http://127.0.0.1:")
        with _no_proxy():
            c = config.new_client_from_config(config_file=str(kc))
        nss = client.CoreV1Api(c).list_namespace(label_selector=label).items
        assert [(n.metadata.name, n.metadata.labels["runai/queue"]) for n in nss] == expected
        groups = [g.name for g in client.ApisApi(c).get_api_versions().groups]
        assert ("run.ai" in groups) == ("--no-runai" not in ns_args)
        c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
