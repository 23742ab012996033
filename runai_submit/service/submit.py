"""Submit one job: choose its name, render its objects and create them all or none."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..cluster.applier import apply_all
from ..cluster.errors import AlreadyExists, NamespaceMissing
from ..errors import Conflict, NameTaken, ProjectNotFound
from ..metrics import timed
from ..model import CreatedObject, JobSpec, OwnerRef, SubmitContext
from ..render import make_dependents, make_workload
from ..schemas import load_submit_request
from .base import ServiceBase

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


class Submitter(ServiceBase):
    """Submits validated jobs to a cluster, all or nothing."""

    def submit_request(self, payload: Any, user: str, *, dry_run: bool = False) -> SubmitResult:
        """The whole path of one ``{"job": {...}}``: validate, then create. Single and batch submits share it."""
        with timed("validate"):
            spec = load_submit_request(payload)
        return self.submit(spec, user, dry_run=dry_run)

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
        attempt, namespace_rechecked = 0, False
        while attempt < tries:
            name = spec.name or self.name_factory(spec.job_name_prefix)
            ctx = self.context(spec, name, user)
            try:
                return self._create(spec, ctx, dry_run=dry_run)
            except AlreadyExists as exc:
                if spec.name:
                    raise NameTaken(spec.project, name, details=exc.details or exc.message).caused_by(exc) from exc
                log.info("generated name %s/%s is taken; trying another", ctx.namespace, name)
                attempt += 1
            except NamespaceMissing as exc:
                # The cached project map may be stale (a namespace labelled since): read it once more.
                self.cluster.forget_namespaces()
                if namespace_rechecked or self.cluster.namespace_for(spec.project) == ctx.namespace:
                    raise ProjectNotFound(spec.project, ctx.namespace).caused_by(exc) from exc
                namespace_rechecked = True
        raise Conflict(
            f"Could not find a free name for a job in project {spec.project!r} after {tries} tries.",
            details="Give the job a name, or a jobNamePrefix with fewer jobs.",
        )

    def _create(self, spec: JobSpec, ctx: SubmitContext, *, dry_run: bool) -> SubmitResult:
        with timed("render"):
            workload = make_workload(spec, ctx)
        dependents: list[dict] = []

        def render_dependents(created: CreatedObject) -> list[dict]:
            owner = OwnerRef(created.api_version, created.kind, created.name, created.uid)
            with timed("render"):
                dependents.extend(make_dependents(spec, ctx, owner))
            return dependents

        with timed("apply"):
            objects = apply_all(self.cluster, ctx.namespace, workload, render_dependents, dry_run=dry_run)
        return SubmitResult(ctx.name, spec.project, ctx.namespace, ctx.workload_kind, objects, [workload, *dependents])
