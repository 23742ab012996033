"""Everything that talks to Kubernetes: the only package that imports the ``kubernetes`` client."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from ..config import Settings
from ..identity import Caller
from ..model import CreatedObject
from .kinds import Kind


class Cluster(Protocol):
    """What the service needs from a cluster; ``KubeCluster`` and ``OfflineCluster`` provide it."""

    backend: str

    def workload_kind(self) -> Kind: ...
    def namespace_for(self, project: str) -> str: ...
    def forget_namespaces(self) -> None: ...
    def projects(self) -> dict[str, str]: ...
    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """The namespace's labels (its Pod Security level), from a cache; {} when unknown."""
        ...
    def create(self, namespace: str, manifest: dict, *, dry_run: bool = False) -> CreatedObject: ...
    def delete(self, namespace: str, kind: Kind, name: str, *, propagation: str = "Background",
               uid: str | None = None) -> bool: ...
    def get(self, namespace: str, kind: Kind, name: str) -> dict | None: ...
    def list(self, kind: Kind, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict]: ...
    def namespace_exists(self, namespace: str) -> bool: ...
    def version(self) -> dict: ...
    def ping(self, timeout: float) -> None: ...
    def close(self) -> None: ...
    def acting_as(self, caller: Caller) -> Cluster:
        """A handle whose every call carries ``caller``'s credentials; shares this one's pool and caches."""
        ...
    def whoami(self) -> dict:
        """``{"user", "groups"}`` as the API server sees this handle's identity (a SelfSubjectReview)."""
        ...
    def allowed(self, verb: str, kind: Kind, namespace: str | None) -> bool:
        """Whether this handle's identity may ``verb`` ``kind`` in ``namespace`` (cached briefly)."""
        ...

    # --- job insight (service/insight.py) ---------------------------------------------------------
    def patch(self, namespace: str, kind: Kind, name: str, patch: dict) -> dict | None:
        """A JSON merge patch; the patched object, or None when it does not exist."""
        ...

    def open_log(self, namespace: str, pod: str, *, container: str | None = None, follow: bool = False,
                 tail_lines: int | None = None, previous: bool = False, read_timeout: float) -> LogStream:
        """A pod's container log, streamed; LogUnavailable (409) when the API server has none to give."""
        ...


class LogStream(Protocol):
    """A log being read: iterate for chunks of bytes; ``interrupt`` from any thread ends it; then ``close``."""

    interrupted: bool
    broken: bool

    def __iter__(self) -> Iterator[bytes]: ...
    def interrupt(self) -> None: ...
    def close(self) -> None: ...


def choose_backend(settings: Settings, environ: dict | None = None) -> str:
    """Resolve ``backend=auto``: in a pod use its service account, else a kubeconfig if one exists."""
    if settings.backend != "auto":
        return settings.backend
    environ = os.environ if environ is None else environ
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return "incluster"
    candidates = [settings.kubeconfig, *environ.get("KUBECONFIG", "").split(os.pathsep), "~/.kube/config"]
    if any(path and Path(path).expanduser().is_file() for path in candidates):
        return "kubeconfig"
    return "offline"


def check_connection_settings(settings: Settings) -> str:
    """Resolve the backend and load its client configuration once, so bad settings stop the start-up.

    No connection is opened: that happens per process, after gunicorn forks.
    """
    backend = choose_backend(settings)
    if backend == "offline" and settings.auth_mode != "header":
        # A folder cannot check a token or impersonate anyone: refuse rather than pretend.
        from ..errors import ConfigError

        raise ConfigError([f"auth_mode {settings.auth_mode} needs a Kubernetes cluster; the offline backend "
                           "has no identities (use auth_mode header, or configure a cluster)"])
    if backend != "offline":
        from .kube import load_configuration

        load_configuration(settings, backend)
    return backend


def connect(settings: Settings) -> Cluster:
    """Build the cluster backend the settings ask for. Call it after gunicorn forks: it opens a pool."""
    backend = choose_backend(settings)
    if backend == "offline":
        from .offline import OfflineCluster

        return OfflineCluster(settings)
    from .kube import KubeCluster

    return KubeCluster.from_settings(settings, backend)
