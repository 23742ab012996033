"""A cluster handle acting as one caller: the same ApiClient, pool and caches, the caller's identity on every call.

``KubeCluster.acting_as(caller)`` builds one per request (it copies a few references, never a client or a
pool). Every call it makes goes out with the caller's headers: the bearer token in ``token`` mode (and then
without the service's own token), or the service's credentials plus ``Impersonate-*`` in ``impersonate`` mode.
New operations added to ``KubeCluster`` inherit that, because they all go through ``_request``.

Only project discovery stays the service's: the namespace map (a cluster-scoped list that callers with rights in
one project cannot make), whether a project's namespace exists and its labels (the Pod Security level), the
workload-kind discovery and the version.
"""
from __future__ import annotations

from urllib3 import HTTPHeaderDict

from ..errors import ServiceError
from ..identity import Caller, TokenRejected
from .errors import CredentialsRefused
from .kinds import Kind
from .kube import KubeCluster


class CallerCluster(KubeCluster):
    """``KubeCluster`` with a caller's identity; discovery delegates to the service's own handle."""

    def __init__(self, own: KubeCluster, caller: Caller) -> None:  # noqa: D107 - shares, does not connect
        vars(self).update(vars(own))  # ApiClient, settings, timeouts, the access-review cache: shared references
        self._own = own
        self.caller = caller
        # In token mode the caller's token replaces the service's: the client must not add its own.
        self._auth_settings = () if caller.carries_token else own._auth_settings

    def acting_as(self, caller: Caller) -> KubeCluster:
        return self._own.acting_as(caller)

    def _identify(self, headers: dict) -> HTTPHeaderDict:
        # A header dict cannot repeat a name, and each impersonated group is its own Impersonate-Group header.
        identified = HTTPHeaderDict(headers)
        for name, value in self.caller.credentials:
            identified.add(name, value)
        return identified

    def _request(self, *args, **kwargs):  # type: ignore[override] - same signature as KubeCluster._request
        try:
            return super()._request(*args, **kwargs)
        except CredentialsRefused as exc:
            if self.caller.carries_token:
                # The token was accepted by the review moments ago and has expired or been revoked since.
                raise TokenRejected(exc.details) from None
            raise

    # --- project discovery: the service's identity and the process's caches ----------------------

    def workload_kind(self) -> Kind:
        return self._own.workload_kind()

    def namespace_for(self, project: str) -> str:
        return self._own.namespace_for(project)

    def forget_namespaces(self) -> None:
        self._own.forget_namespaces()

    def namespace_exists(self, namespace: str) -> bool:
        return self._own.namespace_exists(namespace)

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """A project namespace's labels (its Pod Security level): discovery, read with the service's rights."""
        return self._own.namespace_labels(namespace)

    def version(self) -> dict:
        return self._own.version()

    def ping(self, timeout: float) -> None:
        self._own.ping(timeout)

    # --- what the caller may do -------------------------------------------------------------------

    def allowed(self, verb: str, kind: Kind, namespace: str | None) -> bool:
        return self._access.allowed(self, self.caller.key, verb, kind, namespace)

    def projects(self) -> dict[str, str]:
        """The projects where the caller may create the workload kind (one cached review per project)."""
        kind = self.workload_kind()
        return {project: namespace for project, namespace in self._own.projects().items()
                if self.allowed("create", kind, namespace)}

    def list(self, kind: Kind, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict]:
        """As ``KubeCluster.list``; "every namespace" means every project the caller may list ``kind`` in.

        A caller with rights in some projects only cannot list across all namespaces (403); they still
        expect ``GET /api/job`` to show their jobs, so the list goes to each such project instead.
        """
        if namespace is not None or not kind.namespaced or self.allowed("list", kind, None):
            return super().list(kind, namespace, label_selector=label_selector, field_selector=field_selector)
        items: list[dict] = []
        for project_namespace in sorted(set(self._own.projects().values())):
            if self.allowed("list", kind, project_namespace):
                try:
                    items.extend(super().list(kind, project_namespace, label_selector=label_selector,
                                              field_selector=field_selector))
                except ServiceError as exc:
                    if exc.status != 403:  # a right revoked since the review: skip that project
                        raise
        return items
