"""The fake API server (tests/fake_apiserver.py) against a real kube-apiserver, request by request.

Each case is a short sequence of raw requests, sent unchanged to both servers (each in a fresh namespace of
the same name) through the same client calls; the answers must agree in status code, reason, message,
details, Warning headers and the parts of the objects the service relies on. Only what must differ is
normalised: uids, resourceVersions, timestamps, generated name suffixes, allocated cluster IPs and node
ports. The reference is the v1.28 control plane of ../shared/kube (CI); the fake models that version.

Differences this table found, all fixed in the fake:
 1. A wrong JSON type (``"backoffLimit": "six"``) is a 400 with Go's unmarshal message ("json: cannot
    unmarshal string into Go struct field JobSpec.spec.backoffLimit of type int32"), not a 422 from a
    JSON schema.
 2. An unknown field is dropped with ``Warning: 299 - "unknown field \"spec.x\""`` (fieldValidation=Warn,
    the default), not refused; ``fieldValidation=Strict`` refuses it with a 400 "strict decoding error".
 3. A bad ``dryRun`` or ``fieldValidation`` value is a 422 ``CreateOptions.meta.k8s.io "" is invalid``
    (``DeleteOptions`` for deletes), not a 400.
 4. A missing required field is reported by validation with the Go zero value ("containerPort: Required
    value", "port: Invalid value: 0"), never as "'x' is a required property".
 5. Job validation: pod template labels and annotations are checked at ``spec.template.labels`` /
    ``.annotations``; a name longer than 63 characters fails both job-name labels; restartPolicy Always is
    'Required value: valid values: "OnFailure", "Never"'; errors come in the real order.
 6. A Job without labels takes its pod template's (generated) labels; no ``podReplacementPolicy`` default
    (a v1.29+ field).
 7. generateName: both the prefix and the generated name are validated and reported.
 8. A Status for an object without a name has no ``details.name`` (Go's omitempty).
 9. Services: allocation (node port taken or out of range) is checked before validation and before the
    name conflict; a Service, PVC or Namespace has no ``metadata.generation``.
10. Ingress: a backend without a port is "backend: Required value: port name or number is required";
    both a port name and number is 'backend: Invalid value: ""'; an empty rule list prints Go's
    ``[]networking.IngressRule(nil)``.
11. DeleteOptions errors carry the whole "supported values" text in their cause too.
12. Label selectors: the Go lexer/parser's own messages ("found '(', expected: identifier", "found 'c',
    expected: ',' or 'end of string'", "<nil>: Invalid value: ..."), and ``a in ()`` is valid (the
    empty value). Field selectors: per-kind labels (``status.phase`` for namespaces,
    ``status.successful`` for Jobs) and the three wordings of a refusal.
13. The items of a built-in kind's list carry no apiVersion/kind (a custom resource's list does, and has
    ``metadata.continue``).
14. Paths no API group serves (``/apis/run.ai/v1`` without the CRD) answer a plain-text "404 page not
    found", not a Status.
15. Deletion: an object with finalizers (orphan, foregroundDeletion, pvc-protection) is answered and kept,
    marked for deletion (its generation bumped), until a controller removes the finalizer; deleting it
    again answers the object again. Background deletion removes the owner at once and its dependents a
    moment later; a dependent whose owners never existed is collected too.
16. A Terminating namespace refuses new objects with 403 (cause NamespaceTerminating), and stays readable
    until the namespace controller has emptied it.
17. RunaiJob is a custom resource: its spec is stored as sent (no Job defaulting, no pod-template
    validation), status is a subresource (never set by a create), unknown top-level fields warn.
18. ``/version`` is that of v1.28 (no emulation fields).
19. A refused create names no object in the fault-injected Forbidden message (authorization comes before
    the body is read).
20. A failed delete precondition: "Operation cannot be fulfilled on ConfigMap "rec": the UID in the
    precondition (...) does not match the UID in record (...)", details naming the kind, not the resource.
21. A merge patch is decoded and validated like a create; a Job's spec errors come twice (ValidateJob, then
    ValidateJobUpdate) and once in the message; a mistyped patch is a 422 "patch: Invalid value"; a RunaiJob
    without status gets none from a patch.
22. (the lead, while making delete uid-safe) A DELETE with a DeleteOptions body reads no query parameters at
    all: ``?propagationPolicy=Background`` beside a body is ignored, so a batch Job takes the default (orphan:
    the answer carries the ``orphan`` finalizer and the Warning) and keeps its dependents. The fake merged
    the query over the body.
23. (the lead) A Job gets ``completions: 1`` only when neither ``completions`` nor ``parallelism`` is given: with
    ``parallelism`` alone it has no completions (a work queue). The fake set ``completions: 1`` whenever absent.

Known differences left on purpose (documented in tests/fake_apiserver.py): no PUT or watch, PATCH only as the merge patch of Jobs and RunaiJobs, discovery
lists only the verbs the fake serves, no managedFields, ResourceQuota/RBAC/admission webhooks are not
modelled (fault injection stands in), the service cluster IP range differs, and a Quantity in an
"must be an integer" message is printed the v1.28 way only for plain decimals.
"""
from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from tests import kube_kit
from tests.conftest import GOLDEN
from tests.fake_apiserver import FakeApiServer

