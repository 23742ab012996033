"""The deployment artefacts: deploy/ (kustomize), Dockerfile and .dockerignore, checked statically.

Every object in deploy/ must validate against the official Kubernetes 1.37 schemas, and the RBAC rules must
grant exactly the (group, resource, verb) triples that ``runai_submit.cluster.kinds`` says the service uses in
the auth mode each kustomization runs in (``runai_submit.cluster.rights``), and the role meant for researchers
exactly what a caller's own calls need.

There is no kustomize binary in CI, so ``render`` below builds what ``kubectl kustomize`` would from the
small set of kustomize features deploy/ uses (and refuses any other); where kubectl is installed, a test
compares the two outputs.
"""
from __future__ import annotations

import copy
import functools
import json
import os
import re
import runpy
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml

from runai_submit.cluster.kinds import KINDS, VERBS, WORKLOAD_KINDS
from runai_submit.cluster.rights import caller_rights, service_cluster_wide_rights, service_rights
from runai_submit.config import ENV_PREFIX, Settings
from tests.k8s_schema import assert_valid_manifest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KUSTOMIZATIONS = sorted(path.parent for path in DEPLOY.rglob("kustomization.yaml"))
KUSTOMIZATION_IDS = [str(path.relative_to(DEPLOY)) for path in KUSTOMIZATIONS]
EXAMPLE = DEPLOY / "overlays" / "example"
MODE_OVERLAYS = {"header": DEPLOY / "overlays" / "header", "impersonate": DEPLOY / "overlays" / "impersonate"}
# Roles meant for the users of the service (bound to them, never to the service account) carry this label.
CALLER_RIGHTS = "caller-rights"
APP = "runai-submit"  # the Deployment, its container, Service and ServiceAccount

# --- what the code says the service does (derived from the kind table, never written out here) ----------


def _triples(kinds: dict, verbs: dict) -> set[tuple[str, str, str]]:
    assert set(verbs) == set(kinds), "kinds.VERBS must name a verb list for every kind in kinds.KINDS"
    return {(kind.group, kind.plural, verb) for name, kind in kinds.items() for verb in verbs[name]}


#: Every (API group, resource, verb) the service calls.
NEEDED = _triples(KINDS, VERBS)
#: The calls that are cluster-wide: cluster-scoped kinds, and listing the workload kind in all namespaces.
CLUSTER_WIDE_NEEDED = {
    (kind.group, kind.plural, verb) for name, kind in KINDS.items() if not kind.namespaced for verb in VERBS[name]
} | {(kind.group, kind.plural, "list") for kind in WORKLOAD_KINDS.values()}
#: The calls made inside one project namespace.
NAMESPACED_NEEDED = {
    (kind.group, kind.plural, verb) for name, kind in KINDS.items() if kind.namespaced for verb in VERBS[name]
}

# --- a small kustomize ---------------------------------------------------------------------------------

