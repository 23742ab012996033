"""List, read and delete jobs, and the projects they live in."""
from __future__ import annotations

from datetime import datetime

from ..cluster.kinds import PVC
from ..errors import JobNotFound, ProjectNotFound
from ..render.common import MANAGED_BY
from ..render.names import label_safe
from .base import ServiceBase


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
        namespace = self._existing_namespace(project)
        workload = self.cluster.get(namespace, self.cluster.workload_kind(), name)
        if workload is None:
            raise JobNotFound(project, name)
        return job_view(workload)

    def delete_job(self, project: str, name: str, *, delete_pvcs: bool = False) -> list[str]:
        """Delete the workload (the garbage collector removes its Service and Ingress) and, if asked, its PVCs."""
        namespace = self.cluster.namespace_for(project)
        kind = self.cluster.workload_kind()
        if not self.cluster.delete(namespace, kind, name):
            raise JobNotFound(project, name)
        deleted = [f"{kind.kind} {name}"]
        if delete_pvcs:
            selector = f"release={name},app.kubernetes.io/managed-by={MANAGED_BY}"
            for claim in self.cluster.list(PVC, namespace, label_selector=selector):
                claim_name = claim["metadata"]["name"]
                if self.cluster.delete(namespace, PVC, claim_name):
                    deleted.append(f"PersistentVolumeClaim {claim_name}")
        return deleted

    def _existing_namespace(self, project: str) -> str:
        """The project's namespace, or ProjectNotFound. Reads pay one GET that submits don't need."""
        namespace = self.cluster.namespace_for(project)
        if not self.cluster.namespace_exists(namespace):
            raise ProjectNotFound(project, namespace, pointer="/project")
        return namespace

    def projects(self) -> list[dict]:
        return [{"name": project, "namespace": namespace}
                for project, namespace in sorted(self.cluster.projects().items())]


JOB_SELECTOR = "app=runaijob"
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