pytestmark = pytest.mark.real

JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
SERVICES = "/api/v1/namespaces/{ns}/services"
PVCS = "/api/v1/namespaces/{ns}/persistentvolumeclaims"
INGRESSES = "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses"
RUNAIJOBS = "/apis/run.ai/v1/namespaces/{ns}/runaijobs"
CONFIGMAPS = "/api/v1/namespaces/{ns}/configmaps"
DRY = {"dryRun": "All"}


def job(name: str = "j", **spec: Any) -> dict:
    container = {"name": "c", "image": "busybox"}
    template = {"spec": {"restartPolicy": "Never", "containers": [container]}}
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": template}}
    for key, value in spec.items():
        if key == "container":
            container.update(value)
        elif key == "pod":
            template["spec"].update(value)
        elif key == "metadata":
            body["metadata"].update(value)
        else:
            body["spec"][key] = value
    return body


def service(name: str = "s", **spec: Any) -> dict:
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}}
    body["spec"].update(spec)
    return body


def pvc(name: str = "p", **spec: Any) -> dict:
    body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    body["spec"].update(spec)
    return body


def ingress(name: str = "i", path: str = "/x", port: dict | None = None, **spec: Any) -> dict:
    backend = {"service": {"name": "s", "port": {"number": 80} if port is None else port}}
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
            "spec": {"rules": [{"http": {"paths": [{"path": path, "pathType": "Prefix", "backend": backend}]}}]}}
    body["spec"].update(spec)
    return body


def runaijob(name: str = "r", **top: Any) -> dict:
    body = {"apiVersion": "run.ai/v1", "kind": "RunaiJob", "metadata": {"name": name},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}}
    body.update(top)
    return body


def owned(body: dict, owner_path: str) -> dict:
    """``body`` with an owner reference to the object at ``owner_path`` (filled in when the step runs)."""
    body = copy.deepcopy(body)
    body["metadata"]["ownerReferences"] = [{"$owner": owner_path}]
    return body


@dataclass
class Step:
    method: str
    path: str                     # "{ns}" is the case's namespace
    body: Any = None
    query: dict | None = None
    view: str = "all"             # all: the whole answer; meta: kind, metadata, spec (no status); code
    wait_gone: bool = False       # poll GET ``path`` until 404 (a controller's work) instead of one request


@dataclass
class Case:
    id: str
    steps: list[Step]
    needs_crd: bool = False
    generated: list[str] = field(default_factory=list)   # generateName prefixes to normalise


def post(path: str, body: Any, query: dict | None = None, view: str = "all") -> Step:
    return Step("POST", path, body, query, view)


def get(path: str, query: dict | None = None, view: str = "all") -> Step:
    return Step("GET", path, None, query, view)


def delete(path: str, query: dict | None = None, view: str = "all") -> Step:
    return Step("DELETE", path, None, query, view)


def gone(path: str) -> Step:
    return Step("GET", path, wait_gone=True)


