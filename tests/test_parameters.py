"""Every job parameter of the contract (§2, §3, §4): what each accepted input renders to, and what is refused.

Pure and fast: ``load_submit_request`` -> ``render_job``; no HTTP, no cluster. Every manifest rendered here is
also validated against the official Kubernetes 1.37 schemas (``assert_valid_manifest``).
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from runai_submit.errors import BadRequest, ValidationFailed
from runai_submit.model import OwnerRef, SubmitContext
from runai_submit.render import names, render_job
from runai_submit.schemas import load_submit_request
from tests.k8s_schema import assert_valid_manifest

SPEC_DIR = Path("/work/shared/spec")

PROJECT = "team-a"
NAMESPACE = "runai-team-a"
JOB_NAME = "train1"
USER = "john"
IMAGE = "registry.example.com/research/train:1.0"
OWNER_UID = "0f6a4a57-3c4e-4d8f-9f0a-5b1c2d3e4f50"

BASE = {"project": PROJECT, "image": IMAGE, "name": JOB_NAME}

# Labels every object (and every pod) carries, contract §4.
JOB_LABELS = {
    "release": JOB_NAME,
    "app": "runaijob",
    "createdBy": "RunaiJob",
    "project": PROJECT,
    "app.kubernetes.io/managed-by": "runai-submit",
}

# Kubernetes label value syntax, written independently of the package's own regex.
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS1035_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

class _Missing:
    def __repr__(self) -> str:
        return "<absent>"


MISSING = _Missing()


# --- helpers --------------------------------------------------------------------------------------


def context(name: str = JOB_NAME, *, user: str = USER, kind: str = "RunaiJob", **extra) -> SubmitContext:
    api_version = "run.ai/v1" if kind == "RunaiJob" else "batch/v1"
    return SubmitContext(
        name=name, namespace=NAMESPACE, user=user, workload_api_version=api_version, workload_kind=kind, **extra
    )


def owner_of(ctx: SubmitContext) -> OwnerRef:
    return OwnerRef(ctx.workload_api_version, ctx.workload_kind, ctx.name, OWNER_UID)


def render(job: dict, *, base: dict | None = BASE, ctx: SubmitContext | None = None) -> list[dict]:
    """Load ``{"job": base + job}``, render every manifest and check each against the Kubernetes schemas."""
    fields = {**(base or {}), **job}
    spec = load_submit_request({"job": copy.deepcopy(fields)})
    ctx = ctx or context(spec.name or JOB_NAME)
    manifests = render_job(spec, ctx, owner_of(ctx))
    assert manifests, "render_job returned nothing"
    for manifest in manifests:
        assert_valid_manifest(manifest)
    return manifests


def rejected(job: dict, *, base: dict | None = BASE) -> list:
    """The FieldErrors of a refused job (the test fails if it is accepted)."""
    fields = {**(base or {}), **job}
    with pytest.raises(ValidationFailed) as info:
        load_submit_request({"job": copy.deepcopy(fields)})
    errors = info.value.errors
    assert errors, "ValidationFailed without field errors"
    assert info.value.status == 422
    for error in errors:
        assert error.field.startswith("/"), error
        assert error.message.strip(), error
    return errors


def objects_of(manifests: list[dict], kind: str) -> list[dict]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[dict], kind: str) -> dict:
    found = objects_of(manifests, kind)
    assert len(found) == 1, f"expected exactly one {kind}, got {[m['metadata']['name'] for m in found]}"
    return found[0]


def at(manifests: list[dict], path: tuple):
    """The value at ``path``; the first element picks the object ("W" = workload, "Service", "Ingress", "PVC")."""
    head, *rest = path
    if head == "W":
        node = manifests[0]
        assert node["kind"] in ("RunaiJob", "Job"), "the workload must come first"
    elif head == "PVC":
        node = objects_of(manifests, "PersistentVolumeClaim")
    else:
        found = objects_of(manifests, head)
        if not found:
            return MISSING
        node = one(manifests, head)
    for key in rest:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return MISSING
    return node


def workload(manifests: list[dict]) -> dict:
    return manifests[0]


def pod_spec(manifests: list[dict]) -> dict:
    return manifests[0]["spec"]["template"]["spec"]


def container(manifests: list[dict]) -> dict:
    containers = pod_spec(manifests)["containers"]
    assert len(containers) == 1, "a job has exactly one container"
    return containers[0]


def env_entries(manifests: list[dict], name: str) -> list[dict]:
    return [entry for entry in container(manifests).get("env", []) if entry["name"] == name]


def mounted(manifests: list[dict], mount_path: str) -> tuple[dict, dict]:
    """The (volume, volumeMount) pair mounted at ``mount_path``; exactly one."""
    mounts = [m for m in container(manifests).get("volumeMounts", []) if m["mountPath"] == mount_path]
    assert len(mounts) == 1, f"expected one mount at {mount_path}, got {mounts}"
    volumes = [v for v in pod_spec(manifests).get("volumes", []) if v["name"] == mounts[0]["name"]]
    assert len(volumes) == 1, f"expected one volume named {mounts[0]['name']}, got {volumes}"
    return volumes[0], mounts[0]


def volume_source(volume: dict) -> dict:
    return {key: value for key, value in volume.items() if key != "name"}


def pointers(errors: list) -> list[str]:
    return [error.field for error in errors]


def assert_error(errors: list, pointer: str, keywords: tuple[str, ...], *, prefix: bool = False) -> None:
    """An error at ``pointer`` (or under it, with ``prefix``) whose message names the rule (any keyword)."""
    if prefix:
        matching = [e for e in errors if e.field == pointer or e.field.startswith(pointer + "/")]
    else:
        matching = [e for e in errors if e.field == pointer]
    assert matching, f"no error at {pointer!r}{' or below' if prefix else ''}; got {[e.to_dict() for e in errors]}"
    if keywords:
        assert any(k.lower() in e.message.lower() for e in matching for k in keywords), (
            f"the error at {pointer} does not name the rule (one of {keywords}): {[e.message for e in matching]}"
        )


# Paths into the rendered objects.
W_META = ("W", "metadata")
W_SPEC = ("W", "spec")
T_META = ("W", "spec", "template", "metadata")
POD = ("W", "spec", "template", "spec")
C = ("W", "spec", "template", "spec", "containers", 0)
LIMITS = C + ("resources", "limits")
REQUESTS = C + ("resources", "requests")
SVC_PORTS = ("Service", "spec", "ports")
ING_PATHS = ("Ingress", "spec", "rules", 0, "http", "paths")


# --- the worked example ---------------------------------------------------------------------------


def test_seed_request_renders_exactly_the_seed_workload():
    request = yaml.safe_load((SPEC_DIR / "examples" / "seed-request.json").read_text())
    expected_text = (SPEC_DIR / "examples" / "seed-workload.yaml").read_text().replace("<name>", "job-x7k2p")
    expected = yaml.safe_load(expected_text)
    spec = load_submit_request(request)
    ctx = context("job-x7k2p")
    manifests = render_job(spec, ctx, owner_of(ctx))
    assert manifests == [expected]
    assert_valid_manifest(manifests[0])


def test_the_same_spec_renders_a_valid_batch_v1_job():
    manifests = render({"gpu": 1, "pvc": [":1Gi:/data"], "ports": [8080], "serviceType": "ingress"},
                       ctx=context(kind="Job"))
    assert (manifests[0]["apiVersion"], manifests[0]["kind"]) == ("batch/v1", "Job")
    assert at(manifests, POD + ("restartPolicy",)) == "Never"
    assert at(manifests, POD + ("schedulerName",)) == "runai-scheduler"
    assert one(manifests, "Service")["metadata"]["ownerReferences"][0]["kind"] == "Job"


def test_scheduler_name_comes_from_the_context():
    manifests = render({}, ctx=context(scheduler_name="default-scheduler"))
    assert at(manifests, POD + ("schedulerName",)) == "default-scheduler"


# --- accepted inputs -> exact manifest fields ------------------------------------------------------


def case(case_id: str, job: dict, path: tuple, expected):
    return pytest.param(job, path, expected, id=case_id)


ACCEPTED = [
    # name
    case("name-workload", {"name": "my-job"}, W_META + ("name",), "my-job"),
    case("name-namespace-from-context", {}, W_META + ("namespace",), NAMESPACE),
    case("name-container", {"name": "my-job"}, C + ("name",), "my-job"),
    case("name-63-chars", {"name": "a" * 63}, W_META + ("name",), "a" * 63),
    case("name-digits-and-dashes", {"name": "a1-b2-c3"}, C + ("name",), "a1-b2-c3"),
    case("name-service", {"name": "my-job", "ports": [80], "serviceType": "clusterip"},
         ("Service", "metadata", "name"), "my-job"),
    case("name-ingress", {"name": "my-job", "ports": [80], "serviceType": "ingress"},
         ("Ingress", "metadata", "name"), "my-job"),
    case("name-pvc-infix", {"name": "my-job", "pvc": [":1Gi:/data"]}, ("PVC", 0, "metadata", "name"), "pvc-my-job-0"),
    # project
    case("project-label", {}, W_META + ("labels", "project"), PROJECT),
    case("project-leading-digit-dns1123", {"project": "1team"}, W_META + ("labels", "project"), "1team"),
    case("project-label-on-pod", {}, T_META + ("labels", "project"), PROJECT),
    # interactive
    case("interactive-priority-build", {"interactive": True}, W_META + ("labels", "priorityClassName"), "build"),
    case("interactive-backoff-0", {"interactive": True}, W_SPEC + ("backoffLimit",), 0),
    case("interactive-completions-1", {"interactive": True}, W_SPEC + ("completions",), 1),
    case("interactive-explicit-backoff-0", {"interactive": True, "backoffLimit": 0}, W_SPEC + ("backoffLimit",), 0),
    case("interactive-explicit-completions-1", {"interactive": True, "completions": 1}, W_SPEC + ("completions",), 1),
    case("interactive-preemptible", {"interactive": True, "preemptible": True},
         W_META + ("labels", "priorityClassName"), "interactive-preemptible"),
    case("interactive-not-preemptible", {"interactive": True, "preemptible": False},
         W_META + ("labels", "priorityClassName"), "build"),
    case("training-no-priority-label", {"interactive": False}, W_META + ("labels", "priorityClassName"), MISSING),
    case("training-by-default", {}, W_META + ("labels", "priorityClassName"), MISSING),
    case("training-preemptible-false-ok", {"preemptible": False}, W_META + ("labels", "priorityClassName"), MISSING),
    case("training-default-backoff-unset", {}, W_SPEC + ("backoffLimit",), MISSING),
    # image
    case("image", {}, C + ("image",), IMAGE),
    case("image-digest", {"image": "busybox@sha256:" + "a" * 64}, C + ("image",), "busybox@sha256:" + "a" * 64),
    # command
    case("command-string-split", {"command": "python train.py --epochs 3"}, C + ("command",),
         ["python", "train.py", "--epochs", "3"]),
    case("command-string-quotes", {"command": "sh -c 'echo hello world'"}, C + ("command",),
         ["sh", "-c", "echo hello world"]),
    case("command-string-double-quotes-escapes", {"command": 'echo "a b" c\\ d'}, C + ("command",),
         ["echo", "a b", "c d"]),
    case("command-string-extra-spaces", {"command": "  run   now "}, C + ("command",), ["run", "now"]),
    case("command-array-verbatim", {"command": ["python", "a b.py", "--x='1 2'"]}, C + ("command",),
         ["python", "a b.py", "--x='1 2'"]),
    case("command-empty-array", {"command": []}, C + ("command",), MISSING),
    case("command-absent", {}, C + ("command",), MISSING),
    # arguments
    case("arguments", {"arguments": ["--lr", "0.1", "a b"]}, C + ("args",), ["--lr", "0.1", "a b"]),
    case("arguments-with-command", {"command": "python", "arguments": ["x.py"]}, C + ("args",), ["x.py"]),
    case("arguments-absent", {}, C + ("args",), MISSING),
    # environment
    case("env-string", {"environment": {"A": "x y"}}, C + ("env",), [{"name": "A", "value": "x y"}]),
    case("env-true", {"environment": {"B": True}}, C + ("env",), [{"name": "B", "value": "true"}]),
    case("env-false", {"environment": {"B": False}}, C + ("env",), [{"name": "B", "value": "false"}]),
    case("env-int", {"environment": {"N": 50}}, C + ("env",), [{"name": "N", "value": "50"}]),
    case("env-zero", {"environment": {"N": 0}}, C + ("env",), [{"name": "N", "value": "0"}]),
    case("env-negative", {"environment": {"N": -3}}, C + ("env",), [{"name": "N", "value": "-3"}]),
    case("env-float", {"environment": {"F": 0.2}}, C + ("env",), [{"name": "F", "value": "0.2"}]),
    case("env-empty-string", {"environment": {"E": ""}}, C + ("env",), [{"name": "E", "value": ""}]),
    case("env-order-kept", {"environment": {"Z": "1", "A": 2, "M": True}}, C + ("env",),
         [{"name": "Z", "value": "1"}, {"name": "A", "value": "2"}, {"name": "M", "value": "true"}]),
    case("env-names-dash-dot-underscore", {"environment": {"MY-VAR": "1", "my.var": "2", "_x": "3"}}, C + ("env",),
         [{"name": "MY-VAR", "value": "1"}, {"name": "my.var", "value": "2"}, {"name": "_x", "value": "3"}]),
    case("env-secret", {"environment": {"PW": "SECRET:db-creds,password"}}, C + ("env",),
         [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}}]),
    case("env-secret-dotted-key", {"environment": {"CERT": "SECRET:tls.certs,tls.crt"}}, C + ("env",),
         [{"name": "CERT", "valueFrom": {"secretKeyRef": {"name": "tls.certs", "key": "tls.crt"}}}]),
    case("env-secret-and-literal", {"environment": {"PW": "SECRET:s,k", "USER": "me"}}, C + ("env",),
         [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}, {"name": "USER", "value": "me"}]),
    case("env-empty-map", {"environment": {}}, C + ("env",), MISSING),
    # imagePullPolicy
    case("pull-default-always", {}, C + ("imagePullPolicy",), "Always"),
    case("pull-Always", {"imagePullPolicy": "Always"}, C + ("imagePullPolicy",), "Always"),
    case("pull-always-lower", {"imagePullPolicy": "always"}, C + ("imagePullPolicy",), "Always"),
    case("pull-ifnotpresent-lower", {"imagePullPolicy": "ifnotpresent"}, C + ("imagePullPolicy",), "IfNotPresent"),
    case("pull-IFNOTPRESENT", {"imagePullPolicy": "IFNOTPRESENT"}, C + ("imagePullPolicy",), "IfNotPresent"),
    case("pull-IfNotPresent", {"imagePullPolicy": "IfNotPresent"}, C + ("imagePullPolicy",), "IfNotPresent"),
    case("pull-never-lower", {"imagePullPolicy": "never"}, C + ("imagePullPolicy",), "Never"),
    case("pull-NEVER", {"imagePullPolicy": "NEVER"}, C + ("imagePullPolicy",), "Never"),
    # stdin / tty
    case("stdin", {"stdin": True}, C + ("stdin",), True),
    case("stdin-without-tty", {"stdin": True}, C + ("tty",), MISSING),
    case("stdin-tty-stdin", {"stdin": True, "tty": True}, C + ("stdin",), True),
    case("stdin-tty-tty", {"stdin": True, "tty": True}, C + ("tty",), True),
    case("stdin-false", {"stdin": False}, C + ("stdin",), MISSING),
    case("tty-false-without-stdin-ok", {"tty": False}, C + ("tty",), MISSING),
    # workingDir
    case("workingDir", {"workingDir": "/workspace/src"}, C + ("workingDir",), "/workspace/src"),
    case("workingDir-root", {"workingDir": "/"}, C + ("workingDir",), "/"),
    case("workingDir-absent", {}, C + ("workingDir",), MISSING),
    # gpu
    case("gpu-1", {"gpu": 1}, LIMITS + ("nvidia.com/gpu",), "1"),
    case("gpu-2", {"gpu": 2}, LIMITS + ("nvidia.com/gpu",), "2"),
    case("gpu-2.0-float", {"gpu": 2.0}, LIMITS + ("nvidia.com/gpu",), "2"),
    case("gpu-1.0-float", {"gpu": 1.0}, LIMITS + ("nvidia.com/gpu",), "1"),
    case("gpu-8", {"gpu": 8}, LIMITS + ("nvidia.com/gpu",), "8"),
    case("gpu-whole-no-fraction", {"gpu": 2}, T_META + ("annotations", "gpu-fraction"), MISSING),
    case("gpu-half-fraction", {"gpu": 0.5}, T_META + ("annotations", "gpu-fraction"), "0.5"),
    case("gpu-quarter-fraction", {"gpu": 0.25}, T_META + ("annotations", "gpu-fraction"), "0.25"),
    case("gpu-tenth-fraction", {"gpu": 0.1}, T_META + ("annotations", "gpu-fraction"), "0.1"),
    case("gpu-fraction-no-limit", {"gpu": 0.5}, LIMITS + ("nvidia.com/gpu",), MISSING),
    case("gpu-fraction-no-workload-annotation", {"gpu": 0.5}, W_META + ("annotations", "gpu-fraction"), MISSING),
    case("gpu-0-no-resources", {"gpu": 0}, C + ("resources",), MISSING),
    case("gpu-0-no-fraction", {"gpu": 0}, T_META + ("annotations", "gpu-fraction"), MISSING),
    case("gpu-0.0-no-resources", {"gpu": 0.0}, C + ("resources",), MISSING),
    case("gpu-absent-no-resources", {}, C + ("resources",), MISSING),
    case("gpu-null-no-resources", {"gpu": None}, C + ("resources",), MISSING),
    # cpu / cpuLimit
    case("cpu-half", {"cpu": 0.5}, REQUESTS + ("cpu",), "0.5"),
    case("cpu-2", {"cpu": 2}, REQUESTS + ("cpu",), "2"),
    case("cpu-2.0", {"cpu": 2.0}, REQUESTS + ("cpu",), "2"),
    case("cpu-0.25", {"cpu": 0.25}, REQUESTS + ("cpu",), "0.25"),
    case("cpu-no-limit", {"cpu": 2}, LIMITS + ("cpu",), MISSING),
    case("cpuLimit", {"cpuLimit": 4}, LIMITS + ("cpu",), "4"),
    case("cpuLimit-fraction", {"cpuLimit": 1.5}, LIMITS + ("cpu",), "1.5"),
    case("cpuLimit-no-request", {"cpuLimit": 4}, REQUESTS + ("cpu",), MISSING),
    case("cpuLimit-equal-cpu", {"cpu": 2, "cpuLimit": 2}, LIMITS + ("cpu",), "2"),
    case("cpu-and-limit-resources", {"cpu": 1, "cpuLimit": 3}, C + ("resources",),
         {"requests": {"cpu": "1"}, "limits": {"cpu": "3"}}),
    # memory / memoryLimit
    case("memory-3GB", {"memory": "3GB"}, REQUESTS + ("memory",), "3G"),
    case("memory-512MB", {"memory": "512MB"}, REQUESTS + ("memory",), "512M"),
    case("memory-100KB", {"memory": "100KB"}, REQUESTS + ("memory",), "100k"),
    case("memory-1TB", {"memory": "1TB"}, REQUESTS + ("memory",), "1T"),
    case("memory-4Gi", {"memory": "4Gi"}, REQUESTS + ("memory",), "4Gi"),
    case("memory-512Mi", {"memory": "512Mi"}, REQUESTS + ("memory",), "512Mi"),
    case("memory-1.5G", {"memory": "1.5G"}, REQUESTS + ("memory",), "1.5G"),
    case("memory-plain-bytes", {"memory": "1048576"}, REQUESTS + ("memory",), "1048576"),
    case("memory-no-limit", {"memory": "1G"}, LIMITS + ("memory",), MISSING),
    case("memoryLimit-8GB", {"memoryLimit": "8GB"}, LIMITS + ("memory",), "8G"),
    case("memoryLimit-Gi", {"memoryLimit": "8Gi"}, LIMITS + ("memory",), "8Gi"),
    case("memoryLimit-equal-in-other-units", {"memory": "1G", "memoryLimit": "1000MB"}, LIMITS + ("memory",), "1000M"),
    case("memory-and-limit", {"memory": "2GB", "memoryLimit": "4Gi"}, C + ("resources",),
         {"requests": {"memory": "2G"}, "limits": {"memory": "4Gi"}}),
    case("all-resources", {"gpu": 2, "cpu": 4, "cpuLimit": 8, "memory": "16GB", "memoryLimit": "32GB"},
         C + ("resources",),
         {"requests": {"cpu": "4", "memory": "16G"}, "limits": {"cpu": "8", "memory": "32G", "nvidia.com/gpu": "2"}}),
    # hostIpc / hostNetwork
    case("hostIpc", {"hostIpc": True}, POD + ("hostIPC",), True),
    case("hostIpc-false", {"hostIpc": False}, POD + ("hostIPC",), MISSING),
    case("hostNetwork", {"hostNetwork": True}, POD + ("hostNetwork",), True),
    case("hostNetwork-false", {"hostNetwork": False}, POD + ("hostNetwork",), MISSING),
    # ports: container side
    case("ports-int", {"ports": [8080]}, C + ("ports",), [{"containerPort": 8080, "protocol": "TCP"}]),
    case("ports-object", {"ports": [{"container": 8080}]}, C + ("ports",),
         [{"containerPort": 8080, "protocol": "TCP"}]),
    case("ports-string-container", {"ports": ["8080"]}, C + ("ports",), [{"containerPort": 8080, "protocol": "TCP"}]),
    case("ports-string-external-container", {"ports": ["30080:8080"]}, C + ("ports",),
         [{"containerPort": 8080, "protocol": "TCP"}]),
    case("ports-mixed-shapes", {"ports": [80, {"container": 443, "external": 8443}, "9000:9090"]}, C + ("ports",),
         [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"},
          {"containerPort": 9090, "protocol": "TCP"}]),
    case("ports-edges", {"ports": [1, 65535]}, C + ("ports",),
         [{"containerPort": 1, "protocol": "TCP"}, {"containerPort": 65535, "protocol": "TCP"}]),
    case("ports-without-serviceType-no-service", {"ports": [8080]}, ("Service",), MISSING),
    case("ports-without-serviceType-no-ingress", {"ports": [8080]}, ("Ingress",), MISSING),
    # serviceType -> Service type
    case("svc-nodeport", {"ports": [80], "serviceType": "nodeport"}, ("Service", "spec", "type"), "NodePort"),
    case("svc-NodePort-case", {"ports": [80], "serviceType": "NodePort"}, ("Service", "spec", "type"), "NodePort"),
    case("svc-loadbalancer", {"ports": [80], "serviceType": "loadbalancer"}, ("Service", "spec", "type"),
         "LoadBalancer"),
    case("svc-LoadBalancer-case", {"ports": [80], "serviceType": "LoadBalancer"}, ("Service", "spec", "type"),
         "LoadBalancer"),
    case("svc-clusterip", {"ports": [80], "serviceType": "clusterip"}, ("Service", "spec", "type"), "ClusterIP"),
    case("svc-ClusterIP-case", {"ports": [80], "serviceType": "ClusterIP"}, ("Service", "spec", "type"), "ClusterIP"),
    case("svc-portforward", {"ports": [80], "serviceType": "portforward"}, ("Service", "spec", "type"), "ClusterIP"),
    case("svc-PORTFORWARD-case", {"ports": [80], "serviceType": "PORTFORWARD"}, ("Service", "spec", "type"),
         "ClusterIP"),
    case("svc-ingress-clusterip", {"ports": [80], "serviceType": "ingress"}, ("Service", "spec", "type"), "ClusterIP"),
    case("svc-Ingress-case", {"ports": [80], "serviceType": "Ingress"}, ("Ingress", "kind"), "Ingress"),
    case("svc-ingress-api-version", {"ports": [80], "serviceType": "ingress"}, ("Ingress", "apiVersion"),
         "networking.k8s.io/v1"),
    case("svc-nodeport-no-ingress", {"ports": [80], "serviceType": "nodeport"}, ("Ingress",), MISSING),
    case("svc-loadbalancer-no-ingress", {"ports": [80], "serviceType": "loadbalancer"}, ("Ingress",), MISSING),
    case("svc-clusterip-no-ingress", {"ports": [80], "serviceType": "clusterip"}, ("Ingress",), MISSING),
    case("svc-portforward-no-ingress", {"ports": [80], "serviceType": "portforward"}, ("Ingress",), MISSING),
    case("svc-null-no-service", {"ports": [80], "serviceType": None}, ("Service",), MISSING),
    # backoffLimit / completions / parallelism
    case("backoffLimit-3", {"backoffLimit": 3}, W_SPEC + ("backoffLimit",), 3),
    case("backoffLimit-0", {"backoffLimit": 0}, W_SPEC + ("backoffLimit",), 0),
    case("backoffLimit-float-whole", {"backoffLimit": 2.0}, W_SPEC + ("backoffLimit",), 2),
    case("completions-5", {"completions": 5}, W_SPEC + ("completions",), 5),
    case("completions-absent", {}, W_SPEC + ("completions",), MISSING),
    case("parallelism-with-completions", {"completions": 4, "parallelism": 2}, W_SPEC + ("parallelism",), 2),
    case("parallelism-with-completions-c", {"completions": 4, "parallelism": 2}, W_SPEC + ("completions",), 4),
    case("parallelism-1-alone", {"parallelism": 1}, W_SPEC + ("parallelism",), 1),
    case("parallelism-1-elastic", {"parallelism": 1, "elastic": True}, W_SPEC + ("parallelism",), 1),
    case("parallelism-2-elastic-false", {"parallelism": 2, "completions": 2, "elastic": False},
         W_SPEC + ("parallelism",), 2),
    case("parallelism-2-interactive-false", {"parallelism": 2, "completions": 2, "interactive": False},
         W_SPEC + ("parallelism",), 2),
    case("parallelism-absent", {}, W_SPEC + ("parallelism",), MISSING),
    # elastic
    case("elastic", {"elastic": True}, T_META + ("annotations", "elastic"), "true"),
    case("elastic-false", {"elastic": False}, T_META + ("annotations", "elastic"), MISSING),
    case("elastic-absent", {}, T_META + ("annotations", "elastic"), MISSING),
    # preventPrivilegeEscalation
    case("ppe", {"preventPrivilegeEscalation": True}, C + ("securityContext",), {"allowPrivilegeEscalation": False}),
    case("ppe-false", {"preventPrivilegeEscalation": False}, C + ("securityContext",), MISSING),
    # nodeType
    case("nodeType", {"nodeType": "dgx-a100"}, POD + ("nodeSelector",), {"run.ai/type": "dgx-a100"}),
    case("nodeType-dots-underscores", {"nodeType": "A100_80GB.v2"}, POD + ("nodeSelector",),
         {"run.ai/type": "A100_80GB.v2"}),
    case("nodeType-63", {"nodeType": "n" * 63}, POD + ("nodeSelector",), {"run.ai/type": "n" * 63}),
    case("nodeType-absent", {}, POD + ("nodeSelector",), MISSING),
    # pod basics
    case("restartPolicy-never", {}, POD + ("restartPolicy",), "Never"),
    case("schedulerName-default", {}, POD + ("schedulerName",), "runai-scheduler"),
    case("workload-has-no-owner", {"ports": [80], "serviceType": "ingress"}, W_META + ("ownerReferences",), MISSING),
]


@pytest.mark.parametrize(("job", "path", "expected"), ACCEPTED)
def test_accepted_input_renders_exact_field(job, path, expected):
    manifests = render(job)
    assert at(manifests, path) == expected


# --- ttlAfterFinish: Go durations plus days, rounded half away from zero ---------------------------

TTL_CASES = [
    (0, 0),
    (100, 100),
    (3600.0, 3600),
    ("0s", 0),
    ("90s", 90),
    ("1m30s", 90),
    ("1h30m", 5400),
    ("1.5h", 5400),
    ("1h", 3600),
    ("1d", 86400),
    ("2d12h", 216000),
    ("1.5s", 2),
    ("2.5s", 3),
    ("3.5s", 4),
    ("0.5s", 1),
    ("500ms", 1),
    ("499ms", 0),
    ("1500ms", 2),
    ("2500ms", 3),
    ("1m0.5s", 61),
    ("500000us", 1),
    ("499999us", 0),
    ("1µs", 0),
    # Go durations are nanoseconds: 0.499999999 s is below one half and rounds to 0, 1.499999999 s to 1.
    ("499999999ns", 0),
    ("1499999999ns", 1),
    ("500000000ns", 1),
    # Go's time.ParseDuration accepts a bare "0" and a leading "+".
    ("0", 0),
    ("+90s", 90),
]


@pytest.mark.parametrize(("given", "seconds"), TTL_CASES, ids=[repr(c[0]) for c in TTL_CASES])
def test_ttl_after_finish(given, seconds):
    manifests = render({"ttlAfterFinish": given})
    assert at(manifests, W_SPEC + ("ttlSecondsAfterFinished",)) == seconds
    assert type(at(manifests, W_SPEC + ("ttlSecondsAfterFinished",))) is int


def test_ttl_after_finish_absent():
    assert at(render({}), W_SPEC + ("ttlSecondsAfterFinished",)) is MISSING


def test_ttl_after_finish_on_interactive_job():
    manifests = render({"interactive": True, "ttlAfterFinish": "10m"})
    assert at(manifests, W_SPEC + ("ttlSecondsAfterFinished",)) == 600


# --- mounts: createHomeDir, largeShm, pvc, volume(s) -----------------------------------------------

MOUNTS = [
    pytest.param({"createHomeDir": True}, "/home/runai-home", None, {"emptyDir": {}}, False, id="createHomeDir"),
    pytest.param({"largeShm": True}, "/dev/shm", "dshm", {"emptyDir": {"medium": "Memory"}}, False, id="largeShm"),
    pytest.param({"pvc": [{"storageClass": "fast", "size": "10Gi", "path": "/data"}]}, "/data", None,
                 {"persistentVolumeClaim": {"claimName": "pvc-train1-0"}}, False, id="pvc-new-object"),
    pytest.param({"pvc": [{"size": "1Gi", "path": "/data", "readOnly": True}]}, "/data", None,
                 {"persistentVolumeClaim": {"claimName": "pvc-train1-0"}}, True, id="pvc-new-object-ro"),
    pytest.param({"pvc": [{"claimName": "shared-data", "path": "/shared"}]}, "/shared", None,
                 {"persistentVolumeClaim": {"claimName": "shared-data"}}, False, id="pvc-existing-object"),
    pytest.param({"pvc": [{"claimName": "shared-data", "path": "/shared", "readOnly": True}]}, "/shared", None,
                 {"persistentVolumeClaim": {"claimName": "shared-data"}}, True, id="pvc-existing-object-ro"),
    pytest.param({"pvc": ["fast:10Gi:/data"]}, "/data", None,
                 {"persistentVolumeClaim": {"claimName": "pvc-train1-0"}}, False, id="pvc-cli-new"),
    pytest.param({"pvc": ["fast:10Gi:/data:ro"]}, "/data", None,
                 {"persistentVolumeClaim": {"claimName": "pvc-train1-0"}}, True, id="pvc-cli-new-ro"),
    pytest.param({"pvc": [":5Gi:/scratch"]}, "/scratch", None,
                 {"persistentVolumeClaim": {"claimName": "pvc-train1-0"}}, False, id="pvc-cli-default-class"),
    pytest.param({"pvc": ["shared-data:/shared"]}, "/shared", None,
                 {"persistentVolumeClaim": {"claimName": "shared-data"}}, False, id="pvc-cli-existing"),
    pytest.param({"pvc": ["shared-data:/shared:ro"]}, "/shared", None,
                 {"persistentVolumeClaim": {"claimName": "shared-data"}}, True, id="pvc-cli-existing-ro"),
    pytest.param({"pvc": ["shared-data:/a", ":1Gi:/b"]}, "/b", None,
                 {"persistentVolumeClaim": {"claimName": "pvc-train1-1"}}, False, id="pvc-index-counts-all-items"),
    pytest.param({"volume": {"/mnt/datasets": "/datasets"}}, "/datasets", "host-path-volume-0",
                 {"hostPath": {"path": "/mnt/datasets"}}, False, id="volume-map"),
    pytest.param({"volume": {"/a": "/x", "/b": "/y"}}, "/y", "host-path-volume-1",
                 {"hostPath": {"path": "/b"}}, False, id="volume-map-second"),
    pytest.param({"volumes": [{"sourcePath": "/mnt/d", "targetPath": "/d"}]}, "/d", "host-path-volume-0",
                 {"hostPath": {"path": "/mnt/d"}}, False, id="volumes-object"),
    pytest.param({"volumes": [{"sourcePath": "/mnt/d", "targetPath": "/d", "readOnly": True}]}, "/d",
                 "host-path-volume-0", {"hostPath": {"path": "/mnt/d"}}, True, id="volumes-object-ro"),
    pytest.param({"volumes": [{"sourcePath": "/mnt/d", "targetPath": "/d", "readOnly": False}]}, "/d",
                 "host-path-volume-0", {"hostPath": {"path": "/mnt/d"}}, False, id="volumes-object-rw"),
    pytest.param({"volumes": ["/mnt/d:/d"]}, "/d", "host-path-volume-0", {"hostPath": {"path": "/mnt/d"}}, False,
                 id="volumes-cli"),
    pytest.param({"volumes": ["/mnt/d:/d:ro"]}, "/d", "host-path-volume-0", {"hostPath": {"path": "/mnt/d"}}, True,
                 id="volumes-cli-ro"),
    pytest.param({"volumes": ["/mnt/d:/d:rw"]}, "/d", "host-path-volume-0", {"hostPath": {"path": "/mnt/d"}}, False,
                 id="volumes-cli-rw"),
    pytest.param({"volumes": ["/a:/x", "/b:/y:ro"]}, "/y", "host-path-volume-1", {"hostPath": {"path": "/b"}}, True,
                 id="volumes-cli-second"),
]


@pytest.mark.parametrize(("job", "mount_path", "volume_name", "source", "read_only"), MOUNTS)
def test_mount(job, mount_path, volume_name, source, read_only):
    manifests = render(job)
    volume, mount = mounted(manifests, mount_path)
    assert volume_source(volume) == source
    if volume_name is not None:
        assert volume["name"] == volume_name
    assert mount.get("readOnly", False) is read_only
    if not read_only:
        assert "readOnly" not in mount or mount["readOnly"] is False


def test_volume_map_and_volumes_array_together():
    manifests = render({"volume": {"/h1": "/c1"}, "volumes": [{"sourcePath": "/h2", "targetPath": "/c2"}, "/h3:/c3:ro"]})
    volumes = [v for v in pod_spec(manifests)["volumes"] if "hostPath" in v]
    assert volumes == [
        {"name": "host-path-volume-0", "hostPath": {"path": "/h1"}},
        {"name": "host-path-volume-1", "hostPath": {"path": "/h2"}},
        {"name": "host-path-volume-2", "hostPath": {"path": "/h3"}},
    ]
    assert [m for m in container(manifests)["volumeMounts"] if m["name"].startswith("host-path-volume-")] == [
        {"name": "host-path-volume-0", "mountPath": "/c1"},
        {"name": "host-path-volume-1", "mountPath": "/c2"},
        {"name": "host-path-volume-2", "mountPath": "/c3", "readOnly": True},
    ]


def test_every_mount_has_its_volume_and_names_are_unique():
    manifests = render({
        "createHomeDir": True, "largeShm": True, "volume": {"/h": "/c"}, "volumes": ["/h2:/c2"],
        "pvc": [":1Gi:/p0", "existing:/p1", "fast:2Gi:/p2:ro"],
    })
    volumes = pod_spec(manifests)["volumes"]
    mounts = container(manifests)["volumeMounts"]
    volume_names = [v["name"] for v in volumes]
    assert len(volume_names) == len(set(volume_names)) == 7
    assert sorted(m["name"] for m in mounts) == sorted(volume_names)
    assert sorted(m["mountPath"] for m in mounts) == sorted(
        ["/home/runai-home", "/dev/shm", "/c", "/c2", "/p0", "/p1", "/p2"]
    )


def test_no_volumes_without_mount_parameters():
    manifests = render({})
    assert "volumes" not in pod_spec(manifests)
    assert "volumeMounts" not in container(manifests)


# --- createHomeDir and HOME -----------------------------------------------------------------------


def test_create_home_dir_sets_home():
    manifests = render({"createHomeDir": True})
    assert container(manifests)["env"] == [{"name": "HOME", "value": "/home/runai-home"}]
    volume, mount = mounted(manifests, "/home/runai-home")
    assert volume_source(volume) == {"emptyDir": {}}


def test_create_home_dir_keeps_other_variables():
    manifests = render({"createHomeDir": True, "environment": {"A": "1"}})
    assert env_entries(manifests, "A") == [{"name": "A", "value": "1"}]
    assert env_entries(manifests, "HOME") == [{"name": "HOME", "value": "/home/runai-home"}]


@pytest.mark.parametrize("home", ["/root", "SECRET:homes,john"], ids=["literal", "secret"])
def test_user_home_wins_over_create_home_dir(home):
    manifests = render({"createHomeDir": True, "environment": {"HOME": home, "B": "2"}})
    homes = env_entries(manifests, "HOME")
    assert len(homes) == 1, f"two HOME entries: {homes}"
    if home.startswith("SECRET:"):
        assert homes[0] == {"name": "HOME", "valueFrom": {"secretKeyRef": {"name": "homes", "key": "john"}}}
    else:
        assert homes[0] == {"name": "HOME", "value": "/root"}
    # The home volume is still there; only the variable is the user's.
    volume, _ = mounted(manifests, "/home/runai-home")
    assert volume_source(volume) == {"emptyDir": {}}


def test_without_create_home_dir_no_home():
    manifests = render({"createHomeDir": False})
    assert env_entries(manifests, "HOME") == []
    assert all(m["mountPath"] != "/home/runai-home" for m in container(manifests).get("volumeMounts", []))


# --- PVC objects ----------------------------------------------------------------------------------

PVC_OBJECTS = [
    pytest.param({"pvc": [{"storageClass": "fast", "size": "10Gi", "path": "/data"}]},
                 [("pvc-train1-0", {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                                    "resources": {"requests": {"storage": "10Gi"}}, "storageClassName": "fast"})],
                 id="object-with-class"),
    pytest.param({"pvc": [{"size": "3GB", "path": "/data", "readOnly": True}]},
                 [("pvc-train1-0", {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                                    "resources": {"requests": {"storage": "3G"}}})],
                 id="object-default-class-3GB"),
    pytest.param({"pvc": ["fast-ssd:100GB:/data:ro"]},
                 [("pvc-train1-0", {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                                    "resources": {"requests": {"storage": "100G"}}, "storageClassName": "fast-ssd"})],
                 id="cli-sc-size-path-ro"),
    pytest.param({"pvc": [":500Mi:/scratch"]},
                 [("pvc-train1-0", {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                                    "resources": {"requests": {"storage": "500Mi"}}})],
                 id="cli-empty-class"),
    pytest.param({"pvc": ["claim-a:/a", {"claimName": "claim-b", "path": "/b"}]}, [], id="existing-only"),
    pytest.param({"pvc": ["claim-a:/a", ":1Gi:/b", {"storageClass": "sc.example.com", "size": "2Gi", "path": "/c"}]},
                 [("pvc-train1-1", {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                                    "resources": {"requests": {"storage": "1Gi"}}}),
                  ("pvc-train1-2", {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                                    "resources": {"requests": {"storage": "2Gi"}},
                                    "storageClassName": "sc.example.com"})],
                 id="mixed"),
]


@pytest.mark.parametrize(("job", "expected"), PVC_OBJECTS)
def test_pvc_objects(job, expected):
    manifests = render(job)
    claims = objects_of(manifests, "PersistentVolumeClaim")
    assert [(c["metadata"]["name"], c["spec"]) for c in claims] == expected
    for claim in claims:
        assert claim["apiVersion"] == "v1"
        assert claim["metadata"]["namespace"] == NAMESPACE
        assert "ownerReferences" not in claim["metadata"], "a new PVC must outlive its job"
        assert JOB_LABELS.items() <= claim["metadata"]["labels"].items()


def test_pvcs_come_after_the_workload_and_before_service_and_ingress():
    manifests = render({"pvc": [":1Gi:/d"], "ports": [80], "serviceType": "ingress"})
    assert [m["kind"] for m in manifests] == ["RunaiJob", "PersistentVolumeClaim", "Service", "Ingress"]


# --- Service ports --------------------------------------------------------------------------------


def service_ports(manifests: list[dict]) -> list[dict]:
    keys = ("port", "targetPort", "nodePort", "protocol")
    return [{k: p[k] for k in keys if k in p} for p in one(manifests, "Service")["spec"]["ports"]]


SERVICE_PORTS = [
    pytest.param("nodeport", [{"container": 8080, "external": 30080}],
                 [{"port": 30080, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}], id="nodeport-object"),
    pytest.param("nodeport", ["30080:8080"],
                 [{"port": 30080, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}], id="nodeport-cli"),
    pytest.param("nodeport", [{"container": 8080, "external": 30000}, {"container": 9090, "external": 32767}],
                 [{"port": 30000, "targetPort": 8080, "nodePort": 30000, "protocol": "TCP"},
                  {"port": 32767, "targetPort": 9090, "nodePort": 32767, "protocol": "TCP"}], id="nodeport-range-edges"),
    pytest.param("nodeport", [8080], [{"port": 8080, "targetPort": 8080, "protocol": "TCP"}],
                 id="nodeport-int-allocated"),
    pytest.param("nodeport", [{"container": 8080}], [{"port": 8080, "targetPort": 8080, "protocol": "TCP"}],
                 id="nodeport-no-external"),
    pytest.param("nodeport", [{"container": 8080, "autoGenerate": True}],
                 [{"port": 8080, "targetPort": 8080, "protocol": "TCP"}], id="nodeport-autogenerate"),
    pytest.param("nodeport", [{"container": 8080, "autoGenerate": False, "external": 31000}],
                 [{"port": 31000, "targetPort": 8080, "nodePort": 31000, "protocol": "TCP"}],
                 id="nodeport-autogenerate-false"),
    pytest.param("loadbalancer", [{"container": 80, "external": 8080}],
                 [{"port": 8080, "targetPort": 80, "protocol": "TCP"}], id="loadbalancer-external"),
    pytest.param("loadbalancer", ["443:8443"], [{"port": 443, "targetPort": 8443, "protocol": "TCP"}],
                 id="loadbalancer-cli"),
    pytest.param("loadbalancer", [80], [{"port": 80, "targetPort": 80, "protocol": "TCP"}], id="loadbalancer-int"),
    pytest.param("clusterip", [{"container": 80, "external": 8080}],
                 [{"port": 8080, "targetPort": 80, "protocol": "TCP"}], id="clusterip-external"),
    pytest.param("clusterip", [80, 81], [{"port": 80, "targetPort": 80, "protocol": "TCP"},
                                         {"port": 81, "targetPort": 81, "protocol": "TCP"}], id="clusterip-two"),
    pytest.param("portforward", ["8888:80"], [{"port": 8888, "targetPort": 80, "protocol": "TCP"}],
                 id="portforward-cli"),
    pytest.param("ingress", [8080], [{"port": 8080, "targetPort": 8080, "protocol": "TCP"}], id="ingress-int"),
    pytest.param("ingress", [{"container": 8080, "external": 80}], [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
                 id="ingress-external"),
]


@pytest.mark.parametrize(("service_type", "ports", "expected"), SERVICE_PORTS)
def test_service_ports(service_type, ports, expected):
    manifests = render({"ports": ports, "serviceType": service_type})
    assert service_ports(manifests) == expected
    names_ = [p.get("name") for p in one(manifests, "Service")["spec"]["ports"]]
    if len(names_) > 1:
        assert all(names_) and len(set(names_)) == len(names_), "ports of a multi-port Service need unique names"


@pytest.mark.parametrize("service_type", ["nodeport", "loadbalancer", "clusterip", "portforward", "ingress"])
def test_service_metadata_selector_and_owner(service_type):
    manifests = render({"ports": [8080], "serviceType": service_type})
    service = one(manifests, "Service")
    assert service["apiVersion"] == "v1"
    assert service["metadata"]["name"] == JOB_NAME
    assert service["metadata"]["namespace"] == NAMESPACE
    assert JOB_LABELS.items() <= service["metadata"]["labels"].items()
    selector = service["spec"]["selector"]
    assert selector["release"] == JOB_NAME
    assert selector.items() <= at(manifests, T_META + ("labels",)).items(), "the Service must select the job's pods"
    refs = service["metadata"]["ownerReferences"]
    assert len(refs) == 1
    assert {k: refs[0][k] for k in ("apiVersion", "kind", "name", "uid")} == {
        "apiVersion": "run.ai/v1", "kind": "RunaiJob", "name": JOB_NAME, "uid": OWNER_UID,
    }


def test_ingress_single_port():
    manifests = render({"ports": [8080], "serviceType": "ingress"})
    ingress = one(manifests, "Ingress")
    assert ingress["metadata"]["name"] == JOB_NAME
    assert ingress["metadata"]["namespace"] == NAMESPACE
    assert JOB_LABELS.items() <= ingress["metadata"]["labels"].items()
    paths = at(manifests, ING_PATHS)
    assert len(paths) == 1
    assert paths[0]["path"] == f"/{PROJECT}-{JOB_NAME}"
    assert paths[0]["pathType"] in ("Prefix", "ImplementationSpecific")
    assert paths[0]["backend"] == {"service": {"name": JOB_NAME, "port": {"number": 8080}}}
    refs = ingress["metadata"]["ownerReferences"]
    assert len(refs) == 1
    assert {k: refs[0][k] for k in ("apiVersion", "kind", "name", "uid")} == {
        "apiVersion": "run.ai/v1", "kind": "RunaiJob", "name": JOB_NAME, "uid": OWNER_UID,
    }


def test_ingress_backend_uses_the_service_port():
    manifests = render({"ports": [{"container": 8080, "external": 80}], "serviceType": "ingress"})
    paths = at(manifests, ING_PATHS)
    assert paths[0]["path"] == f"/{PROJECT}-{JOB_NAME}"
    assert paths[0]["backend"] == {"service": {"name": JOB_NAME, "port": {"number": 80}}}
    assert 80 in [p["port"] for p in one(manifests, "Service")["spec"]["ports"]]


def test_ingress_several_ports_each_reachable():
    manifests = render({"ports": [8080, 9090], "serviceType": "ingress"})
    paths = at(manifests, ING_PATHS)
    service_port_numbers = {p["port"] for p in one(manifests, "Service")["spec"]["ports"]}
    assert {p["backend"]["service"]["port"]["number"] for p in paths} == {8080, 9090}
    assert {p["backend"]["service"]["port"]["number"] for p in paths} <= service_port_numbers
    assert all(p["backend"]["service"]["name"] == JOB_NAME for p in paths)
    assert all(p["path"].startswith(f"/{PROJECT}-{JOB_NAME}") for p in paths)
    assert len({p["path"] for p in paths}) == 2


def test_ingress_class_from_context():
    manifests = render({"ports": [80], "serviceType": "ingress"}, ctx=context(ingress_class="nginx"))
    assert at(manifests, ("Ingress", "spec", "ingressClassName")) == "nginx"


# --- labels, user, names (§4) ---------------------------------------------------------------------


def test_labels_on_every_object_and_pod():
    manifests = render({"pvc": [":1Gi:/a", "fast:2Gi:/b"], "ports": [80], "serviceType": "ingress",
                        "interactive": True})
    assert [m["kind"] for m in manifests] == [
        "RunaiJob", "PersistentVolumeClaim", "PersistentVolumeClaim", "Service", "Ingress",
    ]
    for manifest in manifests:
        labels = manifest["metadata"]["labels"]
        assert JOB_LABELS.items() <= labels.items(), f"{manifest['kind']} lacks the job's labels: {labels}"
        assert labels["runai/user"] == USER
        assert manifest["metadata"]["namespace"] == NAMESPACE
    pod_labels = at(manifests, T_META + ("labels",))
    assert JOB_LABELS.items() <= pod_labels.items()
    assert pod_labels["runai/user"] == USER


USERS = [
    pytest.param("john", "john", id="plain"),
    pytest.param("john.doe@example.com", None, id="email"),
    pytest.param("CN=John Doe,OU=Research", None, id="dn"),
    pytest.param("José Núñez", None, id="non-ascii"),
    pytest.param("-_weird_-", None, id="edge-punctuation"),
    pytest.param("u" * 100, None, id="too-long"),
    pytest.param("system:serviceaccount:ns:sa", None, id="serviceaccount"),
]


@pytest.mark.parametrize(("user", "label"), USERS)
def test_user_annotation_exact_and_label_safe(user, label):
    manifests = render({}, ctx=context(user=user))
    assert at(manifests, W_META + ("annotations", "user")) == user
    assert at(manifests, T_META + ("annotations", "user")) == user
    for labels in (at(manifests, W_META + ("labels",)), at(manifests, T_META + ("labels",))):
        value = labels["runai/user"]
        assert len(value) <= 63 and LABEL_VALUE_RE.match(value), f"not a label value: {value!r}"
        if label is not None:
            assert value == label


def test_user_label_keeps_the_recognisable_part():
    manifests = render({}, ctx=context(user="john.doe@example.com"))
    assert "john.doe" in at(manifests, W_META + ("labels", "runai/user"))


def test_name_prefix_generated_names():
    spec = load_submit_request({"job": {"project": PROJECT, "image": IMAGE, "jobNamePrefix": "exp"}})
    assert spec.name is None
    name = names.generated_name(spec.job_name_prefix)
    assert re.fullmatch(r"exp-[a-z0-9]{5}", name)
    render({"jobNamePrefix": "exp"}, base={"project": PROJECT, "image": IMAGE}, ctx=context(name))


def test_name_prefix_longest_allowed_gives_a_63_char_name():
    prefix = "p" * 57
    spec = load_submit_request({"job": {"project": PROJECT, "image": IMAGE, "jobNamePrefix": prefix}})
    name = names.generated_name(spec.job_name_prefix)
    assert len(name) <= 63 and DNS1035_RE.match(name) and name.startswith(prefix + "-")
    render({"jobNamePrefix": prefix}, base={"project": PROJECT, "image": IMAGE}, ctx=context(name))


def test_default_generated_name():
    spec = load_submit_request({"job": {"project": PROJECT, "image": IMAGE}})
    assert spec.name is None
    assert re.fullmatch(r"job-[a-z0-9]{5}", names.generated_name(spec.job_name_prefix))


def test_name_wins_over_prefix():
    spec = load_submit_request({"job": {**BASE, "jobNamePrefix": "exp"}})
    assert spec.name == JOB_NAME


def test_combined_job_renders_valid_objects():
    """A job using every parameter at once still renders schema-valid objects."""
    manifests = render({
        "interactive": True, "preemptible": True, "command": "python -u train.py", "arguments": ["--x", "1"],
        "environment": {"A": 1, "B": True, "C": "SECRET:s,k"}, "imagePullPolicy": "ifnotpresent",
        "stdin": True, "tty": True, "workingDir": "/w", "createHomeDir": True, "gpu": 0.5, "cpu": 1,
        "cpuLimit": 2, "memory": "1GB", "memoryLimit": "2GB", "largeShm": True,
        "pvc": [":1Gi:/p", "c:/q:ro"], "volume": {"/h": "/v"}, "volumes": ["/h2:/v2:ro"], "hostIpc": True,
        "hostNetwork": True, "ports": [{"container": 80, "external": 30080}, 81], "serviceType": "nodeport",
        "backoffLimit": 0, "completions": 1, "ttlAfterFinish": "1h", "preventPrivilegeEscalation": True,
        "nodeType": "a100",
    })
    assert [m["kind"] for m in manifests] == ["RunaiJob", "PersistentVolumeClaim", "Service"]
    assert at(manifests, T_META + ("annotations",)) == {"user": USER, "gpu-fraction": "0.5"}


# --- rejected inputs -> ValidationFailed with exact pointers ----------------------------------------


def bad(case_id: str, job: dict, pointer: str, keywords: tuple[str, ...] = (), *, prefix: bool = False,
        base: dict | None = BASE):
    return pytest.param(job, pointer, keywords, prefix, base, id=case_id)


DNS1035 = ("dns-1035",)
DNS1123 = ("dns-1123",)
ABSOLUTE = ("absolute",)
STRING = ("string",)
BOOLEAN = ("true or false", "boolean")
NUMBER = ("number",)
WHOLE = ("whole", "integer")
UNKNOWN = ("unknown",)
AT_LEAST_0 = ("0 or more", "0 to", ">= 0", "≥ 0", "negative", "at least 0")
AT_LEAST_1 = ("1 or more", "1 to", ">= 1", "≥ 1", "at least 1")
ABOVE_0 = ("> 0", "greater than 0", "positive", "more than 0")
REQUIRED = ("required",)
NO_BASE_NAME = {"project": PROJECT, "image": IMAGE}

REJECTED = [
    # name
    bad("name-uppercase", {"name": "My-Job"}, "/job/name", DNS1035),
    bad("name-leading-digit", {"name": "1job"}, "/job/name", DNS1035),
    bad("name-trailing-dash", {"name": "job-"}, "/job/name", DNS1035),
    bad("name-leading-dash", {"name": "-job"}, "/job/name", DNS1035),
    bad("name-underscore", {"name": "my_job"}, "/job/name", DNS1035),
    bad("name-dot", {"name": "my.job"}, "/job/name", DNS1035),
    bad("name-64", {"name": "a" * 64}, "/job/name", ("63",)),
    bad("name-empty", {"name": ""}, "/job/name", ("63", "dns-1035", "empty")),
    bad("name-number", {"name": 5}, "/job/name", STRING),
    # jobNamePrefix
    bad("prefix-too-long", {"jobNamePrefix": "p" * 58}, "/job/jobNamePrefix", ("57", "63", "long"),
        base=NO_BASE_NAME),
    bad("prefix-63-too-long", {"jobNamePrefix": "p" * 63}, "/job/jobNamePrefix", ("57", "63", "long"),
        base=NO_BASE_NAME),
    bad("prefix-uppercase", {"jobNamePrefix": "Exp"}, "/job/jobNamePrefix", DNS1035, base=NO_BASE_NAME),
    bad("prefix-leading-digit", {"jobNamePrefix": "9exp"}, "/job/jobNamePrefix", DNS1035, base=NO_BASE_NAME),
    bad("prefix-trailing-dash", {"jobNamePrefix": "exp-"}, "/job/jobNamePrefix", DNS1035, base=NO_BASE_NAME),
    # project
    bad("project-missing", {}, "/job/project", REQUIRED, base={"image": IMAGE}),
    bad("project-null", {"project": None}, "/job/project", ("null", "required")),
    bad("project-uppercase", {"project": "Team-A"}, "/job/project", DNS1123),
    bad("project-underscore", {"project": "team_a"}, "/job/project", DNS1123),
    bad("project-leading-dash", {"project": "-team"}, "/job/project", DNS1123),
    bad("project-dot", {"project": "team.a"}, "/job/project", DNS1123),
    bad("project-64", {"project": "t" * 64}, "/job/project", ("63",)),
    bad("project-empty", {"project": ""}, "/job/project", ("63", "dns-1123", "empty")),
    # image
    bad("image-missing", {}, "/job/image", REQUIRED, base={"project": PROJECT}),
    bad("image-empty", {"image": ""}, "/job/image", ("empty", "whitespace")),
    bad("image-space", {"image": "my image"}, "/job/image", ("whitespace",)),
    bad("image-leading-space", {"image": " busybox"}, "/job/image", ("whitespace",)),
    bad("image-tab", {"image": "busybox\t"}, "/job/image", ("whitespace",)),
    bad("image-newline", {"image": "busybox\nlatest"}, "/job/image", ("whitespace",)),
    bad("image-null", {"image": None}, "/job/image", ("null", "required")),
    # tty / stdin / workingDir
    bad("tty-without-stdin", {"tty": True}, "/job/tty", ("stdin",)),
    bad("tty-with-stdin-false", {"tty": True, "stdin": False}, "/job/tty", ("stdin",)),
    bad("workingDir-relative", {"workingDir": "work/src"}, "/job/workingDir", ABSOLUTE),
    bad("workingDir-dot", {"workingDir": "./src"}, "/job/workingDir", ABSOLUTE),
    bad("workingDir-empty", {"workingDir": ""}, "/job/workingDir", ABSOLUTE),
    # gpu
    bad("gpu-negative", {"gpu": -1}, "/job/gpu", AT_LEAST_0),
    bad("gpu-negative-fraction", {"gpu": -0.5}, "/job/gpu", AT_LEAST_0),
    bad("gpu-1.5", {"gpu": 1.5}, "/job/gpu", ("whole",)),
    bad("gpu-2.5", {"gpu": 2.5}, "/job/gpu", ("whole",)),
    bad("gpu-string", {"gpu": "1"}, "/job/gpu", NUMBER),
    bad("gpu-bool", {"gpu": True}, "/job/gpu", NUMBER),
    # cpu
    bad("cpu-zero", {"cpu": 0}, "/job/cpu", ABOVE_0),
    bad("cpu-negative", {"cpu": -1}, "/job/cpu", ABOVE_0),
    bad("cpu-string", {"cpu": "1"}, "/job/cpu", NUMBER),
    bad("cpu-bool", {"cpu": False}, "/job/cpu", NUMBER),
    bad("cpuLimit-zero", {"cpuLimit": 0}, "/job/cpuLimit", ABOVE_0),
    bad("cpuLimit-below-cpu", {"cpu": 2, "cpuLimit": 1}, "/job/cpuLimit", ("cpu",)),
    bad("cpuLimit-below-fraction", {"cpu": 0.5, "cpuLimit": 0.25}, "/job/cpuLimit", ("cpu",)),
    # memory
    bad("memory-word", {"memory": "lots"}, "/job/memory", ("quantity",)),
    bad("memory-space", {"memory": "3 GB"}, "/job/memory", ("quantity",)),
    bad("memory-lowercase-gb", {"memory": "3gb"}, "/job/memory", ("quantity",)),
    bad("memory-bad-suffix", {"memory": "3GiB"}, "/job/memory", ("quantity",)),
    bad("memory-negative", {"memory": "-1Gi"}, "/job/memory", ("quantity", "greater than 0")),
    bad("memory-int", {"memory": 1024}, "/job/memory", STRING),
    bad("memoryLimit-word", {"memoryLimit": "big"}, "/job/memoryLimit", ("quantity",)),
    bad("memoryLimit-below-memory", {"memory": "2G", "memoryLimit": "1G"}, "/job/memoryLimit", ("memory",)),
    bad("memoryLimit-below-memory-mixed-units", {"memory": "3GB", "memoryLimit": "2Gi"}, "/job/memoryLimit",
        ("memory",)),
    # pvc
    bad("pvc-size-word", {"pvc": [{"size": "lots", "path": "/d"}]}, "/job/pvc/0/size", ("quantity",)),
    bad("pvc-relative-path", {"pvc": [{"size": "1Gi", "path": "data"}]}, "/job/pvc/0/path", ABSOLUTE),
    bad("pvc-no-size-no-claim", {"pvc": [{"path": "/d"}]}, "/job/pvc/0/size", ("size",)),
    bad("pvc-no-path", {"pvc": [{"size": "1Gi"}]}, "/job/pvc/0/path", REQUIRED),
    bad("pvc-unknown-field", {"pvc": [{"size": "1Gi", "path": "/d", "sise": "2Gi"}]}, "/job/pvc/0/sise", UNKNOWN),
    bad("pvc-second-item", {"pvc": [":1Gi:/a", {"size": "1Gi", "path": "b"}]}, "/job/pvc/1/path", ABSOLUTE),
    bad("pvc-cli-bad-shape", {"pvc": ["a:b:c:d:e"]}, "/job/pvc/0", ("storageclass:size:path",)),
    bad("pvc-cli-one-part", {"pvc": ["/data"]}, "/job/pvc/0", ("storageclass:size:path",)),
    bad("pvc-cli-bad-size", {"pvc": [":lots:/d"]}, "/job/pvc/0", ("quantity",), prefix=True),
    bad("pvc-cli-relative", {"pvc": ["claim:data"]}, "/job/pvc/0", ABSOLUTE, prefix=True),
    bad("pvc-number-item", {"pvc": [5]}, "/job/pvc/0", ("object", "string")),
    bad("pvc-not-a-list", {"pvc": "fast:1Gi:/d"}, "/job/pvc", ("list",)),
    # volume / volumes
    bad("volume-relative-target", {"volume": {"/host": "data"}}, "/job/volume", ABSOLUTE, prefix=True),
    bad("volume-relative-source", {"volume": {"host": "/data"}}, "/job/volume", ABSOLUTE, prefix=True),
    bad("volume-not-a-map", {"volume": ["/a:/b"]}, "/job/volume", ("dict", "object", "map", "mapping")),
    bad("volumes-relative-source", {"volumes": [{"sourcePath": "h", "targetPath": "/c"}]},
        "/job/volumes/0/sourcePath", ABSOLUTE),
    bad("volumes-relative-target", {"volumes": [{"sourcePath": "/h", "targetPath": "c"}]},
        "/job/volumes/0/targetPath", ABSOLUTE),
    bad("volumes-missing-target", {"volumes": [{"sourcePath": "/h"}]}, "/job/volumes/0/targetPath", REQUIRED),
    bad("volumes-unknown-field", {"volumes": [{"sourcePath": "/h", "targetPath": "/c", "ro": True}]},
        "/job/volumes/0/ro", UNKNOWN),
    bad("volumes-cli-one-path", {"volumes": ["/h"]}, "/job/volumes/0", ("/host/path:/container/path",)),
    bad("volumes-cli-relative", {"volumes": ["h:/c"]}, "/job/volumes/0", ABSOLUTE, prefix=True),
    bad("volumes-readOnly-string", {"volumes": [{"sourcePath": "/h", "targetPath": "/c", "readOnly": "yes"}]},
        "/job/volumes/0/readOnly", BOOLEAN),
    # duplicate mount paths (the rule; which item the pointer names is checked in PRECISE_POINTERS below)
    bad("dup-pvc-paths", {"pvc": [":1Gi:/d", "claim:/d"]}, "/job/pvc", ("/d",), prefix=True),
    bad("dup-volumes-targets", {"volumes": ["/a:/c", "/b:/c"]}, "/job/volumes", ("/c",), prefix=True),
    bad("dup-volume-map-and-volumes", {"volume": {"/a": "/c"}, "volumes": ["/b:/c/"]}, "/job/volumes", ("/c",),
        prefix=True),
    bad("dup-pvc-and-volume", {"pvc": ["claim:/d"], "volumes": [{"sourcePath": "/h", "targetPath": "/d"}]},
        "/job/volumes", ("/d",), prefix=True),
    bad("dup-largeShm", {"largeShm": True, "volumes": ["/h:/dev/shm"]}, "/job/volumes", ("/dev/shm",), prefix=True),
    bad("dup-createHomeDir", {"createHomeDir": True, "pvc": ["c:/home/runai-home"]}, "/job/pvc",
        ("/home/runai-home",), prefix=True),
    # ports
    bad("port-zero", {"ports": [0]}, "/job/ports/0", ("65535",), prefix=True),
    bad("port-too-big", {"ports": [70000]}, "/job/ports/0", ("65535",), prefix=True),
    bad("port-object-container-too-big", {"ports": [{"container": 65536}]}, "/job/ports/0/container", ("65535",)),
    bad("port-object-external-too-big", {"ports": [{"container": 80, "external": 70000}]}, "/job/ports/0/external",
        ("65535",)),
    bad("port-object-external-zero", {"ports": [{"container": 80, "external": 0}]}, "/job/ports/0/external",
        ("65535",)),
    bad("port-cli-external-too-big", {"ports": ["70000:80"]}, "/job/ports/0", ("65535",), prefix=True),
    bad("port-cli-not-numbers", {"ports": ["http"]}, "/job/ports/0", ("container",)),
    bad("port-cli-three-parts", {"ports": ["1:2:3"]}, "/job/ports/0", ("container",)),
    bad("port-bool", {"ports": [True]}, "/job/ports/0", ("port",)),
    bad("port-float", {"ports": [80.5]}, "/job/ports/0", ("port",)),
    bad("port-null", {"ports": [None]}, "/job/ports/0", ("null",)),
    bad("port-container-string", {"ports": [{"container": "80"}]}, "/job/ports/0/container", WHOLE),
    bad("port-missing-container", {"ports": [{"external": 30080}]}, "/job/ports/0/container", REQUIRED),
    bad("port-unknown-field", {"ports": [{"container": 80, "extrnal": 30080}]}, "/job/ports/0/extrnal", UNKNOWN),
    bad("port-autoGenerate-string", {"ports": [{"container": 80, "autoGenerate": "true"}]},
        "/job/ports/0/autoGenerate", BOOLEAN),
    bad("ports-not-a-list", {"ports": {"container": 80}}, "/job/ports", ("list",)),
    # node port range and uniqueness (the rule; the exact item pointer is checked in PRECISE_POINTERS below)
    bad("nodeport-below-range", {"ports": [{"container": 80}, {"container": 81, "external": 8081}],
                                 "serviceType": "nodeport"}, "/job/ports", ("30000",), prefix=True),
    bad("nodeport-above-range", {"ports": [{"container": 80}, {"container": 81, "external": 32768}],
                                 "serviceType": "NodePort"}, "/job/ports", ("32767",), prefix=True),
    bad("nodeport-cli-below-range", {"ports": ["8080:80"], "serviceType": "nodeport"}, "/job/ports", ("30000",),
        prefix=True),
    bad("dup-container-ports", {"ports": [80, 80]}, "/job/ports", ("80",), prefix=True),
    bad("dup-container-ports-mixed-shapes", {"ports": [{"container": 80}, "30080:80"]}, "/job/ports", ("80",),
        prefix=True),
    bad("dup-external-ports", {"ports": [{"container": 80, "external": 30080}, {"container": 81, "external": 30080}],
                               "serviceType": "nodeport"}, "/job/ports", ("30080",), prefix=True),
    # serviceType
    bad("serviceType-without-ports", {"serviceType": "nodeport"}, "/job/serviceType", ("ports",)),
    bad("serviceType-empty-ports", {"serviceType": "ingress", "ports": []}, "/job/serviceType", ("ports",)),
    bad("serviceType-unknown", {"serviceType": "external", "ports": [80]}, "/job/serviceType", ("nodeport",)),
    bad("serviceType-empty", {"serviceType": "", "ports": [80]}, "/job/serviceType", ("nodeport",)),
    bad("serviceType-number", {"serviceType": 1, "ports": [80]}, "/job/serviceType", STRING),
    # imagePullPolicy
    bad("pull-unknown", {"imagePullPolicy": "sometimes"}, "/job/imagePullPolicy", ("ifnotpresent",)),
    bad("pull-empty", {"imagePullPolicy": ""}, "/job/imagePullPolicy", ("ifnotpresent",)),
    bad("pull-number", {"imagePullPolicy": 1}, "/job/imagePullPolicy", STRING),
    # backoffLimit / completions / parallelism
    bad("backoff-interactive", {"interactive": True, "backoffLimit": 2}, "/job/backoffLimit", ("interactive",)),
    bad("backoff-negative", {"backoffLimit": -1}, "/job/backoffLimit", AT_LEAST_0),
    bad("backoff-string", {"backoffLimit": "1"}, "/job/backoffLimit", WHOLE),
    bad("backoff-float", {"backoffLimit": 1.5}, "/job/backoffLimit", WHOLE),
    bad("backoff-bool", {"backoffLimit": True}, "/job/backoffLimit", WHOLE),
    bad("completions-zero", {"completions": 0}, "/job/completions", AT_LEAST_1),
    bad("completions-string", {"completions": "1"}, "/job/completions", WHOLE),
    bad("completions-interactive-3", {"interactive": True, "completions": 3}, "/job/completions", ("1",)),
    bad("parallelism-zero", {"parallelism": 0, "completions": 1}, "/job/parallelism", AT_LEAST_1),
    bad("parallelism-string", {"parallelism": "2"}, "/job/parallelism", WHOLE),
    bad("parallelism-without-completions", {"parallelism": 2}, "/job/parallelism", ("completions",)),
    bad("parallelism-elastic", {"parallelism": 2, "completions": 4, "elastic": True}, "/job/parallelism",
        ("elastic",)),
    bad("parallelism-interactive", {"parallelism": 2, "completions": 1, "interactive": True}, "/job/parallelism",
        ("interactive",)),
    # preemptible
    bad("preemptible-training", {"preemptible": True}, "/job/preemptible", ("interactive",)),
    bad("preemptible-training-explicit", {"preemptible": True, "interactive": False}, "/job/preemptible",
        ("interactive",)),
    # ttlAfterFinish
    bad("ttl-negative-int", {"ttlAfterFinish": -1}, "/job/ttlAfterFinish", AT_LEAST_0),
    bad("ttl-negative-duration", {"ttlAfterFinish": "-1s"}, "/job/ttlAfterFinish"),
    bad("ttl-word", {"ttlAfterFinish": "soon"}, "/job/ttlAfterFinish", ("duration",)),
    bad("ttl-no-unit", {"ttlAfterFinish": "10"}, "/job/ttlAfterFinish", ("duration",)),
    bad("ttl-weeks", {"ttlAfterFinish": "1w"}, "/job/ttlAfterFinish", ("duration",)),
    bad("ttl-empty", {"ttlAfterFinish": ""}, "/job/ttlAfterFinish", ("duration",)),
    bad("ttl-space-inside", {"ttlAfterFinish": "1h 30m"}, "/job/ttlAfterFinish", ("duration",)),
    bad("ttl-fraction-number", {"ttlAfterFinish": 1.5}, "/job/ttlAfterFinish", ("duration", "whole")),
    bad("ttl-bool", {"ttlAfterFinish": True}, "/job/ttlAfterFinish", ("duration", "whole")),
    bad("ttl-list", {"ttlAfterFinish": [60]}, "/job/ttlAfterFinish", ("duration", "whole")),
    # environment
    bad("env-leading-digit", {"environment": {"1BAD": "x"}}, "/job/environment/1BAD", ("variable name",)),
    bad("env-equals", {"environment": {"A=B": "x"}}, "/job/environment/A=B", ("variable name",)),
    bad("env-space", {"environment": {"A B": "x"}}, "/job/environment/A B", ("variable name",)),
    bad("env-empty-name", {"environment": {"": "x"}}, "/job/environment/", ("variable name",)),
    bad("env-slash-escaped", {"environment": {"a/b": "x"}}, "/job/environment/a~1b", ("variable name",)),
    bad("env-null-value", {"environment": {"X": None}}, "/job/environment/X", ("string, number or boolean",)),
    bad("env-object-value", {"environment": {"X": {"a": 1}}}, "/job/environment/X", ("string, number or boolean",)),
    bad("env-list-value", {"environment": {"X": [1]}}, "/job/environment/X", ("string, number or boolean",)),
    bad("env-secret-no-key", {"environment": {"X": "SECRET:only-name"}}, "/job/environment/X", ("secret",)),
    bad("env-secret-empty", {"environment": {"X": "SECRET:"}}, "/job/environment/X", ("secret",)),
    bad("env-secret-bad-name", {"environment": {"X": "SECRET:Bad_Name,key"}}, "/job/environment/X", ("secret",)),
    bad("env-secret-bad-key", {"environment": {"X": "SECRET:name,bad key"}}, "/job/environment/X", ("key",)),
    bad("env-not-a-map", {"environment": ["A=1"]}, "/job/environment", ("object",)),
    bad("env-string", {"environment": "A=1"}, "/job/environment", ("object",)),
    # nodeType
    bad("nodeType-space", {"nodeType": "a 100"}, "/job/nodeType", ("label",)),
    bad("nodeType-slash", {"nodeType": "run.ai/a100"}, "/job/nodeType", ("label",)),
    bad("nodeType-64", {"nodeType": "n" * 64}, "/job/nodeType", ("63",)),
    bad("nodeType-number", {"nodeType": 100}, "/job/nodeType", STRING),
    # command / arguments
    bad("command-number", {"command": 5}, "/job/command", ("string",)),
    bad("command-object", {"command": {"cmd": "x"}}, "/job/command", ("string",)),
    bad("command-item-number", {"command": ["python", 1]}, "/job/command/1", STRING),
    bad("command-unbalanced-quote", {"command": "echo 'oops"}, "/job/command", ("shell", "quot")),
    bad("arguments-string", {"arguments": "--lr 0.1"}, "/job/arguments", ("list",)),
    bad("arguments-item-number", {"arguments": ["--lr", 0.1]}, "/job/arguments/1", STRING),
    bad("arguments-item-null", {"arguments": [None]}, "/job/arguments/0", ("null",)),
    # unknown fields, each named
    bad("unknown-gpus", {"gpus": 1}, "/job/gpus", UNKNOWN),
    bad("unknown-case", {"Name": "x"}, "/job/Name", UNKNOWN),
    bad("unknown-snake-case", {"node_type": "a100"}, "/job/node_type", UNKNOWN),
    bad("unknown-pull-policy-typo", {"imagePullpolicy": "Never"}, "/job/imagePullpolicy", UNKNOWN),
    bad("unknown-namespace", {"namespace": "kube-system"}, "/job/namespace", UNKNOWN),
    bad("unknown-slash-escaped", {"a/b~c": 1}, "/job/a~1b~0c", UNKNOWN),
]

# What the OpenAPI document's patterns say, found by fuzzing against a real API server (issue 14): each of these
# was accepted here and then refused by the API server (or answered 500).
REJECTED += [
    bad("ttl-more-digits-than-decimal-precision", {"ttlAfterFinish": "99999999999999999999999999999d"},
        "/job/ttlAfterFinish", ("at most",)),
    bad("gpu-more-than-the-api-server-keeps", {"gpu": 13420929622130728}, "/job/gpu", ("at most",)),
    bad("memory-exponent-and-suffix", {"memory": "1e3k"}, "/job/memory", ("quantity",)),
    bad("memory-exponent-of-three-digits", {"memory": "1e999"}, "/job/memory", ("quantity",)),
    bad("memory-padded", {"memory": " 1Gi"}, "/job/memory", ("quantity",)),
    bad("memory-non-ascii-digit", {"memory": "\u0663Gi"}, "/job/memory", ("quantity",)),
    bad("env-name-dot-dot", {"environment": {"..": "x"}}, "/job/environment/..", ("variable",)),
    bad("env-name-leading-dot-dot", {"environment": {"..x": "x"}}, "/job/environment/..x", ("variable",)),
    bad("env-secret-key-leading-dot-dot", {"environment": {"A": "SECRET:s,..k"}}, "/job/environment/A", ("key",)),
    bad("env-secret-key-too-long", {"environment": {"A": "SECRET:s," + "k" * 254}}, "/job/environment/A",
        ("at most 253",)),
    bad("volumes-source-dot-dot", {"volumes": [{"sourcePath": "/a/../b", "targetPath": "/c"}]},
        "/job/volumes/0/sourcePath", ("'..'",)),
    bad("volumes-cli-source-dot-dot", {"volumes": ["/a/..:/c"]}, "/job/volumes/0", ("'..'",), prefix=True),
    bad("volume-map-source-dot-dot", {"volume": {"/..": "/c"}}, "/job/volume/~1..", ("'..'",)),
    bad("port-cli-padded", {"ports": [" 80"]}, "/job/ports/0", ("port numbers",)),
    bad("port-cli-plus-sign", {"ports": ["+80"]}, "/job/ports/0", ("port numbers",)),
    bad("port-cli-non-ascii-digits", {"ports": ["\u0668\u0660"]}, "/job/ports/0", ("port numbers",)),
    bad("command-unclosed-quote", {"command": "python -c 'print(1)"}, "/job/command", ("shell",)),
]

BOOLEAN_FIELDS = ["interactive", "stdin", "tty", "createHomeDir", "largeShm", "hostIpc", "hostNetwork", "elastic",
                  "preemptible", "preventPrivilegeEscalation"]
for _field in BOOLEAN_FIELDS:
    REJECTED.append(bad(f"{_field}-string-true", {_field: "true"}, f"/job/{_field}", BOOLEAN))
    REJECTED.append(bad(f"{_field}-int-1", {_field: 1}, f"/job/{_field}", BOOLEAN))
for _field in ["gpu", "cpu", "cpuLimit"]:
    REJECTED.append(bad(f"{_field}-list", {_field: [1]}, f"/job/{_field}", NUMBER))
for _field in ["backoffLimit", "completions", "parallelism"]:
    REJECTED.append(bad(f"{_field}-object", {_field: {}}, f"/job/{_field}", WHOLE))
for _field in ["name", "project", "image", "workingDir", "memory", "memoryLimit", "jobNamePrefix", "nodeType"]:
    REJECTED.append(bad(f"{_field}-bool", {_field: True}, f"/job/{_field}", STRING))
    REJECTED.append(bad(f"{_field}-object", {_field: {"value": "x"}}, f"/job/{_field}", STRING))


@pytest.mark.parametrize(("job", "pointer", "keywords", "prefix", "base"), REJECTED)
def test_rejected_input_names_field_and_rule(job, pointer, keywords, prefix, base):
    errors = rejected(job, base=base)
    assert_error(errors, pointer, keywords, prefix=prefix)


# The pointer names the offending item, not just the list (§6: "a JSON pointer into the request", with
# "/job/ports/1/external" as the contract's own example), and it must resolve inside the request.
PRECISE_POINTERS = [
    bad("nodeport-below-range", {"ports": [{"container": 80}, {"container": 81, "external": 8081}],
                                 "serviceType": "nodeport"}, "/job/ports/1/external", ("30000",)),
    bad("nodeport-above-range", {"ports": [{"container": 80}, {"container": 81, "external": 32768}],
                                 "serviceType": "NodePort"}, "/job/ports/1/external", ("32767",)),
    bad("nodeport-cli-below-range", {"ports": [80, "8080:80"], "serviceType": "nodeport"}, "/job/ports/1",
        ("30000",), prefix=True),
    bad("dup-container-ports", {"ports": [80, 80]}, "/job/ports/1", ("80",), prefix=True),
    bad("dup-external-ports", {"ports": [{"container": 80, "external": 30080}, {"container": 81, "external": 30080}],
                               "serviceType": "nodeport"}, "/job/ports/1", ("30080",), prefix=True),
    bad("dup-pvc-paths", {"pvc": [":1Gi:/d", "claim:/d"]}, "/job/pvc/1", ("/d",), prefix=True),
    bad("dup-volumes-targets", {"volumes": ["/a:/c", "/b:/c"]}, "/job/volumes/1", ("/c",), prefix=True),
    bad("dup-largeShm", {"largeShm": True, "volumes": ["/h:/dev/shm"]}, "/job/volumes/0", ("/dev/shm",),
        prefix=True),
    bad("volume-map-relative-target", {"volume": {"/host": "data"}}, "/job/volume/~1host", ABSOLUTE),
    bad("volume-map-relative-source", {"volume": {"host": "/data"}}, "/job/volume/host", ABSOLUTE),
    bad("ttl-negative-duration-says-why", {"ttlAfterFinish": "-1s"}, "/job/ttlAfterFinish", AT_LEAST_0),
]


@pytest.mark.parametrize(("job", "pointer", "keywords", "prefix", "base"), PRECISE_POINTERS)
def test_error_points_at_the_offending_item(job, pointer, keywords, prefix, base):
    errors = rejected(job, base=base)
    assert_error(errors, pointer, keywords, prefix=prefix)


def test_several_unknown_fields_are_each_named():
    errors = rejected({"gpus": 1, "foo": 2, "imagePullpolicy": "Never", "pvc": [{"size": "1Gi", "path": "/d", "x": 1}]})
    assert {"/job/gpus", "/job/foo", "/job/imagePullpolicy", "/job/pvc/0/x"} <= set(pointers(errors))
    for error in errors:
        assert "unknown" in error.message.lower()


def test_unknown_field_beside_job_is_named():
    with pytest.raises(ValidationFailed) as info:
        load_submit_request({"job": dict(BASE), "jobs": {}})
    assert "/jobs" in pointers(info.value.errors)


def test_every_error_is_reported_at_once():
    job = {
        "name": "Bad_Name", "gpu": 1.5, "tty": True, "cpu": 2, "cpuLimit": 1, "memory": "2G", "memoryLimit": "1G",
        "gpus": 1, "ports": [0], "preemptible": True, "workingDir": "rel", "interactive": "yes",
        "environment": {"1X": "a"}, "ttlAfterFinish": -5, "serviceType": "bogus", "image": "has space",
        "pvc": [{"size": "1Gi", "path": "rel"}], "parallelism": 3,
    }
    errors = rejected(job)
    expected = {
        "/job/name", "/job/gpu", "/job/tty", "/job/cpuLimit", "/job/memoryLimit", "/job/gpus", "/job/preemptible",
        "/job/workingDir", "/job/interactive", "/job/environment/1X", "/job/ttlAfterFinish", "/job/serviceType",
        "/job/image", "/job/pvc/0/path", "/job/parallelism",
    }
    got = set(pointers(errors))
    assert expected <= got, f"missing: {sorted(expected - got)}"
    assert any(p == "/job/ports/0" or p.startswith("/job/ports/0/") for p in got)


def resolves(pointer: str, document: dict) -> bool:
    """Whether a JSON pointer (RFC 6901) names a place in ``document``."""
    node: object = document
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False
    return True


@pytest.mark.parametrize(("job", "expected"), [
    ({"ports": ["80:8888"], "serviceType": "nodeport"},
     [("/job/ports/0", "external: with serviceType nodeport, external must be a node port in 30000-32767")]),
    ({"ports": ["80:80", 80]}, [("/job/ports/1", "container: container ports must be unique: 80 is also at ports/0")]),
    ({"pvc": ["fast:0:/d"]}, [("/job/pvc/0", "size: must be greater than 0")]),
    ({"pvc": ["Bad_Claim:/d"]}, [("/job/pvc/0", "claimName: must be a DNS-1123 subdomain: lowercase letters, "
                                                "digits, '-' and '.'")]),
    ({"volume": {"/a": "/c"}, "volumes": ["/b:/c"]},
     [("/job/volumes/0", "mount paths must be unique across pvc, volume, volumes, largeShm and createHomeDir: /c is "
                         "already used by volume/~1a")]),
    ({"ports": [{"container": 80, "external": 80}], "serviceType": "nodeport"},
     [("/job/ports/0/external", "with serviceType nodeport, external must be a node port in 30000-32767")]),
    ({"pvc": [{"size": "0", "path": "/d"}]}, [("/job/pvc/0/size", "must be greater than 0")]),
])
def test_an_item_given_as_a_string_has_its_errors_at_the_item_naming_the_part(job, expected):
    """A CLI string (``"80:8888"``) has no members to point at: the pointer names the item, the message the part,
    so that every pointer resolves in the request as sent; an object's errors point at its member."""
    errors = rejected(job)
    assert [(error.field, error.message) for error in errors] == expected
    assert all(resolves(error.field, {"job": {**BASE, **job}}) for error in errors)


