"""List, read and delete jobs, and the projects they live in."""
from __future__ import annotations

import logging
from datetime import datetime

from ..cluster.kinds import INGRESS, PVC, SERVICE, Kind
from ..errors import JobNotFound, ProjectNotFound, ServiceError
from ..render.common import MANAGED_BY
from ..render.pvc import JOB_UID_ANNOTATION
from ..render.names import label_safe
from .base import ServiceBase

log = logging.getLogger(__name__)


class Jobs(ServiceBase):
    """Reading and deleting jobs: one list call whatever the number of jobs."""

    def list_jobs(self, project: str | None = None, user: str | None = None) -> list[dict]:
        """Jobs of one project (or all), optionally of one user: one list call whatever the number of jobs."""
        selector = JOB_SELECTOR
        if user:
            selector += f",runai/user={label_safe(user)}"
        namespace = self._existing_namespace(project) if project else None
        kind = self.cluster.workload_kind()
        workloads = self.cluster.list(kind, namespace, label_selector=selector)
        # The items of a built-in kind's list carry no "kind" (a custom resource's do): say it ourselves.
        views = self._job_views([{"kind": kind.kind, **workload} for workload in workloads], selector)
        if user:
            # The label is a lossy form of the user name; the annotation is exact.
            views = [view for view in views if view["user"] == user]
        if project:
            views = [view for view in views if view["project"] in (project, "")]
        return sorted(views, key=lambda view: (view["project"], view["createdAt"], view["name"]))

    def _job_views(self, workloads: list[dict], selector: str) -> list[dict]:
        """The list view of each workload; job insight (service/insight.py) adds what the pods say."""
        return [job_view(workload) for workload in workloads]

    def get_job(self, project: str, name: str) -> dict:
        return job_view(self._workload(self._existing_namespace(project), project, name))

    def _workload(self, namespace: str, project: str, name: str) -> dict:
        """The job's workload; JobNotFound when there is none, or when it is not a job (``app=runaijob``, the
        list's selector): a CI Job or anything else of the workload kind in the namespace is left alone."""
        workload = self.cluster.get(namespace, self.cluster.workload_kind(), name)
        if workload is None or not _is_job(workload):
            raise JobNotFound(project, name)
        return workload

    def delete_job(self, project: str, name: str, *, delete_pvcs: bool = False) -> list[str]:
        """Delete the workload, then its Service and Ingress, and, if asked, its new PVCs.

        The garbage collector would remove the Service and Ingress too (they are owned by the workload), but
        only some time later (seconds; half a minute after a CRD was installed), and until then a job
        submitted again under the same name is refused because its Service name is taken. So they are deleted
        here, each only if it belongs to this very workload (owner uid), and the answer lists them. They are
        read before the workload goes: the collector may remove them before this request would find them.
        """
        namespace = self._existing_namespace(project)
        kind = self.cluster.workload_kind()
        try:
            workload = self._workload(namespace, project, name)
        except JobNotFound:
            kept = self._delete_kept_claims(namespace, name) if delete_pvcs else []
            if not kept:
                raise
            return kept
        uid = workload["metadata"].get("uid", "")
        dependents = [(dependent_kind, found) for dependent_kind in (SERVICE, INGRESS)
                      if (found := self.cluster.get(namespace, dependent_kind, name)) and _owned_by(found, uid)]
        # The uid precondition deletes this workload only, never one submitted since under the same name.
        if not self.cluster.delete(namespace, kind, name, uid=uid):
            raise JobNotFound(project, name)
        deleted = [f"{kind.kind} {name}"]
        for dependent_kind, dependent in dependents:
            # Absent by now means the collector was first: gone either way.
            self._delete_dependent(namespace, dependent_kind, name, dependent["metadata"]["uid"])
            deleted.append(f"{dependent_kind.kind} {name}")
        if delete_pvcs:
            for claim in self.cluster.list(PVC, namespace, label_selector=_claims_of(name)):
                claim_name = claim["metadata"]["name"]
                if _made_with(claim, workload) and self.cluster.delete(namespace, PVC, claim_name):
                    deleted.append(f"PersistentVolumeClaim {claim_name}")
        return deleted

    def _delete_kept_claims(self, namespace: str, name: str) -> list[str]:
        """The job is gone, and was deleted without deletePvcs: delete the new claims it (or an earlier job of
        the name) kept, which no job mounts now; without this no call of the API could remove them.

        A claim that a job of another name mounts by its name is left alone: deleting it would take that
        job's data as soon as its pods end (the pvc-protection finalizer only waits for them)."""
        kept = self.cluster.list(PVC, namespace, label_selector=_claims_of(name))
        claims = [claim["metadata"]["name"] for claim in kept]
        if not claims:
            return []
        in_use = {claim for workload in self.cluster.list(self.cluster.workload_kind(), namespace)
                  for claim in _claims_mounted_by(workload)}
        return [f"PersistentVolumeClaim {claim}" for claim in claims
                if claim not in in_use and self.cluster.delete(namespace, PVC, claim)]

    def _delete_dependent(self, namespace: str, kind: Kind, name: str, uid: str) -> None:
        """Delete an owned object; a failure is only logged, because the garbage collector removes it anyway."""
        try:
            self.cluster.delete(namespace, kind, name, uid=uid)
        except ServiceError as exc:
            log.warning("could not delete %s %s/%s (the garbage collector will): %s",
                        kind.kind, namespace, name, exc.message)

    def _existing_namespace(self, project: str) -> str:
        """The project's namespace, or ProjectNotFound. Reads pay one GET that submits don't need."""
        try:
            namespace = self.cluster.namespace_for(project)
        except ProjectNotFound as exc:
            raise exc.at("/project") from None
        if not self.cluster.namespace_exists(namespace):
            raise ProjectNotFound(project, namespace, pointer="/project")
        return namespace

    def projects(self) -> list[dict]:
        return [{"name": project, "namespace": namespace}
                for project, namespace in sorted(self.cluster.projects().items())]