def the_services_maximal_job(kind: str) -> list[Step]:
    """What the service sends for tests/golden/maximal-request.json, then how it deletes the job."""
    documents = [doc for doc in yaml.safe_load_all((GOLDEN / "maximal-job.yaml").read_text()) if doc]
    workload, *dependents = copy.deepcopy(documents)
    if kind == "Job":
        workload["apiVersion"], workload["kind"] = "batch/v1", "Job"
    path = {"Job": JOBS, "RunaiJob": RUNAIJOBS}[kind]
    steps = []
    for doc in (workload, *dependents):
        del doc["metadata"]["namespace"]
        if doc["metadata"].get("ownerReferences"):
            doc["metadata"]["ownerReferences"] = [{"$owner": f"{path}/maximal"}]
        collection = {"PersistentVolumeClaim": PVCS, "Service": SERVICES, "Ingress": INGRESSES}.get(doc["kind"], path)
        steps.append(post(collection, doc, DRY, "meta"))
        steps.append(post(collection, doc, view="meta"))
    return [*steps, get(path, {"labelSelector": "app=runaijob,release=maximal"}, view="names"),
            delete(f"{path}/maximal", {"propagationPolicy": "Background"}),
            gone(SERVICES + "/maximal"), gone(INGRESSES + "/maximal"),
            get(PVCS, {"labelSelector": "release=maximal,app.kubernetes.io/managed-by=runai-submit"}, view="names")]