def test_error_summary_counts_problems():
    with pytest.raises(ValidationFailed) as info:
        load_submit_request({"job": {**BASE, "gpu": -1, "cpu": 0}})
    assert len(info.value.errors) == 2
    assert "2" in info.value.message
    envelope = info.value.to_dict()
    assert envelope["status"] == 422
    assert set(envelope) >= {"status", "message", "details", "errors"}
    assert sorted(e["field"] for e in envelope["errors"]) == ["/job/cpu", "/job/gpu"]


def test_valid_edge_values_are_accepted():
    """The limits of the rules themselves are inside them (guards against off-by-one rules)."""
    render({"name": "a" * 63, "project": "p" * 63, "gpu": 0.99, "cpu": 0.001, "cpuLimit": 0.001,
            "ports": [{"container": 1, "external": 30000}, {"container": 65535, "external": 32767}],
            "serviceType": "nodeport", "backoffLimit": 0, "completions": 1, "parallelism": 1, "ttlAfterFinish": 0})


@pytest.mark.parametrize(
    "payload",
    [None, [], "job", 5, {}, {"job": None}, {"job": []}, {"job": "x"}, {"Job": {}}],
    ids=["null", "list", "string", "number", "no-job", "job-null", "job-list", "job-string", "job-misspelt"],
)
def test_wrong_body_shape_is_a_bad_request(payload):
    with pytest.raises(BadRequest) as info:
        load_submit_request(payload)
    assert info.value.status == 400


def test_generated_suffixes_use_every_letter_in_every_position():
    """The suffix is one random draw written in base 27: each position must still range over the whole
    alphabet (a wrong digit split would pin a position or leave the alphabet)."""
    seen = [set() for _ in range(names.SUFFIX_LENGTH)]
    for _ in range(3000):
        suffix = names.generated_name("p").removeprefix("p-")
        assert len(suffix) == names.SUFFIX_LENGTH
        for position, letter in enumerate(suffix):
            seen[position].add(letter)
    assert all(letters == set(names.SUFFIX_ALPHABET) for letters in seen)