JOB_SELECTOR = "app=runaijob"  # what makes a workload a job (_is_job)
INTERACTIVE_PRIORITIES = ("build", "interactive-preemptible")


def job_view(workload: dict) -> dict:
    """The Run:AI list fields of one workload (``GET /api/job``), derived from the object alone."""
    meta = workload.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    template = (workload.get("spec") or {}).get("template") or {}
    pod_annotations = (template.get("metadata") or {}).get("annotations") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    return {
        "name": meta.get("name", ""),
        "project": labels.get("project", ""),
        "namespace": meta.get("namespace", ""),
        "user": annotations.get("user") or labels.get("runai/user") or labels.get("user", ""),
        "type": "Interactive" if labels.get("priorityClassName") in INTERACTIVE_PRIORITIES else "Train",
        "kind": workload.get("kind", ""),
        "status": job_status(workload),
        "createdAt": _epoch_ms(meta.get("creationTimestamp")),
        "images": [container.get("image", "") for container in containers],
        "requestedGPUs": _requested_gpus(containers, pod_annotations),
        "uid": meta.get("uid", ""),
    }


def job_status(workload: dict) -> str:
    """Pending, Running, Succeeded, Failed or Unknown from a Job-shaped status.

    https://kubernetes.io/docs/concepts/workloads/controllers/job/#job-termination-and-cleanup
    """
    status = workload.get("status")
    if status is None:
        return "Unknown"
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if conditions.get("Complete") == "True" or conditions.get("SuccessCriteriaMet") == "True":
        return "Succeeded"
    if conditions.get("Failed") == "True" or conditions.get("FailureTarget") == "True":
        return "Failed"
    if status.get("ready") or (status.get("active") and "ready" not in status):
        return "Running"
    return "Pending"


def _requested_gpus(containers: list[dict], pod_annotations: dict) -> float:
    fraction = pod_annotations.get("gpu-fraction")
    if fraction:
        try:
            return float(fraction)
        except ValueError:
            return 0
    total = 0.0
    for container in containers:
        limit = ((container.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu")
        try:
            total += float(limit or 0)
        except ValueError:
            pass
    return int(total) if total.is_integer() else total


def _epoch_ms(timestamp: str | None) -> int:
    if not timestamp:
        return 0
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return 0
    return int(moment.timestamp() * 1000)


def _is_job(workload: dict) -> bool:
    key, value = JOB_SELECTOR.split("=")
    return ((workload.get("metadata") or {}).get("labels") or {}).get(key) == value


def _claims_of(name: str) -> str:
    """The label selector of the new claims a job of this name made, and any an earlier job of the name kept."""
    return f"release={name},app.kubernetes.io/managed-by={MANAGED_BY}"


def _made_with(claim: dict, workload: dict) -> bool:
    """Whether ``claim`` (labelled with the job's name) is one of this workload's new claims, not one that an
    earlier job of the same name kept (deleted without deletePvcs), which carries the same labels."""
    made_with = ((claim.get("metadata") or {}).get("annotations") or {}).get(JOB_UID_ANNOTATION)
    if made_with is not None:
        return made_with == workload["metadata"].get("uid")
    # A claim from before the annotation: this workload's own only if its pod template mounts it.
    return claim["metadata"]["name"] in _claims_mounted_by(workload)


def _claims_mounted_by(workload: dict) -> set[str]:
    pod = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
    return {((volume or {}).get("persistentVolumeClaim") or {}).get("claimName") for volume in pod.get("volumes") or ()
            } - {None}


def _owned_by(obj: dict, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj.get("metadata", {}).get("ownerReferences") or [])
