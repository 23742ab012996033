"""A real Kubernetes control plane for the tests: ``../shared/kube`` (v1.28, no nodes), or a cluster you name.

``real_cluster()`` (the session fixture in conftest) picks, in order:
1. ``RUNAI_SUBMIT_TEST_KUBECONFIG``: a kubeconfig with admin rights on a cluster you provide;
2. the kit at ``<repo>/../shared/kube``: started in a temporary folder, stopped and purged at the end;
3. neither: the tests that need it are skipped, and the reason says how to get one.

Everything here talks to the API server as admin with plain JSON, through the ``kubernetes`` client's own
configuration (TLS, client certificates): the same path the service uses, none of its code. ``connect()``
wraps any kubeconfig the same way, so the fake API server can be driven by the very same calls
(tests/test_fake_vs_real.py).

Tests leave a cluster you provide as they found it: each works in a namespace of its own, and the RunaiJob
CRD is installed (and removed again) only where the cluster has none; a CRD of your own is never touched.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import kubernetes.client
import kubernetes.config
import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBECONFIG_ENV = "RUNAI_SUBMIT_TEST_KUBECONFIG"
# Where the kit is looked for; RUNAI_SUBMIT_TEST_KIT=none runs the suite as a clone without ../shared would.
KIT_ENV = "RUNAI_SUBMIT_TEST_KIT"
KIT = Path(os.environ.get(KIT_ENV) or ROOT.parent / "shared" / "kube")
SKIP_REASON = (
    f"no real Kubernetes control plane: set {KUBECONFIG_ENV} to an admin kubeconfig of a cluster you provide, "
    f"or put the control-plane kit at {KIT} (shared/kube beside the clone, as CI has it)"
)
RUNAIJOB_CRD = Path(__file__).resolve().parent / "crds" / "runaijob.yaml"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
# On every object the tests put into a cluster beyond their own namespaces, so that they know what is theirs.
TEST_LABELS = {"app.kubernetes.io/managed-by": "runai-submit-tests"}
KIT_START_ATTEMPTS = 2
# Generous bounds that only catch a hang; the control plane answers in milliseconds.
WAIT_SECONDS = 60.0


class KubeError(Exception):
    def __init__(self, status: int, body: Any, what: str) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{what}: HTTP {status}: {body}")


@dataclass
class RealCluster:
    """An API server the tests may change: admin requests, namespaces, tokens and CRDs."""

    kubeconfig: str
    api: kubernetes.client.ApiClient
    source: str  # "kit" or "env"
    server: str = ""
    kit_dir: Path | None = None
    _namespaces: list[str] = field(default_factory=list)

    # --- raw requests as admin ---------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, *, query: dict | None = None,
                headers: dict | None = None, expect: tuple[int, ...] = (200, 201, 202),
                auth: bool = True) -> tuple[int, Any, dict]:
        """One call; returns (status, parsed JSON or text, headers); raises KubeError outside ``expect``."""
        if query:
            path = f"{path}?{urlencode(query)}"
        header_params = {"Accept": "application/json", "Content-Type": "application/json", **(headers or {})}
        if method == "PATCH" and "Content-Type" not in (headers or {}):
            header_params["Content-Type"] = "application/merge-patch+json"
        serialized = self.api.param_serialize(method=method, resource_path=path, header_params=header_params,
                                              body=body, auth_settings=["BearerToken"] if auth else [])
        response = self.api.call_api(*serialized, _request_timeout=(5, 30))
        raw = response.read()
        try:
            data: Any = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode(errors="replace")
        if response.status not in expect:
            raise KubeError(response.status, data, f"{method} {path}")
        return response.status, data, dict(response.headers or {})

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)[1]

    def exists(self, path: str) -> bool:
        return self.request("GET", path, expect=(200, 404))[0] == 200

    def create(self, path: str, body: dict) -> dict:
        return self.request("POST", path, body)[1]

    def delete(self, path: str, *, query: dict | None = None) -> bool:
        return self.request("DELETE", path, query=query, expect=(200, 202, 404))[0] != 404

    def apply(self, path: str, body: dict) -> dict:
        """Create, or replace when it exists (for cluster-wide objects shared by tests, such as a CRD)."""
        status, data, _ = self.request("POST", path, body, expect=(200, 201, 409))
        if status != 409:
            return data
        name = body["metadata"]["name"]
        current = self.get(f"{path}/{quote(name)}")
        body = {**body, "metadata": {**body["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
        return self.request("PUT", f"{path}/{quote(name)}", body)[1]

    # --- namespaces, one per test ------------------------------------------------------------------

    def create_namespace(self, name: str | None = None, labels: dict[str, str] | None = None,
                         *, wait_for_service_account: bool = True) -> str:
        """A fresh namespace; with ``wait_for_service_account`` it is ready for pods (see the kit's README)."""
        name = name or f"t-{uuid.uuid4().hex[:10]}"
        self.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": name, "labels": labels or {}}})
        self._namespaces.append(name)
        if wait_for_service_account:
            wait_until(lambda: self.exists(f"/api/v1/namespaces/{name}/serviceaccounts/default"),
                       f"the default ServiceAccount of {name}")
        return name

    def delete_namespace(self, name: str) -> None:
        """Start deleting a namespace and everything in it (the namespace controller finishes it)."""
        self.delete(f"/api/v1/namespaces/{name}")
        if name in self._namespaces:
            self._namespaces.remove(name)

    def delete_all_namespaces(self) -> None:
        for name in list(self._namespaces):
            self.delete_namespace(name)

    # --- custom resource definitions -------------------------------------------------------------

    def serves(self, group_version: str, plural: str) -> bool:
        """Whether discovery lists ``plural`` in ``group_version`` (what the service asks once per process)."""
        code, body, _ = self.request("GET", f"/apis/{group_version}", expect=(200, 404))
        return code == 200 and any(r.get("name") == plural for r in body.get("resources", []))

    def install_crd(self, path: Path = RUNAIJOB_CRD) -> bool:
        """Create the CRD in ``path`` and wait until discovery serves it; True when the tests created it.

        A CRD of that name that the tests did not make (a cluster you provide, with Run:AI installed) is
        left as it is: False, and the caller must not remove it.
        """
        crd = yaml.safe_load(path.read_text())
        crd["metadata"].setdefault("labels", {}).update(TEST_LABELS)
        name = crd["metadata"]["name"]
        status, body, _ = self.request("POST", CRD_PATH, crd, expect=(201, 409))
        if status == 409:
            body = self.get(f"{CRD_PATH}/{name}")
            ours = (body["metadata"].get("labels") or {}).items() >= TEST_LABELS.items()
            if not ours:
                return False
        group, version = crd["spec"]["group"], crd["spec"]["versions"][0]["name"]
        plural = crd["spec"]["names"]["plural"]
        # Established first (the API server accepts the names), then discovery: both take a moment.
        wait_until(lambda: any(c.get("type") == "Established" and c.get("status") == "True"
                               for c in (self.get(f"{CRD_PATH}/{name}").get("status") or {}).get("conditions") or []),
                   f"CRD {name} to be established")
        wait_until(lambda: self.serves(f"{group}/{version}", plural), f"discovery to serve {plural}.{group}")
        return True

    def remove_crd(self, path: Path = RUNAIJOB_CRD) -> None:
        """Delete the CRD (and so every object of its kind) and wait until discovery no longer serves it."""
        crd = yaml.safe_load(path.read_text())
        name = crd["metadata"]["name"]
        group, version = crd["spec"]["group"], crd["spec"]["versions"][0]["name"]
        plural = crd["spec"]["names"]["plural"]
        self.delete(f"{CRD_PATH}/{name}")
        wait_until(lambda: not self.exists(f"{CRD_PATH}/{name}"), f"CRD {name} to be gone")
        wait_until(lambda: not self.serves(f"{group}/{version}", plural), f"discovery to stop serving {plural}")

    # --- identities --------------------------------------------------------------------------------

    def service_account_token(self, namespace: str, name: str, *, seconds: int = 3600) -> str:
        """Create ServiceAccount ``namespace/name`` (if absent) and a token for it (TokenRequest API)."""
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts"
        self.request("POST", path, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
                     expect=(201, 409))
        review = self.create(f"{path}/{name}/token", {"apiVersion": "authentication.k8s.io/v1",
                                                      "kind": "TokenRequest",
                                                      "spec": {"expirationSeconds": seconds}})
        return review["status"]["token"]

    def token_kubeconfig(self, path: Path, token: str) -> str:
        """A kubeconfig for this cluster that authenticates with ``token`` only (no client certificate)."""
        config = self.api.configuration
        document = {
            "apiVersion": "v1", "kind": "Config", "current-context": "token",
            "clusters": [{"name": "c", "cluster": {"server": config.host,
                                                   "certificate-authority": config.ssl_ca_cert}}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "token", "context": {"cluster": "c", "user": "u"}}],
        }
        path.write_text(json.dumps(document))
        return str(path)


