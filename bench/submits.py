"""The requests of a measured run: submits through the service, and the floor's POSTs to the API server.

The floor is the exact manifests the service sends for a job (from its own ``?dryRun=true`` answer), renamed
per request, POSTed straight to the API server over the same kind of keep-alive connection: for the maximal
job the sequence workload -> PVC -> Service -> Ingress, with the workload's ``uid`` from the first answer in
the owner references of the Service and Ingress, as the service does.
"""
from __future__ import annotations

import copy
import itertools
import json
import random
import re
import string
from typing import TYPE_CHECKING

from .jobs import BENCH_USER, collection_path
from .loadgen import Conn, Endpoint, Work, call, full_request, request_head

if TYPE_CHECKING:
    from .servers import ApiServer

UID_PLACEHOLDER = "0wner0000-uid0-0000-0000-placeholder"[:36]
_UID_RE = re.compile(rb'"uid"\s*:\s*"([^"]+)"')
SUBMIT_HEADERS = {"RA-USER": BENCH_USER, "Content-Type": "application/json"}


def submit_request(ep: Endpoint, job: dict, dry_run: bool, headers: dict[str, str] | None = None) -> bytes:
    path = "/api/job?dryRun=true" if dry_run else "/api/job"
    head = request_head("POST", path, ep, {**SUBMIT_HEADERS, **(headers or {})})
    return full_request(head, json.dumps({"job": job}).encode())


def dry_run_manifests(svc: Endpoint, job: dict) -> dict:
    """The service's answer to a dry run of ``job``: its name, namespace and the manifests it would create."""
    status, body = call(svc, "POST", "/api/job?dryRun=true", SUBMIT_HEADERS, json.dumps({"job": job}).encode())
    if status != 200:
        raise RuntimeError(f"the service's dry run answered HTTP {status}: {body[:500]!r}")
    return json.loads(body)


def service_work(ep: Endpoint, job: dict, dry_run: bool, errors_out: dict[str, str],
                 headers: dict[str, str] | None = None) -> Work:
    """One submit of ``job`` per call, the same bytes every time (the service generates the names)."""
    data = submit_request(ep, job, dry_run, headers)

    def post(conn: Conn, i: int) -> str | None:  # noqa: ARG001
        status, body = conn.request(data)
        if status == 200:
            return None
        label = f"HTTP {status}"
        errors_out.setdefault(label, body[:400].decode(errors="replace"))
        return label

    return post


class FloorRequests:
    """The exact manifests the service sends for a job, renamed per request, as raw POSTs to the API server."""

    _seq = itertools.count(1)
    _tag = "".join(random.choice(string.ascii_lowercase) for _ in range(3))

    def __init__(self, api: ApiServer, dry: dict, count: int, errors_out: dict[str, str]) -> None:
        name = dry["name"]
        namespace = dry["namespace"]
        manifests = copy.deepcopy(dry["manifests"])
        self.kinds = [m["kind"] for m in manifests]
        self.errors_out = errors_out
        heads, texts = [], []
        headers = {**api.auth, "Accept": "application/json", "Content-Type": "application/json",
                   "User-Agent": "runai-submit-bench-floor"}
        query = "?dryRun=All" if api.dry_run else ""
        for manifest in manifests:
            for ref in manifest["metadata"].get("ownerReferences") or []:
                ref["uid"] = UID_PLACEHOLDER
            path = collection_path(manifest["apiVersion"], manifest["kind"], namespace) + query
            heads.append(request_head("POST", path, api.endpoint, headers))
            texts.append(json.dumps(manifest))  # as the kubernetes client's rest.py encodes a dict body
        self.heads = heads
        self.needs_uid = [UID_PLACEHOLDER in text for text in texts]
        # Unique names: fl<run tag><sequence>, never a generated name of the service (job-xxxxx).
        self.bodies: list[list[bytes]] = []
        for _ in range(count):
            new = f"fl{self._tag}{next(self._seq):06d}"
            self.bodies.append([text.replace(name, new).encode() for text in texts])
        self.placeholder = UID_PLACEHOLDER.encode()

    def work(self) -> Work:
        heads, needs_uid, bodies, placeholder = self.heads, self.needs_uid, self.bodies, self.placeholder
        errors_out = self.errors_out
        first_only = len(heads) == 1

        def post_all(conn: Conn, i: int) -> str | None:
            uid = b""
            for k, body in enumerate(bodies[i]):
                if needs_uid[k]:
                    body = body.replace(placeholder, uid)
                status, answer = conn.request(full_request(heads[k], body))
                if status not in (200, 201, 202):
                    label = f"HTTP {status}"
                    errors_out.setdefault(f"floor {label}", answer[:400].decode(errors="replace"))
                    return label
                if k == 0 and not first_only:
                    m = _UID_RE.search(answer)
                    if not m:
                        return "no uid in the workload's answer"
                    uid = m.group(1)
            return None

        return post_all