SUPPORTED_FIELDS = {"apiVersion", "kind", "namespace", "resources", "images", "patches", "configMapGenerator"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PersistentVolume", "StorageClass", "PriorityClass", "IngressClass"}
MERGED_BY_NAME = {"containers", "initContainers", "env", "volumes", "volumeMounts"}


def load_documents(path: Path) -> list[dict]:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def load_kustomization(folder: Path) -> dict:
    (kustomization,) = load_documents(folder / "kustomization.yaml")
    return kustomization


def _key(obj: dict) -> tuple[str, str, str]:
    meta = obj.get("metadata", {})
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def _strategic_merge(base, patch, field: str = ""):
    """A strategic merge patch, for the fields deploy/ patches: maps merge, named lists merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            if key.startswith("$"):
                raise NotImplementedError(f"the test renderer does not support {key} inside an object")
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = _strategic_merge(merged[key], value, key)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and field not in MERGED_BY_NAME:
        raise NotImplementedError(f"the test renderer cannot merge the list {field!r}; extend _strategic_merge")
    if isinstance(base, list) and isinstance(patch, list):
        # Like kustomize: entries with a new name come first (in patch order), then the merged old ones.
        patches = {item["name"]: item for item in patch}
        old = {item["name"] for item in base}
        new = [copy.deepcopy(item) for item in patch if item["name"] not in old]
        return new + [_strategic_merge(item, patches[item["name"]]) if item["name"] in patches else copy.deepcopy(item)
                      for item in base]
    return copy.deepcopy(patch)


def _read_env_file(path: Path) -> dict[str, str]:
    data = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            data[name] = value
    return data


def _generate_config_maps(folder: Path, kustomization: dict, objects: list[dict]) -> None:
    for generator in kustomization.get("configMapGenerator", []):
        unknown = set(generator) - {"name", "envs", "literals", "behavior"}
        assert not unknown, f"configMapGenerator fields the test renderer does not support: {unknown}"
        data: dict[str, str] = {}
        for env_file in generator.get("envs", []):
            data.update(_read_env_file(folder / env_file))
        for literal in generator.get("literals", []):
            name, _, value = literal.partition("=")
            data[name] = value
        behavior = generator.get("behavior", "create")
        existing = [obj for obj in objects
                    if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == generator["name"]]
        if behavior == "create":
            assert not existing, f"{folder}: ConfigMap {generator['name']} generated twice"
            objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]},
                            "data": data})
        else:
            assert behavior in ("merge", "replace"), behavior
            assert len(existing) == 1, f"{folder}: {behavior} of ConfigMap {generator['name']}, which no base generates"
            existing[0]["data"] = {**existing[0].get("data", {}), **data} if behavior == "merge" else data


def _apply_patch(folder: Path, entry: dict, objects: list[dict]) -> None:
    assert set(entry) == {"path"}, f"{folder}: only file patches (path:) are supported, not {sorted(entry)}"
    for patch in load_documents(folder / entry["path"]):
        wanted = (patch["kind"], patch["metadata"]["name"], patch["metadata"].get("namespace"))
        matches = [i for i, obj in enumerate(objects)
                   if (obj["kind"], obj["metadata"]["name"]) == wanted[:2]
                   and wanted[2] in (None, obj["metadata"].get("namespace"))
                   and obj["apiVersion"] == patch["apiVersion"]]
        assert len(matches) == 1, f"{folder / entry['path']}: a patch targets one object, this one {len(matches)}"
        (index,) = matches
        directive = patch.get("$patch")
        if directive == "delete":
            del objects[index]
        else:
            assert directive is None, f"unsupported $patch: {directive}"
            objects[index] = _strategic_merge(objects[index], patch)


def _set_image(image: str, rules: list[dict]) -> str:
    if "@" in image:
        name, tag = image.split("@", 1)
    elif ":" in image.rsplit("/", 1)[-1]:
        name, tag = image.rsplit(":", 1)
    else:
        name, tag = image, None
    for rule in rules:
        if rule["name"] == name:
            name = rule.get("newName", name)
            tag = rule.get("newTag", tag)
            if "digest" in rule:
                return f"{name}@{rule['digest']}"
    return f"{name}:{tag}" if tag else name


@functools.lru_cache(maxsize=None)
def _render(folder: Path) -> str:
    kustomization = load_kustomization(folder)
    unknown = set(kustomization) - SUPPORTED_FIELDS
    assert not unknown, f"{folder}: kustomize fields the test renderer does not support: {sorted(unknown)}"
    objects: list[dict] = []
    for entry in kustomization.get("resources", []):
        path = folder / entry
        objects.extend(render(path) if path.is_dir() else load_documents(path))
    _generate_config_maps(folder, kustomization, objects)
    for entry in kustomization.get("patches", []):
        _apply_patch(folder, entry, objects)
    namespace = kustomization.get("namespace")
    for obj in objects:
        if namespace and obj["kind"] == "Namespace":
            obj["metadata"]["name"] = namespace
        elif namespace and obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = namespace
        if obj["kind"] == "Deployment":
            for container in obj["spec"]["template"]["spec"]["containers"]:
                container["image"] = _set_image(container["image"], kustomization.get("images", []))
    keys = [_key(obj) for obj in objects]
    assert len(keys) == len(set(keys)), f"{folder}: duplicate objects {sorted(k for k in keys if keys.count(k) > 1)}"
    return json.dumps(objects)


def render(folder: Path) -> list[dict]:
    """What ``kubectl kustomize folder`` prints, as dicts (generated ConfigMaps without the hash suffix)."""
    return json.loads(_render(folder))


def only(objects: list[dict], kind: str) -> dict:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [obj for obj in objects if obj["kind"] == kind]


def container_of(deployment: dict) -> dict:
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == APP]
    return container


def _referenced_files(folder: Path) -> set[Path]:
    kustomization = load_kustomization(folder)
    files = {folder / "kustomization.yaml"}
    files |= {folder / entry for entry in kustomization.get("resources", [])}
    files |= {folder / entry["path"] for entry in kustomization.get("patches", [])}
    files |= {folder / env for gen in kustomization.get("configMapGenerator", []) for env in gen.get("envs", [])}
    return files


def _patch_files() -> set[Path]:
    return {(folder / entry["path"]).resolve()
            for folder in KUSTOMIZATIONS for entry in load_kustomization(folder).get("patches", [])}


def _manifest_documents() -> list[tuple[str, dict]]:
    """Every document of every YAML file in deploy/ that is a whole Kubernetes object."""
    skip = _patch_files()
    documents = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or path.resolve() in skip:
            continue
        for index, doc in enumerate(load_documents(path)):
            documents.append((f"{path.relative_to(DEPLOY)}#{index}", doc))
    return documents


MANIFESTS = _manifest_documents() if DEPLOY.is_dir() else []

# --- layout ---------------------------------------------------------------------------------------------


def test_deploy_has_a_base_and_an_example_overlay():
    assert DEPLOY / "base" in KUSTOMIZATIONS
    assert EXAMPLE in KUSTOMIZATIONS
    assert "../../base" in load_kustomization(EXAMPLE)["resources"]


def test_the_base_is_secure_by_default_and_each_mode_has_an_overlay():
    """token mode in the base (issue 9); impersonate and header each in an overlay of their own."""
    assert auth_mode_of(DEPLOY / "base") == "token"
    assert auth_mode_of(EXAMPLE) == "token"
    for mode, folder in MODE_OVERLAYS.items():
        assert folder in KUSTOMIZATIONS, f"no overlay for {mode} mode"
        assert auth_mode_of(folder) == mode


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_kustomization_files_exist(folder):
    kustomization = load_kustomization(folder)
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    for path in _referenced_files(folder):
        assert path.exists(), f"{folder.relative_to(ROOT)}/kustomization.yaml names {path}, which does not exist"
    for entry in kustomization.get("resources", []):
        if (folder / entry).is_dir():
            assert (folder / entry / "kustomization.yaml").is_file(), f"{entry} is a folder without a kustomization"


def test_every_file_in_deploy_is_used_by_a_kustomization():
    """A manifest no kustomization names would never be applied (nor rendered by these tests)."""
    used = {path.resolve() for folder in KUSTOMIZATIONS for path in _referenced_files(folder)}
    present = {path.resolve() for path in DEPLOY.rglob("*") if path.is_file()}
    assert present - used == set()


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_patches_each_target_one_rendered_object(folder):
    kustomization = load_kustomization(folder)
    bases = [obj for entry in kustomization.get("resources", []) if (folder / entry).is_dir()
             for obj in render(folder / entry)]
    bases += [obj for entry in kustomization.get("resources", []) if not (folder / entry).is_dir()
              for obj in load_documents(folder / entry)]
    for entry in kustomization.get("patches", []):
        for patch in load_documents(folder / entry["path"]):
            targets = [obj for obj in bases if (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
                       == (patch["apiVersion"], patch["kind"], patch["metadata"]["name"])]
            assert len(targets) == 1, f"{entry['path']} patches {patch['kind']} {patch['metadata']['name']}: " \
                                      f"{len(targets)} objects match"


# --- schemas --------------------------------------------------------------------------------------------


def test_the_base_holds_every_object_the_service_needs():
    kinds = {obj["kind"] for obj in render(DEPLOY / "base")}
    assert {"Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
            "PodDisruptionBudget"} <= kinds


@pytest.mark.parametrize("where, document", MANIFESTS, ids=[where for where, _ in MANIFESTS])
def test_manifest_validates_against_the_official_schema(where, document):
    assert_valid_manifest(document)


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_rendered_objects_validate_against_the_official_schema(folder):
    objects = render(folder)
    assert objects
    for obj in objects:
        assert_valid_manifest(obj)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed")
@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_the_test_renderer_agrees_with_kubectl_kustomize(folder):
    out = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    generated = {generator["name"] for path in KUSTOMIZATIONS
                 for generator in load_kustomization(path).get("configMapGenerator", [])}
    for name in generated:  # drop the content hash kustomize appends to generated names
        out = re.sub(rf"\b{re.escape(name)}-[a-z0-9]{{10}}\b", name, out)
    theirs = sorted((obj for obj in yaml.safe_load_all(out) if obj), key=_key)
    ours = sorted(render(folder), key=_key)
    assert [_key(obj) for obj in ours] == [_key(obj) for obj in theirs]
    assert ours == theirs


# --- the Deployment -------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_deployment_is_highly_available(folder):
    deployment = only(render(folder), "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    rolling = spec["strategy"]["rollingUpdate"]
    assert spec["strategy"]["type"] == "RollingUpdate" and rolling["maxUnavailable"] == 0 and rolling["maxSurge"] >= 1
    pod = spec["template"]["spec"]
    by_node = [c for c in pod.get("topologySpreadConstraints", []) if c["topologyKey"] == "kubernetes.io/hostname"]
    assert by_node, "replicas must be spread over nodes"
    for constraint in by_node:
        assert constraint["labelSelector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        assert constraint["maxSkew"] == 1


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_deployment_probes_use_the_health_endpoints(folder):
    deployment = only(render(folder), "Deployment")
    container = container_of(deployment)
    port_names = {port["name"]: port["containerPort"] for port in container["ports"]}
    probes = {name: container[name]["httpGet"] for name in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    for probe in probes.values():
        assert probe["port"] in port_names or probe["port"] in port_names.values()
    # /readyz waits up to RUNAI_SUBMIT_READY_TIMEOUT for the API server; the probe must wait longer.
    settings = Settings.load(environ=_container_environment(folder))
    assert container["readinessProbe"]["timeoutSeconds"] > settings.ready_timeout


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_deployment_runs_non_root_with_a_read_only_root_filesystem(folder):
    deployment = only(render(folder), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    context = container_of(deployment)["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == pod["securityContext"]["runAsUser"] == _dockerfile_user()[0]
    assert context["runAsUser"] != 0
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context.get("privileged", False) is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, container["name"]


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_deployment_sets_resource_requests_and_limits(folder):
    deployment = only(render(folder), "Deployment")
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        resources = container["resources"]
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[section]), f"{container['name']}: {section} needs cpu and memory"
        assert _quantity(resources["requests"]["memory"]) <= _quantity(resources["limits"]["memory"])
        assert _quantity(resources["requests"]["cpu"]) <= _quantity(resources["limits"]["cpu"])
        # The /tmp emptyDir in memory counts against the memory limit.
        tmp = _memory_volumes_size(deployment)
        assert tmp < _quantity(resources["limits"]["memory"]) / 4


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_deployment_environment_is_valid_settings(folder):
    """The settings deploy/ gives the service load (it refuses to start otherwise), in-cluster."""
    environ = _container_environment(folder)
    settings = Settings.load(environ=environ)
    assert settings.backend == "incluster"
    gunicorn_source = (ROOT / "gunicorn.conf.py").read_text()
    known = {ENV_PREFIX + name.upper() for name in Settings.__dataclass_fields__}
    for name in environ:
        if name.startswith(ENV_PREFIX):
            assert name in known or re.search(rf"\b{name}\b", gunicorn_source), \
                f"{name} is read by neither Settings nor gunicorn.conf.py"


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_gunicorn_fits_the_pod(folder, monkeypatch):
    """gunicorn.conf.py, run with the pod's environment: port, writable folders, shutdown within the grace period."""
    deployment = only(render(folder), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = container_of(deployment)
    environ = _container_environment(folder)
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX) or name in ("PROMETHEUS_MULTIPROC_DIR", "GUNICORN_CMD_ARGS", "WEB_CONCURRENCY"):
            monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))

    (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == "http"]
    assert config["bind"].rpartition(":")[2] == str(port)
    writable = [mount["mountPath"] for mount in container["volumeMounts"] if not mount.get("readOnly")]
    tmp_dirs = [config.get("worker_tmp_dir") or environ.get("TMPDIR", "/tmp"), environ["PROMETHEUS_MULTIPROC_DIR"]]
    for folder_path in tmp_dirs:
        assert any(PurePosixPath(folder_path).is_relative_to(mount) for mount in writable), \
            f"{folder_path} is on the read-only root filesystem"
    # The control socket would be created under $HOME, on the read-only root filesystem.
    assert _gunicorn_setting(config, environ, "control_socket_disable") is True

    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    shutdown = int(pre_stop[1]) + int(config["graceful_timeout"])
    assert pod["terminationGracePeriodSeconds"] > shutdown, "the kubelet would kill submits still in flight"


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_no_service_links_shadow_the_settings(folder):
    """A Service named runai-submit would inject RUNAI_SUBMIT_PORT=tcp://... and friends into the pod."""
    objects = render(folder)
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    prefixes = {service["metadata"]["name"].upper().replace("-", "_") + "_" for service in of_kind(objects, "Service")}
    if ENV_PREFIX in prefixes:
        assert pod.get("enableServiceLinks") is False


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_prometheus_annotations_point_at_the_metrics_endpoint(folder):
    deployment = only(render(folder), "Deployment")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    ports = {p["containerPort"] for p in container_of(deployment)["ports"]}
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) in ports
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_image_comes_from_the_kustomization(folder):
    image = container_of(only(render(folder), "Deployment"))["image"]
    assert re.fullmatch(r"[^:@]+(:[\w.-]+|@sha256:[0-9a-f]{64})", image.rsplit("/", 1)[-1]), \
        f"{image!r} has no tag or digest"
    assert not image.endswith(":latest")