def wait_until(predicate: Any, what: str, *, timeout: float = WAIT_SECONDS, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` (a hang bound only)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _client(kubeconfig: str) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return kubernetes.client.ApiClient(configuration)


def start_kit(directory: Path) -> RealCluster:
    """Start the kit in ``directory`` (fresh) and connect as admin; raises with the kit's own output."""
    env = start_kit_env(directory)
    kubeconfig = env["KUBECONFIG"]
    return RealCluster(kubeconfig, _client(kubeconfig), "kit", env.get("KUBE_APISERVER_URL", ""), directory)


def start_kit_env(directory: Path) -> dict[str, str]:
    """Start the kit in ``directory`` (fresh), once more after a failed start; its env file's variables
    (``KUBECONFIG``, ``KUBE_APISERVER_URL``, ``KUBE_CA_FILE``). Raises with the kit's own output. Also the
    benchmark's way to start it (``bench/servers.py``)."""
    failures = []
    for _attempt in range(KIT_START_ATTEMPTS):
        result = subprocess.run([str(KIT / "start"), str(directory)], capture_output=True, text=True, timeout=180)
        if result.returncode == 0:
            break
        failures.append(f"{KIT / 'start'} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        # On a loaded machine a component has been seen to exit during start-up with an empty log; the kit
        # stops what it started, and a purge leaves the folder as new for one more try.
        if (KIT / "stop").is_file():
            subprocess.run([str(KIT / "stop"), "--purge", str(directory)], capture_output=True, timeout=60)
    else:
        raise RuntimeError("\n".join(failures))
    env = {}
    for line in (directory / "env").read_text().splitlines():
        if line.startswith("export "):
            key, _, value = shlex.split(line)[1].partition("=")
            env[key] = value
    return env


def stop_kit(cluster: RealCluster) -> None:
    if cluster.kit_dir is not None:
        subprocess.run([str(KIT / "stop"), "--purge", str(cluster.kit_dir)], capture_output=True, timeout=60)


def connect(kubeconfig: str, source: str) -> RealCluster:
    """Admin requests to the API server of ``kubeconfig`` (also the fake's, for comparisons)."""
    api = _client(kubeconfig)
    return RealCluster(kubeconfig, api, source, api.configuration.host)


def connect_env() -> RealCluster | None:
    """The cluster of ``RUNAI_SUBMIT_TEST_KUBECONFIG``, or None when it is not set."""
    kubeconfig = os.environ.get(KUBECONFIG_ENV, "")
    if not kubeconfig:
        return None
    if not Path(kubeconfig).expanduser().is_file():
        raise RuntimeError(f"{KUBECONFIG_ENV}={kubeconfig!r} is not a file")
    return connect(str(Path(kubeconfig).expanduser()), "env")


def kit_available() -> bool:
    return (KIT / "start").is_file() and os.access(KIT / "start", os.X_OK)
