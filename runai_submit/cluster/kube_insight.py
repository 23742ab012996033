"""Job insight calls of ``KubeCluster``: the suspend/resume patch and the pod log stream.

Both go through ``KubeCluster._request``, the one HTTP path (auth, timeouts, throttling, error translation).
Pods and events need nothing new: they are ``list`` calls with a label or field selector.
"""
from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Iterator
from typing import Any

from .errors import TRANSPORT_ERRORS, LogUnavailable, parse_status
from .kinds import POD_LOG, Kind, log_path

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
_CHUNK_BYTES = 64 * 1024


class KubeInsight:
    """Mixed into ``KubeCluster``, whose ``_request`` and ``settings`` it uses."""

    _request: Any
    settings: Any

    def patch(self, namespace: str, kind: Kind, name: str, patch: dict) -> dict | None:
        """A JSON merge patch (RFC 7386) of one object; the object as patched, or None when it does not exist.

        A merge patch works on built-in kinds and custom resources alike; a strategic merge patch would be
        refused for a RunaiJob (https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/).
        """
        code, body, _ = self._request(
            "PATCH", kind.object_path(namespace, name), body=patch, headers={"Content-Type": MERGE_PATCH},
            verb="patch", kind=kind.kind, what=f"patch {kind.kind} {namespace}/{name}", expect=(200, 404),
        )
        if code == 404:
            return None
        log.info("patched %s %s/%s: %s", kind.kind, namespace, name, json.dumps(patch, sort_keys=True))
        return json.loads(body)

    def open_log(self, namespace: str, pod: str, *, container: str | None = None, follow: bool = False,
                 tail_lines: int | None = None, previous: bool = False, read_timeout: float) -> HttpLogStream:
        """Open the log of one pod's container; the body is read as it arrives, never preloaded.

        The API server proxies the kubelet's answer: 200 with the text (chunked while following), 204 for a
        pod not yet on a node, 400 for a container that is waiting to start or has no previous instance.
        https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#get-read-log-of-the-specified-pod
        """
        query: dict[str, str] = {}
        if container:
            query["container"] = container
        if follow:
            query["follow"] = "true"
        if tail_lines is not None:
            query["tailLines"] = str(tail_lines)
        if previous:
            query["previous"] = "true"
        code, response, _ = self._request(
            "GET", log_path(namespace, pod), query=query, headers={"Accept": "text/plain, */*"}, stream=True,
            timeout=(self.settings.connect_timeout, read_timeout), verb="get", kind=POD_LOG.kind,
            what=f"read the log of pod {namespace}/{pod}", expect=(200, 204, 400),
        )
        if code == 400:
            try:
                message = parse_status(response.read()).get("message") or "HTTP 400"
            finally:
                response.release_conn()
            raise LogUnavailable(f"The log of pod {pod!r} is not available.", details=message)
        return HttpLogStream(response)


class HttpLogStream:
    """A log body as it arrives from the API server.

    Iterate it for the chunks; ``interrupt`` (from any thread) ends a read that is blocked waiting for the
    container to print; ``close`` gives the connection back (to the pool only when the body was read to its end).
    """

    def __init__(self, response: Any) -> None:
        self._response = response
        self._finished = False
        self.interrupted = False
        self.broken = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            while True:
                # read1: whatever has arrived, without waiting for a full buffer, so lines flow as printed.
                chunk = self._response.read1(_CHUNK_BYTES)
                if not chunk:
                    self._finished = True
                    return
                yield chunk
        except (*TRANSPORT_ERRORS, http.client.HTTPException) as exc:
            if not self.interrupted:
                self.broken = True
                log.warning("a pod log stream broke off: %s: %s", type(exc).__name__, exc)

    def interrupt(self) -> None:
        """End the stream now: shut the socket for reading, so a blocked read returns at once."""
        self.interrupted = True
        try:
            self._response.shutdown()
        except (ValueError, RuntimeError, OSError):
            pass  # already closed or released: nothing is blocked on it

    def close(self) -> None:
        if self._finished:
            self._response.release_conn()
        else:
            self._response.close()  # unread bytes would poison a pooled connection: drop it