# --- Service, PodDisruptionBudget, ServiceAccount --------------------------------------------------------


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_service_selects_the_deployment_pods(folder):
    objects = render(folder)
    deployment = only(objects, "Deployment")
    service = only(objects, "Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    names = {p["name"] for p in container_of(deployment)["ports"]}
    numbers = {p["containerPort"] for p in container_of(deployment)["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in names | numbers
    assert service["metadata"].get("namespace") == deployment["metadata"].get("namespace")


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_pod_disruption_budget_covers_the_pods_and_allows_drains(folder):
    objects = render(folder)
    deployment = only(objects, "Deployment")
    budget = only(objects, "PodDisruptionBudget")["spec"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["selector"]["matchLabels"]
    assert budget["selector"]["matchLabels"].items() <= pod_labels.items()
    replicas = deployment["spec"]["replicas"]
    if "maxUnavailable" in budget:
        allowed = budget["maxUnavailable"]
    else:
        allowed = replicas - budget["minAvailable"]
    assert isinstance(allowed, int), "percentages are not used here"
    assert 1 <= allowed < replicas, "a drain must be able to evict one replica while another keeps serving"


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_the_deployment_service_account_is_the_one_bound(folder):
    objects = render(folder)
    deployment = only(objects, "Deployment")
    account = only(objects, "ServiceAccount")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert account["metadata"].get("namespace") == deployment["metadata"].get("namespace")
    bindings = of_kind(objects, "ClusterRoleBinding") + of_kind(objects, "RoleBinding")
    assert bindings
    expected = [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                 "namespace": account["metadata"]["namespace"]}]
    caller_roles = {role["metadata"]["name"] for role in of_kind(objects, "ClusterRole") if _for_callers(role)}
    for binding in bindings:
        where = f"{binding['kind']} {binding['metadata']['name']}"
        if _for_callers(binding):
            # Researchers' rights go to researchers: the service account must never hold them this way.
            assert binding["roleRef"]["name"] in caller_roles, where
            assert all(subject["kind"] in ("User", "Group") for subject in binding["subjects"]), where
        else:
            assert binding["subjects"] == expected, where


# --- RBAC -----------------------------------------------------------------------------------------------


def _rule_triples(rules: list[dict]) -> set[tuple[str, str, str]]:
    triples = set()
    for rule in rules:
        # resourceNames would narrow a rule to some objects, nonResourceURLs grant paths: neither is wanted.
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, rule
        triples |= {(group, resource, verb) for group in rule["apiGroups"] for resource in rule["resources"]
                    for verb in rule["verbs"]}
    return triples


def _for_callers(obj: dict) -> bool:
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component") == CALLER_RIGHTS


def auth_mode_of(folder: Path) -> str:
    return Settings.load(environ=_container_environment(folder)).auth_mode


def grants(objects: list[dict], *, callers: bool = False) -> tuple[set, dict[str, set]]:
    """What the bindings give the ServiceAccount (or, ``callers``, the users): (cluster-wide, namespace -> triples)."""
    roles = {("ClusterRole", None, role["metadata"]["name"]): role for role in of_kind(objects, "ClusterRole")}
    roles |= {("Role", role["metadata"]["namespace"], role["metadata"]["name"]): role
              for role in of_kind(objects, "Role")}
    cluster_wide: set = set()
    per_namespace: dict[str, set] = {}
    for binding in of_kind(objects, "ClusterRoleBinding") + of_kind(objects, "RoleBinding"):
        if _for_callers(binding) != callers:
            continue
        ref = binding["roleRef"]
        assert ref["apiGroup"] == "rbac.authorization.k8s.io"
        namespace = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        role = roles.get((ref["kind"], namespace if ref["kind"] == "Role" else None, ref["name"]))
        assert role is not None, f"{binding['kind']} {binding['metadata']['name']} refers to a missing {ref['kind']}"
        triples = _rule_triples(role["rules"])
        if namespace is None:
            cluster_wide |= triples
        else:
            per_namespace.setdefault(namespace, set()).update(triples)
    return cluster_wide, per_namespace


def test_the_code_uses_cluster_wide_and_namespaced_calls():
    """The derivation below is not empty: a sanity check of the kind table the RBAC tests rely on."""
    assert ("", "namespaces", "list") in CLUSTER_WIDE_NEEDED
    assert CLUSTER_WIDE_NEEDED <= NEEDED and NAMESPACED_NEEDED <= NEEDED
    assert NAMESPACED_NEEDED | CLUSTER_WIDE_NEEDED == NEEDED


def test_the_rights_per_mode_are_derived_from_the_kind_table():
    """header mode is every call the service makes; the identity modes keep only project discovery."""
    assert service_rights("header") == NEEDED
    assert service_cluster_wide_rights("header") == CLUSTER_WIDE_NEEDED
    assert caller_rights() == NAMESPACED_NEEDED
    assert service_rights("token") == {("", "namespaces", "get"), ("", "namespaces", "list")}
    assert service_rights("impersonate") - service_rights("token") == {("", "users", "impersonate"),
                                                                       ("", "groups", "impersonate")}
    assert not {verb for _, _, verb in service_rights("token")} & {"create", "delete", "update", "patch"}


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_rbac_grants_exactly_the_calls_the_service_makes(folder):
    needed = service_rights(auth_mode_of(folder))
    cluster_wide, per_namespace = grants(render(folder))
    granted = cluster_wide.union(*per_namespace.values())
    assert granted - needed == set(), "rights the service never uses"
    assert needed - granted == set(), "calls the service makes that would be refused"


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_rbac_cluster_wide_calls_are_granted_cluster_wide(folder):
    mode = auth_mode_of(folder)
    cluster_wide, per_namespace = grants(render(folder))
    assert service_cluster_wide_rights(mode) <= cluster_wide, \
        "listing namespaces (and in header mode all projects' jobs; in impersonate mode impersonation) is cluster-wide"
    namespaced = service_rights(mode) - service_cluster_wide_rights(mode)
    for namespace, triples in per_namespace.items():
        assert triples <= namespaced, f"{namespace}: a RoleBinding cannot grant cluster-scoped kinds"
        assert namespaced <= triples | cluster_wide, f"{namespace}: submits there would be refused"


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_the_researcher_role_grants_exactly_a_callers_calls(folder):
    objects = render(folder)
    (role,) = [role for role in of_kind(objects, "ClusterRole") if _for_callers(role)]
    assert _rule_triples(role["rules"]) == caller_rights()
    cluster_wide, _ = grants(objects, callers=True)
    assert cluster_wide == set(), "researchers' rights are bound per project namespace"


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_every_role_is_bound(folder):
    """Every role of the service is bound; the researcher role is the site's to bind to its users."""
    objects = render(folder)
    refs = {(b["roleRef"]["kind"], b["roleRef"]["name"]) for b in of_kind(objects, "ClusterRoleBinding")
            + of_kind(objects, "RoleBinding")}
    for role in of_kind(objects, "ClusterRole") + of_kind(objects, "Role"):
        if not _for_callers(role):
            assert (role["kind"], role["metadata"]["name"]) in refs, \
                f"{role['kind']} {role['metadata']['name']} is unused"


def test_example_overlay_grants_researchers_their_project_namespaces_only():
    objects = render(EXAMPLE)
    cluster_wide, per_namespace = grants(objects)
    assert cluster_wide == service_rights("token") and per_namespace == {}, "the service only discovers projects"
    cluster_wide, per_namespace = grants(objects, callers=True)
    assert cluster_wide == set()
    assert per_namespace, "the example binds the researcher role in project namespaces"
    for namespace, triples in per_namespace.items():
        assert triples == caller_rights(), namespace
    assert "kube-system" not in per_namespace


# --- Dockerfile -----------------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(parts[0].upper(), parts[1] if len(parts) > 1 else "")
            for parts in (line.strip().split(None, 1) for line in text.splitlines() if line.strip())]


def _stages() -> list[dict]:
    """Each FROM with its resolved image, name and following instructions."""
    global_args: dict[str, str] = {}
    stages: list[dict] = []
    for instruction, arguments in _dockerfile():
        if instruction == "ARG" and not stages:
            name, _, default = arguments.partition("=")
            global_args[name] = default
        elif instruction == "FROM":
            words = arguments.split()
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args[m.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append({"image": image, "name": name, "steps": []})
        else:
            assert stages or instruction == "ARG", f"{instruction} before the first FROM"
            stages[-1]["steps"].append((instruction, arguments))
    return stages


def _dockerfile_user() -> tuple[int, int]:
    users = [arguments for instruction, arguments in _stages()[-1]["steps"] if instruction == "USER"]
    assert users, "the runtime stage must set USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and (not group or group.isdigit()), "a numeric USER lets Kubernetes verify runAsNonRoot"
    return int(user), int(group or user)


def _copies(stage: dict) -> list[tuple[str | None, list[str], str]]:
    result = []
    for instruction, arguments in stage["steps"]:
        if instruction == "COPY":
            words = shlex.split(arguments)
            source = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            paths = [w for w in words if not w.startswith("--")]
            result.append((source, paths[:-1], paths[-1]))
    return result


def test_dockerfile_is_multi_stage_from_the_supported_python():
    stages = _stages()
    assert len(stages) >= 2
    python = re.search(r"python_requires\s*=\s*>=\s*(\d+\.\d+)", (ROOT / "setup.cfg").read_text()).group(1)
    for stage in stages:
        assert re.fullmatch(rf"python:{re.escape(python)}(\.\d+)?-slim(-\w+)?(@sha256:[0-9a-f]{{64}})?", stage["image"])
    earlier = {stage["name"] for stage in stages[:-1]}
    runtime_sources = {source for source, _, _ in _copies(stages[-1]) if source}
    assert runtime_sources and runtime_sources <= earlier, "the runtime stage copies its files from the builder"


def test_dockerfile_builds_from_the_pinned_requirements_without_caches():
    builder, runtime = _stages()[0], _stages()[-1]
    copied = [path for _, paths, _ in _copies(builder) for path in paths]
    assert "requirements.txt" in copied
    installs = [arguments for instruction, arguments in builder["steps"]
                if instruction == "RUN" and "pip install" in arguments]
    assert any(re.search(r"-r \S*requirements\.txt", command) for command in installs)
    for command in installs:
        assert "--no-cache-dir" in command
    assert not [a for i, a in runtime["steps"] if i == "RUN" and "pip " in a], "no pip in the runtime stage"
    assert re.search(r"^gunicorn==", (ROOT / "requirements.txt").read_text(), re.M)


def test_dockerfile_runs_the_app_as_a_non_root_user():
    uid, gid = _dockerfile_user()
    assert uid >= 1000 and gid >= 1000
    runtime = _stages()[-1]
    creates = " ".join(a for i, a in runtime["steps"] if i == "RUN")
    assert f"--uid {uid}" in creates and f"--gid {gid}" in creates, "the user exists in /etc/passwd"
    pod_context = only(render(DEPLOY / "base"), "Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert (pod_context["runAsUser"], pod_context["runAsGroup"]) == (uid, gid)


def test_dockerfile_serves_wsgi_app_with_the_gunicorn_settings():
    stages = _stages()
    steps = stages[-1]["steps"]
    cmd = [json.loads(arguments) for instruction, arguments in steps if instruction == "CMD"]
    assert cmd[-1] == ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    assert re.search(r"^app = ", (ROOT / "wsgi.py").read_text(), re.M)
    # The builder copies the entry points and the package where the runtime stage runs them.
    builder_files = {PurePosixPath(path).name for _, paths, _ in _copies(stages[0]) for path in paths}
    assert {"wsgi.py", "gunicorn.conf.py", "runai_submit"} <= builder_files
    workdir = [arguments for instruction, arguments in steps if instruction == "WORKDIR"][-1]
    assert any(dest.rstrip("/") == workdir for source, _, dest in _copies(stages[-1]) if source)
    builder_workdir = [arguments for instruction, arguments in stages[0]["steps"] if instruction == "WORKDIR"][-1]
    assert builder_workdir == workdir
    # The image listens where the Deployment expects it.
    exposed = {int(a) for i, a in steps if i == "EXPOSE"}
    container = container_of(only(render(DEPLOY / "base"), "Deployment"))
    assert exposed == {p["containerPort"] for p in container["ports"]}
    env = " ".join(a for i, a in steps if i == "ENV")
    assert f"RUNAI_SUBMIT_PORT={exposed.pop()}" in env


def test_dockerignore_sends_only_what_the_build_copies():
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for _, paths, _ in (copy for stage in _stages() for copy in _copies(stage) if copy[0] is None):
        for path in paths:
            assert (ROOT / path).exists(), f"COPY {path}: no such file"
            files = [ROOT / path] if (ROOT / path).is_file() else [p for p in (ROOT / path).rglob("*.py")]
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                if "__pycache__" not in relative:
                    assert not _docker_ignored(relative, patterns), f"{relative} is copied but .dockerignore drops it"
    for heavy in (".venv/bin/python", ".git/HEAD", "tests/test_deploy.py", "offline-cluster/x.yaml",
                  "deploy/base/deployment.yaml", "runai_submit/__pycache__/app.cpython-311.pyc"):
        assert _docker_ignored(heavy, patterns), f"{heavy} would be sent to the build"


# --- helpers --------------------------------------------------------------------------------------------


def _docker_ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    parents = [str(PurePosixPath(*PurePosixPath(path).parts[:n])) for n in range(1, len(PurePosixPath(path).parts) + 1)]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        regex = re.escape(body).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, candidate) for candidate in parents):
            ignored = not negated
    return ignored


def _gunicorn_setting(config: dict, environ: dict[str, str], name: str):
    """A gunicorn setting as gunicorn resolves it: GUNICORN_CMD_ARGS over the config file over the default."""
    from gunicorn.config import Config

    cfg = Config()
    args = cfg.parser().parse_args(shlex.split(environ.get("GUNICORN_CMD_ARGS", "")))
    if getattr(args, name, None) not in (None, False):
        return getattr(args, name)
    if name in config:
        return config[name]
    return cfg.settings[name].get()


def _container_environment(folder: Path) -> dict[str, str]:
    """The container's environment from its env literals and envFrom ConfigMaps (as kubelet builds it)."""
    objects = render(folder)
    container = container_of(only(objects, "Deployment"))
    maps = {obj["metadata"]["name"]: obj.get("data", {}) for obj in of_kind(objects, "ConfigMap")}
    environ: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        assert name in maps, f"envFrom names ConfigMap {name}, which is not rendered"
        environ.update(maps[name])
    for variable in container.get("env", []):
        assert "value" in variable, f"{variable['name']}: only literal values are expected"
        environ[variable["name"]] = variable["value"]
    return environ


_SUFFIXES = {"": 1, "m": 0.001, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}


def _quantity(text) -> float:
    number, suffix = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text)).groups()
    return float(number) * _SUFFIXES[suffix]


def _memory_volumes_size(deployment: dict) -> float:
    total = 0.0
    for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
        empty_dir = volume.get("emptyDir")
        if empty_dir is not None and empty_dir.get("medium") == "Memory":
            assert "sizeLimit" in empty_dir, f"{volume['name']}: a memory emptyDir needs a sizeLimit"
            total += _quantity(empty_dir["sizeLimit"])
    return total