CASES = [
    # --- what the service itself sends ----------------------------------------------------------------
    Case("the service's maximal job as a batch Job", the_services_maximal_job("Job")),
    Case("the service's maximal job as a RunaiJob", the_services_maximal_job("RunaiJob"), needs_crd=True),
    # --- create: successes and what the server adds --------------------------------------------------
    Case("job create defaults", [post(JOBS, job(), view="meta")]),
    Case("job with parallelism only: no completions (a work queue)", [post(JOBS, job(parallelism=3), view="meta")]),
    Case("job with completions only: parallelism 1", [post(JOBS, job(completions=4), view="meta")]),
    Case("job create with labels keeps them", [post(JOBS, job(metadata={"labels": {"a": "b"}}), view="meta")]),
    Case("job generateName dry run", [post(JOBS, job(metadata={"name": None, "generateName": "g-"}), DRY, "meta"),
                                      get(JOBS, view="meta")], generated=["g-"]),
    Case("service clusterip", [post(SERVICES, service(), view="meta")]),
    Case("service nodeport requested", [post(SERVICES, service(type="NodePort", ports=[{"port": 80, "nodePort": 31080}]),
                                              view="meta")]),
    Case("service loadbalancer", [post(SERVICES, service(type="LoadBalancer"), view="meta")]),
    Case("pvc create", [post(PVCS, pvc(), view="meta")]),
    Case("ingress create", [post(INGRESSES, ingress(), view="meta")]),
    Case("unknown fields warn and are dropped", [post(JOBS, job(bogus=1, metadata={"extra": 2},
                                                                    container={"x": 1}), view="meta")]),
    Case("unknown fields ignored", [post(JOBS, job(bogus=1), {"fieldValidation": "Ignore"}, "meta")]),
    # --- create: refusals -----------------------------------------------------------------------------
    Case("already exists", [post(JOBS, job(), view="code"), post(JOBS, job())]),
    Case("namespace missing", [post("/apis/batch/v1/namespaces/no-such-ns/jobs", job())]),
    Case("namespace mismatch", [post(JOBS, job(metadata={"namespace": "elsewhere"}))]),
    Case("bad dryRun", [post(JOBS, job(), {"dryRun": "Some"})]),
    Case("bad fieldValidation", [post(JOBS, job(), {"fieldValidation": "Loose"})]),
    Case("strict unknown fields", [post(JOBS, job(bogus=1, other={"x": 1}), {"fieldValidation": "Strict"})]),
    Case("wrong type int", [post(JOBS, job(backoffLimit="six"))]),
    Case("wrong type nested string", [post(JOBS, job(container={"image": 5}))]),
    Case("wrong type list", [post(JOBS, job(pod={"containers": "x"}))]),
    Case("wrong type label", [post(JOBS, job(metadata={"labels": {"a": 1}}))]),
    Case("wrong type float port", [post(SERVICES, service(ports=[{"port": 8.5}]))]),
    Case("wrong type bool targetPort", [post(SERVICES, service(ports=[{"port": 80, "targetPort": True}]))]),
    Case("bad quantity", [post(JOBS, job(container={"resources": {"requests": {"cpu": "2x"}}}))]),
    Case("invalid job", [post(JOBS, job(metadata={"name": "Bad_Name", "labels": {"k": "v v"}}, container={"image": ""},
                                        pod={"restartPolicy": "Always"}))]),
    Case("job without name", [post(JOBS, job(metadata={"name": None}))]),
    Case("invalid generateName", [post(JOBS, job(metadata={"name": None, "generateName": "Bad_"}))],
         generated=["Bad_"]),
    Case("job name too long for its labels", [post(JOBS, job("x" * 64))]),
    Case("job template label", [post(JOBS, job(template={"metadata": {"labels": {"k": "v v"}},
                                                          "spec": {"restartPolicy": "Never",
                                                                   "containers": [{"name": "c", "image": "x"}]}}))]),
    Case("job selector not generated", [post(JOBS, job(selector={"matchLabels": {"a": "b"}}))]),
    Case("job empty spec", [post(JOBS, job(template={}))]),
    Case("job negative counts", [post(JOBS, job(backoffLimit=-1, parallelism=-1, container={"imagePullPolicy": "Sometimes"}))]),
    Case("job zero values", [post(JOBS, job(pod={"volumes": [{"name": "v", "hostPath": {}}]},
                                            container={"env": [{"value": "1"}, {"name": "A=B"}],
                                                       "volumeMounts": [{}], "ports": [{}]}))]),
    Case("job empty secret ref", [post(JOBS, job(container={"env": [{"name": "A", "valueFrom": {"secretKeyRef": {}}}]}))]),
    Case("job mount of a missing volume", [post(JOBS, job(container={"volumeMounts": [{"name": "nope", "mountPath": "/x"}]}))]),
    Case("job fractional gpu", [post(JOBS, job(container={"resources": {"limits": {"nvidia.com/gpu": "0.5"}}}))]),
    Case("job gpu request without limit", [post(JOBS, job(container={"resources": {"requests": {"nvidia.com/gpu": "1"}}}))]),
    Case("job request above limit", [post(JOBS, job(container={"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}))]),
    Case("job unknown resource", [post(JOBS, job(container={"resources": {"limits": {"foo": "1"}}}))]),
    Case("service bad name", [post(SERVICES, service("S4"))]),
    Case("service port names", [post(SERVICES, service(ports=[{"port": 80, "name": "a"}, {"port": 81}]))]),
    Case("service empty port", [post(SERVICES, service(ports=[{}]))]),
    Case("service no ports", [post(SERVICES, service(ports=[]))]),
    Case("service bad type", [post(SERVICES, service(type="Weird"))]),
    Case("service nodePort on clusterip", [post(SERVICES, service(ports=[{"port": 80, "nodePort": 30001}]))]),
    Case("service bad protocol", [post(SERVICES, service(ports=[{"port": 80, "protocol": "XTP"}]))]),
    Case("service nodePort taken", [post(SERVICES, service("a", type="NodePort", ports=[{"port": 80, "nodePort": 31999}]), view="code"),
                                    post(SERVICES, service("b", type="NodePort", ports=[{"port": 80, "nodePort": 31999}])),
                                    post(SERVICES, service("B", type="NodePort", ports=[{"port": 80, "nodePort": 31999}])),
                                    post(SERVICES, service("a", type="NodePort", ports=[{"port": 80, "nodePort": 31999}])),
                                    post(SERVICES, service("a", type="NodePort", ports=[{"port": 80, "nodePort": 31998}]))]),
    Case("service nodePort out of range", [post(SERVICES, service(type="NodePort", ports=[{"port": 80, "nodePort": 80},
                                                                                        {"port": 81}]))]),
    Case("pvc invalid", [post(PVCS, pvc(accessModes=["ReadWriteOnce", "Bogus"], storageClassName="Bad_Class", volumeMode="Odd"))]),
    Case("pvc empty", [post(PVCS, {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "p"}, "spec": {}})]),
    Case("pvc zero storage", [post(PVCS, pvc(accessModes=[], resources={"requests": {"storage": "0"}}))]),
    Case("ingress both port name and number", [post(INGRESSES, ingress(port={"name": "http", "number": 80}))]),
    Case("ingress bad backend", [post(INGRESSES, ingress(path="x", port={}))]),
    Case("ingress bad service name and port", [post(INGRESSES, ingress(port={"number": 70000}) | {}),
                                               post(INGRESSES, {**ingress("i2"), "spec": {"rules": [{"http": {"paths": [
                                                   {"path": "/x", "pathType": "Prefix",
                                                    "backend": {"service": {"name": "S1", "port": {"number": 70000}}}}]}}]}})]),
    Case("ingress no backend", [post(INGRESSES, {**ingress(), "spec": {"rules": [{"http": {"paths": [
        {"path": "/x", "pathType": "Prefix", "backend": {}}]}}]}})]),
    Case("ingress no rules", [post(INGRESSES, {**ingress(), "spec": {}})]),
    Case("ingress no pathType", [post(INGRESSES, {**ingress(), "spec": {"rules": [{"http": {"paths": [
        {"path": "/x", "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}})]),
    Case("ingress bad path sequences", [post(INGRESSES, ingress(path="/a//b/.."))]),
    # --- read and list --------------------------------------------------------------------------------
    Case("get missing", [get(JOBS + "/zz")]),
    Case("get in a missing namespace", [get("/apis/batch/v1/namespaces/no-such-ns/jobs/zz")]),
    Case("list in a missing namespace", [get("/apis/batch/v1/namespaces/no-such-ns/jobs", view="meta")]),
    Case("list items have no kind", [post(SERVICES, service(), view="code"), get(SERVICES, view="meta")]),
    Case("label selectors", [post(SERVICES, service("a") | {"metadata": {"name": "a", "labels": {"tier": "web", "n": "5"}}}, view="code"),
                             post(SERVICES, service("b") | {"metadata": {"name": "b", "labels": {"tier": "db"}}}, view="code"),
                             *[get(SERVICES, {"labelSelector": sel}, view="names") for sel in (
                                 "tier=web", "tier==web,n", "tier!=web", "!n", "tier in (db,web),n>4", "n<5",
                                 "tier notin (web)", "tier in ()", "a in (,)", "")]]),
    Case("label selector errors", [get(SERVICES, {"labelSelector": sel}) for sel in (
        "a=(b", "a in (b", "a=b c", "A_/b", "a=" + "x" * 64, "a>b", "a,", "!a=b", "a in b", "=a", "a!")]),
    Case("field selectors", [get(path, {"fieldSelector": sel}, view="names") for path, sel in (
        ("/api/v1/namespaces", "metadata.name=default"), ("/api/v1/namespaces", "status.phase=Active,metadata.name=default"),
        (JOBS, "status.successful=0"), (SERVICES, "metadata.namespace={ns}"))]),
    Case("field selector errors", [get(path, {"fieldSelector": sel}) for path, sel in (
        ("/api/v1/namespaces", "spec.x=1"), ("/api/v1/namespaces", "metadata.namespace=x"), (JOBS, "status.phase=x"),
        (SERVICES, "spec.type=x"), (PVCS, "status.phase=x"), (INGRESSES, "name=x"), (JOBS, "foo"))]),
    # --- paths ------------------------------------------------------------------------------------------
    Case("unserved group", [get("/apis/foo/v1/bars"), get("/apis/foo"), get("/foo")]),
    Case("unknown resource of a served group", [get("/api/v1/namespaces/{ns}/foos"), get("/apis/batch/v1/foos"),
                                                 get("/api/v2")]),
    Case("post on an object", [post(JOBS + "/x", {})]),
    Case("version", [get("/version", view="version")]),
    Case("batch group discovery", [get("/apis/batch")]),
    # --- delete -----------------------------------------------------------------------------------------
    Case("delete missing", [delete(JOBS + "/zz")]),
    # (deleting it again before the collector is done answers the object again: a race on a real cluster,
    # so tests/test_fake_apiserver.py checks it on the fake alone)
    Case("delete job default orphans", [post(JOBS, job(), view="code"), delete(JOBS + "/j", view="meta"),
                                        gone(JOBS + "/j"), delete(JOBS + "/j")]),
    Case("delete job background", [post(JOBS, job(), view="code"),
                                   delete(JOBS + "/j", {"propagationPolicy": "Background"}), get(JOBS + "/j")]),
    Case("delete service answers the object", [post(SERVICES, service(), view="code"),
                                               delete(SERVICES + "/s", view="meta"), get(SERVICES + "/s")]),
    Case("delete pvc answers it marked", [post(PVCS, pvc(), view="code"),
                                          delete(PVCS + "/p", {"propagationPolicy": "Background"}, view="meta"),
                                          gone(PVCS + "/p")]),
    Case("delete ingress answers a status", [post(INGRESSES, ingress(), view="code"),
                                             delete(INGRESSES + "/i", {"propagationPolicy": "Background"}),
                                             delete(INGRESSES + "/i", {"propagationPolicy": "Foreground"})]),
    Case("delete dry run", [post(SERVICES, service(), view="code"), delete(SERVICES + "/s", DRY, view="meta"),
                            get(SERVICES + "/s", view="code")]),
    Case("delete bad options", [delete(SERVICES + "/s", {"propagationPolicy": "Sideways"}),
                                delete(SERVICES + "/s", {"dryRun": "Some"})]),
    Case("foreground waits for dependents", [
        post(JOBS, job("owner"), view="code"),
        post(SERVICES, owned(service("dep"), JOBS + "/owner"), view="code"),
        delete(JOBS + "/owner", {"propagationPolicy": "Foreground"}, view="meta"),
        gone(SERVICES + "/dep"), gone(JOBS + "/owner")]),
    Case("background collects dependents", [
        post(JOBS, job("owner"), view="code"),
        post(SERVICES, owned(service("dep"), JOBS + "/owner"), view="code"),
        post(INGRESSES, owned(ingress("dep"), JOBS + "/owner"), view="code"),
        delete(JOBS + "/owner", {"propagationPolicy": "Background"}),
        gone(SERVICES + "/dep"), gone(INGRESSES + "/dep")]),
    Case("orphan keeps dependents", [
        post(JOBS, job("owner"), view="code"),
        post(SERVICES, owned(service("dep"), JOBS + "/owner"), view="code"),
        delete(JOBS + "/owner", {"propagationPolicy": "Orphan"}, view="meta"),
        gone(JOBS + "/owner"), get(SERVICES + "/dep", view="meta")]),
    Case("a DeleteOptions body hides the query", [
        post(JOBS, job("owner"), view="code"),
        post(SERVICES, owned(service("dep"), JOBS + "/owner"), view="code"),
        Step("DELETE", JOBS + "/owner", {"apiVersion": "v1", "kind": "DeleteOptions"},
             {"propagationPolicy": "Background"}, view="meta"),
        gone(JOBS + "/owner"), get(SERVICES + "/dep", view="meta")]),
    Case("dangling owner is collected", [
        post(SERVICES, service("dep") | {"metadata": {"name": "dep", "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": "Job", "name": "ghost", "uid": "00000000-0000-0000-0000-000000000001"}]}},
            view="code"),
        gone(SERVICES + "/dep")]),
    # --- what job insight and idempotency added: ConfigMap records, preconditions, merge patches --------
    Case("configmap record", [
        post(JOBS, job("owner"), view="code"),
        post(CONFIGMAPS, owned({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rec"},
                                "immutable": True, "data": {"a": "b"}}, JOBS + "/owner"), view="meta"),
        post(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad_name"}, "data": {"a": 1}}),
        Step("DELETE", CONFIGMAPS + "/rec", {"preconditions": {"uid": "00000000-0000-0000-0000-000000000009"}}),
        delete(JOBS + "/owner", {"propagationPolicy": "Background"}), gone(CONFIGMAPS + "/rec")]),
    Case("merge patch of a job", [
        post(JOBS, job(), view="code"),
        Step("PATCH", JOBS + "/j", {"spec": {"suspend": True}}, view="meta"),
        Step("PATCH", JOBS + "/j", {"spec": {"backoffLimit": -1}}),
        Step("PATCH", JOBS + "/j", {"spec": {"template": {"spec": {"restartPolicy": "OnFailure"}}}}, view="code"),
        Step("PATCH", JOBS + "/zz", {"spec": {"suspend": True}})]),
    Case("merge patch of a runaijob", [post(RUNAIJOBS, runaijob(), view="code"),
                                       Step("PATCH", RUNAIJOBS + "/r", {"spec": {"suspend": True}}, view="meta")],
         needs_crd=True),
    # --- the RunaiJob custom resource ------------------------------------------------------------------
    Case("runaijob create", [post(RUNAIJOBS, runaijob(status={"phase": "x"}), view="meta"),
                             post(RUNAIJOBS, runaijob())], needs_crd=True),
    Case("runaijob keeps its spec, warns on unknown fields", [
        post(RUNAIJOBS, runaijob(extra=1, spec={"anything": {"goes": True}}), view="meta")], needs_crd=True),
    Case("runaijob invalid metadata", [post(RUNAIJOBS, runaijob() | {"metadata": {"name": "R_2", "labels": {"a": "b c"}}})],
         needs_crd=True),
    Case("runaijob generateName dry run", [post(RUNAIJOBS, runaijob() | {"metadata": {"generateName": "g-"}}, DRY, "meta")],
         needs_crd=True, generated=["g-"]),
    Case("runaijob list and get", [post(RUNAIJOBS, runaijob(), view="code"), get(RUNAIJOBS, view="meta"),
                                   get(RUNAIJOBS + "/r", view="meta"), get(RUNAIJOBS + "/zz"),
                                   get(RUNAIJOBS, {"fieldSelector": "status.phase=x"})], needs_crd=True),
    Case("runaijob delete", [post(RUNAIJOBS, runaijob(), view="code"),
                             delete(RUNAIJOBS + "/r", {"propagationPolicy": "Background"}), delete(RUNAIJOBS + "/r")],
         needs_crd=True),
    Case("runaijob owns a service", [
        post(RUNAIJOBS, runaijob(), view="code"),
        post(SERVICES, owned(service("dep"), RUNAIJOBS + "/r"), view="code"),
        delete(RUNAIJOBS + "/r", {"propagationPolicy": "Background"}), gone(SERVICES + "/dep")], needs_crd=True),
    Case("runaijob group discovery", [get("/apis/run.ai"), get("/apis/run.ai/v1", view="discovery")], needs_crd=True),
]


# --- running a case on one server -------------------------------------------------------------------

UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SERVER_SET = {"resourceVersion", "creationTimestamp", "deletionTimestamp", "startTime"}


def _fill(value: Any, ns: str, cluster: kube_kit.RealCluster) -> Any:
    """The step's body or path for this namespace, owner references resolved against this server."""
    if isinstance(value, str):
        return value.replace("{ns}", ns)
    if isinstance(value, list):
        return [_fill(item, ns, cluster) for item in value]
    if isinstance(value, dict):
        if "$owner" in value:
            owner = cluster.get(value["$owner"].replace("{ns}", ns))
            return {"apiVersion": owner.get("apiVersion") or ("batch/v1" if "/jobs/" in value["$owner"] else ""),
                    "kind": owner.get("kind") or "Job", "name": owner["metadata"]["name"],
                    "uid": owner["metadata"]["uid"], "blockOwnerDeletion": True}
        return {k: _fill(v, ns, cluster) for k, v in value.items() if v is not None}
    return value


def _normalise(value: Any, generated: list[str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "managedFields":
                continue
            if key in SERVER_SET:
                out[key] = "<set>"
            elif key in ("clusterIP", "clusterIPs"):
                out[key] = "<ip>"
            elif key == "nodePort" and isinstance(item, int) and item not in (31080, 31999, 31998, 30001, 80):
                out[key] = "<allocated>"
            else:
                out[key] = _normalise(item, generated)
        return out
    if isinstance(value, list):
        return [_normalise(item, generated) for item in value]
    if isinstance(value, str):
        value = UID.sub("<uid>", value)
        for prefix in generated:
            value = re.sub(re.escape(prefix) + r"[bcdfghjklmnpqrstvwxz2456789]{5}", prefix + "<gen>", value)
        return value
    return value


def _view(step: Step, status: int, body: Any) -> Any:
    if step.view == "code" or status >= 300 and step.view in ("meta", "names"):
        return None if step.view == "code" else body
    if not isinstance(body, dict):
        return body
    if step.view == "names":
        return sorted(item["metadata"]["name"] for item in body.get("items", []))
    if step.view == "version":
        return sorted(body)
    if step.view == "discovery":
        return [(r["name"], r["kind"], r["namespaced"]) for r in body.get("resources", [])]
    if step.view == "meta":
        def meta(obj: dict) -> dict:
            kept = {k: obj[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in obj}
            if "status" in obj and obj.get("kind") != "Job":   # the Job controller writes status at once
                kept["status"] = obj["status"]
            return kept
        if "items" in body:
            return {**{k: v for k, v in body.items() if k != "items"}, "items": [meta(i) for i in body["items"]]}
        return meta(body)
    return body


def run(cluster: kube_kit.RealCluster, case: Case, ns: str) -> list:
    observed = []
    for index, step in enumerate(case.steps):
        path = _fill(step.path, ns, cluster)
        if step.wait_gone:
            kube_kit.wait_until(lambda: not cluster.exists(path), f"{path} to be gone ({cluster.source})")
            observed.append((index, "gone"))
            continue
        query = _fill(step.query, ns, cluster) if step.query else None
        status, body, headers = cluster.request(step.method, path, _fill(step.body, ns, cluster), query=query,
                                                expect=tuple(range(200, 600)))
        answer = {"status": status, "body": _view(step, status, body)}
        if headers.get("Warning"):
            answer["warning"] = headers["Warning"]
        if not isinstance(body, (dict, list)) and body is not None:
            answer["content-type"] = headers.get("Content-Type")
        observed.append((index, _normalise(answer, case.generated)))
    return observed


# --- the comparison ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakeApiServer(serve_runai=True) as server:
        yield server, kube_kit.connect(server.write_kubeconfig(tmp_path_factory.mktemp("fake") / "kubeconfig"), "fake")


@pytest.fixture(scope="module")
def crd(real_cluster):
    """The RunaiJob CRD for the custom-resource cases; None on a cluster with a CRD of its own (not compared)."""
    ours = real_cluster.install_crd()
    yield ours
    if ours:
        real_cluster.remove_crd()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_fake_answers_like_the_real_api_server(case, real_cluster, fake, crd):
    if case.needs_crd and not crd:
        pytest.skip("the cluster has a RunaiJob CRD of its own; these cases describe tests/crds/runaijob.yaml")
    server, fake_client = fake
    ns = f"diff-{uuid.uuid4().hex[:8]}"
    real_cluster.create_namespace(ns, wait_for_service_account=False)
    server.add_namespace(ns)
    try:
        expected = run(real_cluster, case, ns)
        observed = run(fake_client, case, ns)
    finally:
        real_cluster.delete_namespace(ns)
        fake_client.delete(f"/api/v1/namespaces/{ns}")
    for (index, want), (_, got) in zip(expected, observed):
        if got != want:
            pytest.fail(f"step {index} {case.steps[index].method} {case.steps[index].path}\n"
                        f"real: {json.dumps(want, sort_keys=True)}\nfake: {json.dumps(got, sort_keys=True)}",
                        pytrace=False)


# --- refusals the fake injects, against the real ones ----------------------------------------------

FORBIDDEN = [("POST", JOBS, job()), ("GET", JOBS + "/j", None), ("DELETE", JOBS + "/j", None),
             ("GET", JOBS, None), ("GET", "/apis/batch/v1/jobs", None), ("GET", "/api/v1/namespaces", None),
             ("POST", SERVICES, service()), ("GET", RUNAIJOBS, None)]


@pytest.mark.parametrize("method, path, body", FORBIDDEN, ids=[f"{m} {p}" for m, p, _ in FORBIDDEN])
def test_an_injected_forbidden_is_worded_like_rbac(real_cluster, fake, crd, tmp_path, method, path, body):
    """``fail_request(status=403)`` stands in for RBAC in the fast tests: it must read like a real refusal."""
    server, fake_client = fake
    ns = f"diff-{uuid.uuid4().hex[:8]}"
    real_cluster.create_namespace(ns, wait_for_service_account=False)
    server.add_namespace(ns)
    try:
        token = real_cluster.service_account_token(ns, "nobody")   # a user without any role
        nobody = kube_kit.connect(real_cluster.token_kubeconfig(tmp_path / "nobody", token), "nobody")
        _, want, _ = nobody.request(method, path.format(ns=ns), body, expect=(403,))
        verb = {"POST": "create", "DELETE": "delete"}.get(method) or ("get" if path.endswith("/j") else "list")
        server.fail_request(verb=verb, status=403)
        _, got, _ = fake_client.request(method, path.format(ns=ns), body, expect=(403,))
    finally:
        server.clear_faults()
        real_cluster.delete_namespace(ns)
        fake_client.delete(f"/api/v1/namespaces/{ns}")
    want["message"] = want["message"].replace(f'"system:serviceaccount:{ns}:nobody"', '"fake"')
    assert got == want
