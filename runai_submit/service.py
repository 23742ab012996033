"""The use cases: submit (and, later, list and delete) jobs. No Flask here."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .cluster import Cluster
from .cluster.applier import apply_all
from .cluster.errors import AlreadyExists, NamespaceMissing
from .config import Settings
from .errors import Conflict, NameTaken, ProjectNotFound
from .model import CreatedObject, JobSpec, OwnerRef, SubmitContext
from .render import make_dependents, make_workload
from .render.names import generated_name

log = logging.getLogger(__name__)


@dataclass
class SubmitResult:
    name: str
    project: str
    namespace: str
    kind: str
    objects: list[CreatedObject] = field(default_factory=list)
    manifests: list[dict] = field(default_factory=list)

    def to_dict(self, *, with_manifests: bool = False) -> dict:
        body = {
            "name": self.name,
            "project": self.project,
            "namespace": self.namespace,
            "kind": self.kind,
            "objects": [{"kind": obj.kind, "name": obj.name} for obj in self.objects],
        }
        if with_manifests:
            body["manifests"] = self.manifests
        return body


class JobService:
    """Submits validated jobs to a cluster, all or nothing."""

    def __init__(
        self, cluster: Cluster, settings: Settings, *, name_factory: Callable[[str | None], str] = generated_name
    ) -> None:
        self.cluster = cluster
        self.settings = settings
        self.name_factory = name_factory

    def context(self, spec: JobSpec, name: str, user: str) -> SubmitContext:
        workload = self.cluster.workload_kind()
        return SubmitContext(
            name=name,
            namespace=self.cluster.namespace_for(spec.project),
            user=user,
            workload_api_version=workload.api_version,
            workload_kind=workload.kind,
            scheduler_name=self.settings.scheduler_name,
            ingress_class=self.settings.ingress_class,
        )

    def submit(self, spec: JobSpec, user: str, *, dry_run: bool = False) -> SubmitResult:
        """Create the job's objects; a generated name that collides is replaced, an explicit one is a 409."""
        tries = 1 if spec.name else self.settings.name_retries
        for _ in range(tries):
            name = spec.name or self.name_factory(spec.job_name_prefix)
            ctx = self.context(spec, name, user)
            try:
                return self._create(spec, ctx, dry_run=dry_run)
            except AlreadyExists as exc:
                if spec.name:
                    raise NameTaken(spec.project, name, details=exc.details or exc.message) from exc
                log.info("generated name %s/%s is taken; trying another", ctx.namespace, name)
            except NamespaceMissing as exc:
                self.cluster.forget_namespaces()
                raise ProjectNotFound(spec.project, ctx.namespace) from exc
        raise Conflict(
            f"Could not find a free name for a job in project {spec.project!r} after {tries} tries.",
            details="Give the job a name, or a jobNamePrefix with fewer jobs.",
        )

    def _create(self, spec: JobSpec, ctx: SubmitContext, *, dry_run: bool) -> SubmitResult:
        workload = make_workload(spec, ctx)
        dependents: list[dict] = []

        def render_dependents(created: CreatedObject) -> list[dict]:
            owner = OwnerRef(created.api_version, created.kind, created.name, created.uid)
            dependents.extend(make_dependents(spec, ctx, owner))
            return dependents

        objects = apply_all(self.cluster, ctx.namespace, workload, render_dependents, dry_run=dry_run)
        log.info("%s job %s/%s for user %r: %s", "dry-ran" if dry_run else "submitted", ctx.namespace, ctx.name,
                 ctx.user, ", ".join(f"{obj.kind}" for obj in objects))
        return SubmitResult(ctx.name, spec.project, ctx.namespace, ctx.workload_kind, objects, [workload, *dependents])
