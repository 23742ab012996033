"""Submit one job: choose its name, render its objects and create them all or none."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..cluster.applier import apply_all
from ..cluster.errors import AlreadyExists, NamespaceMissing
from ..errors import Conflict, NameTaken, ProjectNotFound
from ..metrics import timed
from ..model import CreatedObject, JobSpec, OwnerRef, SubmitContext
from ..render import make_dependents, make_workload
from ..schemas import load_submit_request
from .base import ServiceBase

if TYPE_CHECKING:
    from .idempotency import IdempotencyKey

log = logging.getLogger(__name__)


@dataclass
class SubmitResult:
    name: str
    project: str
    namespace: str
    kind: str
    objects: list[CreatedObject] = field(default_factory=list)
    manifests: list[dict] = field(default_factory=list)
    replayed: bool = False  # the answer of an earlier request with the same Idempotency-Key; nothing was created

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

    def submit_request(
        self, payload: Any, user: str, *, dry_run: bool = False, key: IdempotencyKey | None = None
    ) -> SubmitResult:
        """The whole path of one ``{"job": {...}}``: validate, then create. Single and batch submits share it."""
        spec = self.validate_request(payload, user)
        return self.submit(spec, user, dry_run=dry_run, key=key)

    def validate_request(self, payload: Any, user: str) -> JobSpec:
        """Everything a job payload must pass before anything is created (an atomic batch checks all first)."""
        with timed("validate"):
            return load_submit_request(payload)

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

    def submit(
        self, spec: JobSpec, user: str, *, dry_run: bool = False, key: IdempotencyKey | None = None
    ) -> SubmitResult:
        """Create the job's objects; a generated name that collides is replaced, an explicit one is a 409.

        With an Idempotency-Key the name derives from the key, and a taken name may be the key's own job:
        ``service/idempotency.py`` decides (replay it, wait for it, or refuse a different job).
        """
        binding = key.bind(self, spec, user) if key is not None else None
        tries = 1 if spec.name else self.settings.name_retries
        attempt, namespace_rechecked = 0, False
        while attempt < tries:
            name = spec.name or (binding.name(attempt) if binding else self.name_factory(spec.job_name_prefix))
            ctx = self.context(spec, name, user)
            try:
                if binding is not None:
                    return binding.create(ctx, dry_run=dry_run)
                return self._create(spec, ctx, dry_run=dry_run)
            except AlreadyExists as exc:
                replay = binding.resolve(exc, ctx, dry_run=dry_run) if binding is not None else None
                if replay is not None:
                    return replay
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

    def _create(
        self,
        spec: JobSpec,
        ctx: SubmitContext,
        *,
        dry_run: bool,
        record: Callable[[OwnerRef, list[dict]], dict] | None = None,
    ) -> SubmitResult:
        """Create the workload, then its dependents, then ``record(owner, manifests)`` if given, all or none."""
        with timed("render"):
            workload = make_workload(spec, ctx)
        dependents: list[dict] = []

        def render_dependents(created: CreatedObject) -> list[dict]:
            owner = OwnerRef(created.api_version, created.kind, created.name, created.uid)
            with timed("render"):
                dependents.extend(make_dependents(spec, ctx, owner))
                if record is not None:  # last, so that it exists only once everything else does
                    dependents.append(record(owner, [workload, *dependents]))
            return dependents

        with timed("apply"):
            objects = apply_all(self.cluster, ctx.namespace, workload, render_dependents, dry_run=dry_run)
        return SubmitResult(ctx.name, spec.project, ctx.namespace, ctx.workload_kind, objects, [workload, *dependents])
