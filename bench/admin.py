"""What the benchmark does to the API server as its administrator, outside every timed run.

The RunaiJob CRD, a fresh namespace (project) per measured run, and removing what a run created. Plain JSON
over the load generator's own client, with the kubeconfig's credentials.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

from .jobs import BENCH_SELECTOR, CLEANUP_KINDS, collection_path
from .loadgen import Conn, call, drive, full_request, request_head
from .servers import ApiServer

CRD = Path(__file__).resolve().parent / "crds" / "runaijob.yaml"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


class AdminError(RuntimeError):
    pass


class Admin:
    """Administrative requests to ``api`` (never timed)."""

    def __init__(self, api: ApiServer) -> None:
        self.api = api
        self.headers = {**api.auth, "Accept": "application/json", "Content-Type": "application/json",
                        "User-Agent": "runai-submit-bench-admin"}

    def request(self, method: str, path: str, body: Any = None, *, query: dict | None = None,
                expect: tuple[int, ...] = (200, 201, 202)) -> tuple[int, Any]:
        if query:
            path = f"{path}?{urlencode(query)}"
        raw = json.dumps(body).encode() if body is not None else b""
        status, answer = call(self.api.endpoint, method, path, self.headers, raw)
        try:
            data = json.loads(answer) if answer else None
        except ValueError:
            data = answer[:300].decode(errors="replace")
        if status not in expect:
            raise AdminError(f"{method} {path}: HTTP {status}: {data}")
        return status, data

    # --- the RunaiJob custom resource --------------------------------------------------------------

    def install_runaijob_crd(self, timeout: float = 60.0) -> None:
        """Create the RunaiJob CRD (or keep the one there) and wait until run.ai/v1 serves it."""
        document = yaml.safe_load(CRD.read_text())
        self.request("POST", CRD_PATH, document, expect=(201, 409))
        name = document["metadata"]["name"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, crd = self.request("GET", f"{CRD_PATH}/{name}")
            established = any(c.get("type") == "Established" and c.get("status") == "True"
                              for c in (crd.get("status") or {}).get("conditions") or [])
            status, group = self.request("GET", "/apis/run.ai/v1", expect=(200, 404))
            served = status == 200 and any(r.get("name") == "runaijobs" for r in group.get("resources") or [])
            if established and served:
                return
            time.sleep(0.2)
        raise AdminError(f"the RunaiJob CRD was not served within {timeout:.0f} s")

    # --- namespaces --------------------------------------------------------------------------------

    def create_namespace(self, name: str, labels: dict[str, str]) -> None:
        self.request("POST", "/api/v1/namespaces",
                     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})

    def delete_namespace(self, name: str, *, wait: bool = True, timeout: float = 180.0) -> float:
        """Delete a namespace and (with ``wait``) wait until the namespace controller has removed everything.

        Returns the seconds it took. Waiting matters: the deletion of thousands of objects is control plane
        work that must not fall into the next measured run.
        """
        started = time.monotonic()
        status, _ = self.request("DELETE", f"/api/v1/namespaces/{name}", expect=(200, 202, 404))
        if status == 404 or not wait:
            return time.monotonic() - started
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.request("GET", f"/api/v1/namespaces/{name}", expect=(200, 404))[0] == 404:
                return time.monotonic() - started
            time.sleep(0.2)
        raise AdminError(f"namespace {name} was not gone {timeout:.0f} s after its deletion")

    # --- removing what a run created ---------------------------------------------------------------

    def delete_bench_objects(self, namespace: str, *, wait: bool = True, timeout: float = 120.0,
                             selector: str = BENCH_SELECTOR) -> int:
        """Delete every object this benchmark created in ``namespace`` (label runai/user=runai-submit-bench, or
        ``selector``), dependents first, and (with ``wait``) wait until they are gone; returns how many there were.

        Deleting the objects, rather than their namespace, keeps a run short: the namespace controller takes
        seconds per namespace even when it is empty. And one DELETE per object on 8 keep-alive connections
        is several times faster than a ``deletecollection``, which the API server carries out one object at
        a time (``--delete-collection-workers`` defaults to 1). What the controllers made for these objects
        (the Endpoints and EndpointSlices of a Service) goes with them.
        """
        if self.api.dry_run:
            return 0
        removed = 0
        pending = []
        for api_version, kind in CLEANUP_KINDS:
            path = collection_path(api_version, kind, namespace)
            names = self._names(path, selector)
            if not names:
                continue
            pending.append(path)
            requests = [full_request(request_head("DELETE", f"{path}/{name}?propagationPolicy=Background",
                                                  self.api.endpoint, self.headers), b"") for name in names]

            def delete(conn: Conn, i: int) -> str | None:
                status, _ = conn.request(requests[i])
                return None if status in (200, 202, 404) else f"HTTP {status}"

            errors: dict[str, str] = {}
            result = drive(self.api.endpoint, delete, len(names), min(8, len(names)), errors)
            if result.ok != len(names):
                raise AdminError(f"could not delete every {kind} in {namespace}: {result.errors} {errors}")
            removed += len(names)
        deadline = time.monotonic() + timeout
        while wait and pending:
            # PVCs keep their kubernetes.io/pvc-protection finalizer until a controller sees no pod uses them.
            pending = [path for path in pending if self._names(path, selector)]
            if pending and time.monotonic() > deadline:
                raise AdminError(f"objects in {namespace} were not gone {timeout:.0f} s after their deletion")
            if pending:
                time.sleep(0.2)
        return removed

    def _names(self, path: str, selector: str = BENCH_SELECTOR) -> list[str]:
        """Names of the benchmark's objects at a collection ``path`` (none where the kind is not served)."""
        status, body = call(self.api.endpoint, "GET", f"{path}?{urlencode({'labelSelector': selector})}",
                            self.headers)
        if status != 200:
            return []
        return [item["metadata"]["name"] for item in json.loads(body).get("items") or []]
