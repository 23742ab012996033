"""The explicit table of object kinds the service creates, reads and deletes, with their REST paths.

RBAC rules in ``deploy/`` and the fake API server's tests are derived from this table, so it is the one
list of what the service touches.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    def collection_path(self, namespace: str | None = None) -> str:
        """``/api/v1/namespaces/ns/services`` or ``/apis/batch/v1/jobs`` (all namespaces when None)."""
        root = f"/apis/{self.api_version}" if self.group else f"/api/{self.api_version}"
        if self.namespaced and namespace is not None:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"

    def object_path(self, namespace: str | None, name: str) -> str:
        # Quoted, so that a name can never add a query or fragment to the path ("?", "#", "/").
        return f"{self.collection_path(namespace)}/{quote(name, safe='')}"


RUNAI_JOB = Kind("run.ai/v1", "RunaiJob", "runaijobs")
BATCH_JOB = Kind("batch/v1", "Job", "jobs")
PVC = Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims")
SERVICE = Kind("v1", "Service", "services")
INGRESS = Kind("networking.k8s.io/v1", "Ingress", "ingresses")
NAMESPACE = Kind("v1", "Namespace", "namespaces", namespaced=False)
# The record of an Idempotency-Key: created last, owned by the workload (service/idempotency.py).
CONFIGMAP = Kind("v1", "ConfigMap", "configmaps")
# --- job insight: a job's pods and events are read, never written; the pod log is a subresource ------
POD = Kind("v1", "Pod", "pods")
EVENT = Kind("v1", "Event", "events")
# RBAC names the log "pods/log" (verb get); its URL is the pod's own path + "/log" (see ``log_path``).
# https://kubernetes.io/docs/reference/access-authn-authz/rbac/#referring-to-resources
POD_LOG = Kind("v1", "PodLog", "pods/log")

WORKLOAD_KINDS = {kind.kind: kind for kind in (RUNAI_JOB, BATCH_JOB)}
KINDS = {kind.kind: kind for kind in (RUNAI_JOB, BATCH_JOB, PVC, SERVICE, INGRESS, NAMESPACE, POD, EVENT, POD_LOG,
                                      CONFIGMAP)}

# The verbs the service uses on each kind: the source of truth for the RBAC rules in deploy/.
VERBS = {
    # patch: suspend and resume set spec.suspend (a JSON merge patch).
    RUNAI_JOB.kind: ("create", "get", "list", "delete", "patch"),
    BATCH_JOB.kind: ("create", "get", "list", "delete", "patch"),
    PVC.kind: ("create", "get", "list", "delete"),
    SERVICE.kind: ("create", "get", "list", "delete"),
    INGRESS.kind: ("create", "get", "list", "delete"),
    NAMESPACE.kind: ("get", "list"),
    POD.kind: ("list",),
    EVENT.kind: ("list",),
    POD_LOG.kind: ("get",),
    CONFIGMAP.kind: ("create", "get", "delete"),
}


def log_path(namespace: str, pod: str) -> str:
    """The log subresource of one pod: ``/api/v1/namespaces/ns/pods/name/log``."""
    return POD.object_path(namespace, pod) + "/log"


def kind_of(manifest: dict) -> Kind:
    """The table entry for a manifest; an unknown kind is a programming error, not user input."""
    return KINDS[manifest["kind"]]


# --- who makes which call, per auth mode (issue 9; README "Security") ---------------------------------------
# In header mode the service makes every call above with its own identity. In token and impersonate modes
# every call of a request is the caller's (cluster/caller.py), except project discovery, which stays the
# service's: these verbs. Impersonate mode adds the right to act as any user and group.
# https://kubernetes.io/docs/reference/access-authn-authz/authentication/#user-impersonation
DISCOVERY_VERBS = {NAMESPACE.kind: ("get", "list")}
IMPERSONATED = ("users", "groups")
