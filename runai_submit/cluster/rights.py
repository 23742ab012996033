"""The RBAC rights each identity needs, derived from the kind table: deploy/ is checked against these.

Each right is an (API group, resource, verb) triple. ``service_rights(mode)`` is what the service account needs
in an auth mode; ``caller_rights()`` is what a user needs inside a project namespace in the token and
impersonate modes (the same calls, made as the user). SelfSubjectReview and SelfSubjectAccessReview need no
grant: every authenticated user may create them (built-in ``system:basic-user``).
"""
from __future__ import annotations

from .kinds import DISCOVERY_VERBS, IMPERSONATED, KINDS, VERBS, WORKLOAD_KINDS

Right = tuple[str, str, str]


def _rights(kind_names, verbs: dict) -> set[Right]:
    return {(KINDS[name].group, KINDS[name].plural, verb) for name in kind_names for verb in verbs[name]}


def caller_rights() -> set[Right]:
    """Inside a project namespace: create, read and delete a job's objects (what the API server checks)."""
    return _rights([name for name, kind in KINDS.items() if kind.namespaced], VERBS)


def service_rights(auth_mode: str) -> set[Right]:
    """What the service account itself is granted in ``auth_mode``."""
    if auth_mode == "header":
        return _rights(KINDS, VERBS)
    rights = _rights(DISCOVERY_VERBS, DISCOVERY_VERBS)
    if auth_mode == "impersonate":
        rights |= {("", resource, "impersonate") for resource in IMPERSONATED}
    return rights


def service_cluster_wide_rights(auth_mode: str) -> set[Right]:
    """The service's rights that only a ClusterRoleBinding can give: cluster-scoped kinds, impersonation, and
    (header mode) listing the workload kind in all namespaces."""
    cluster_scoped = {right for right in service_rights(auth_mode)
                      if not any(kind.plural == right[1] and kind.namespaced for kind in KINDS.values())}
    if auth_mode == "header":
        cluster_scoped |= {(kind.group, kind.plural, "list") for kind in WORKLOAD_KINDS.values()}
    return cluster_scoped
