"""Submit one job: choose its name, render its objects and create them all or none."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..cluster.applier import apply_all
from ..cluster.errors import AlreadyExists, NamespaceMissing
from ..errors import Conflict, FieldError, NameTaken, ProjectNotFound
from ..metrics import timed
from ..model import CreatedObject, JobSpec, SubmitContext, warnings_of
from ..podsecurity import enforced_level, job_violations
from ..policy import Policy, apply_defaults, check_values
from ..render import make_dependents, make_workload
from ..render.names import DNS1123_LABEL, MAX_LABEL
from ..schemas.job import job_of_request, load_job, validation_failed
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
    defaulted: list[str] = field(default_factory=list)  # policy: the fields its defaults filled in
    replayed: bool = False  # the answer of an earlier request with the same Idempotency-Key; nothing was created

    @property
    def warnings(self) -> list[str]:
        """The API server's warnings for the objects created (or dry-run), each once, in order."""
        return warnings_of(self.objects)

    def to_dict(self, *, with_manifests: bool = False) -> dict:
        body = {
            "name": self.name,
            "project": self.project,
            "namespace": self.namespace,
            "kind": self.kind,
            "objects": [{"kind": obj.kind, "name": obj.name} for obj in self.objects],
            "defaulted": list(self.defaulted),
            "warnings": self.warnings,
        }
        if with_manifests:
            body["manifests"] = self.manifests
        return body


@dataclass(frozen=True)
class ValidJob:
    """A job payload that passed every check: the job to create, the fields the policy's defaults filled
    in, and the job as the caller sent it (an Idempotency-Key compares requests, not policies)."""

    spec: JobSpec
    defaulted: tuple[str, ...] = ()
    request: Any = None


class Submitter(ServiceBase):
    """Submits validated jobs to a cluster, all or nothing."""

    def submit_request(
        self, payload: Any, user: str, *, dry_run: bool = False, key: IdempotencyKey | None = None
    ) -> SubmitResult:
        """The whole path of one ``{"job": {...}}``: policy, validate, Pod Security, then create.

        Single and batch submits share it (an atomic batch calls its two halves: every job is checked
        before any is created).
        """
        return self.submit_valid(self.validate_request(payload), user, dry_run=dry_run, key=key)

    def validate_request(self, payload: Any) -> ValidJob:
        """Policy, validate, Pod Security: everything a job payload must pass before anything is created
        (``check_job``, with the policy now and the enforce level of the project's namespace)."""
        with timed("validate"):
            return check_job(payload, self.current_policy(), self._enforced)

    def _enforced(self, project: str) -> tuple[str, str]:
        namespace = self.cluster.namespace_for(project)
        return namespace, enforced_level(self.cluster.namespace_labels(namespace))

    def submit_valid(
        self, valid: ValidJob, user: str, *, dry_run: bool = False, key: IdempotencyKey | None = None
    ) -> SubmitResult:
        """Create a job that passed ``validate_request``."""
        if key is not None:  # idempotency (issue 12): a key binds the request as sent, whatever policy adds
            key = key.for_request(valid.request, valid.defaulted)
        result = self.submit(valid.spec, user, dry_run=dry_run, key=key)
        if not result.replayed:  # a replay answers what the first request's policy filled in
            result.defaulted = list(valid.defaulted)
        return result

    def context(self, spec: JobSpec, name: str, user: str) -> SubmitContext:
        workload = self.cluster.workload_kind()
        namespace = self.cluster.namespace_for(spec.project)
        return SubmitContext(
            name=name,
            namespace=namespace,
            user=user,
            workload_api_version=workload.api_version,
            workload_kind=workload.kind,
            scheduler_name=self.settings.scheduler_name,
            ingress_class=self.settings.ingress_class,
            pod_security=enforced_level(self.cluster.namespace_labels(namespace)),
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
                    holder = exc.failed_object if exc.failed_object != f"{ctx.workload_kind} {name}" else ""
                    said = exc.message if exc.message.endswith(".") else f"{exc.message}."  # the API server's words
                    raise NameTaken(spec.project, name, details=f"{said} {exc.details}".strip(),
                                    holder=holder or "").caused_by(exc) from exc
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
        record: Callable[[list[CreatedObject], list[dict]], dict] | None = None,
    ) -> SubmitResult:
        """Create the workload, then its dependents, then ``record(created, manifests)`` if given, all or none."""
        with timed("render"):
            workload = make_workload(spec, ctx)
        dependents: list[dict] = []

        def render_dependents(created: list[CreatedObject]) -> Iterator[dict]:
            with timed("render"):
                dependents.extend(make_dependents(spec, ctx, created[0].as_owner()))
            yield from list(dependents)
            if record is not None:  # last, so that it exists only once everything else does
                with timed("render"):
                    dependents.append(record(created, [workload, *dependents]))
                yield dependents[-1]

        with timed("apply"):
            objects = apply_all(self.cluster, ctx.namespace, workload, render_dependents, dry_run=dry_run)
        return SubmitResult(ctx.name, spec.project, ctx.namespace, ctx.workload_kind, objects, [workload, *dependents])


def check_job(payload: Any, policy: Policy, enforced: Callable[[str], tuple[str, str]]) -> ValidJob:
    """Policy, validate, Pod Security: everything a job payload must pass before anything is created.

    The policy's defaults are merged into the job before the job schema runs, so every rule of the
    contract holds for the job as it will be created; the problems of the schema, the policy and Pod
    Security are answered together, all at once. ``enforced(project)`` is the project's namespace and the
    Pod Security level it enforces (the service asks the cluster; ``runai-submit render`` its options).
    """
    job, problems = job_of_request(payload)
    project = job.get("project") if _is_project(job.get("project")) else None
    effective = policy.effective(project)
    applied = apply_defaults(job, effective)
    spec, schema_problems = load_job(applied.job)
    problems += [_from_defaults(problem, applied.defaulted) for problem in schema_problems]
    # The schema's own "is required" (image, project) already says what the policy's would.
    required = {problem.field for problem in schema_problems if problem.message == "is required"}
    problems += [problem for problem in applied.errors
                 if not (problem.field in required and problem.message.startswith("is required"))]
    problems += check_values(applied.job, effective)
    if project is not None:
        namespace, level = enforced(project)
        problems += job_violations(applied.job, level, namespace)
    if problems:
        failed = validation_failed(problems)
        if applied.defaulted:
            failed.details += f" (defaults of the policy filled in: {', '.join(applied.defaulted)})"
        raise failed
    return ValidJob(spec, tuple(applied.defaulted), job)


def _is_project(value: Any) -> bool:
    """A project name the policy and the namespace map can be asked about (the schema judges the rest)."""
    return isinstance(value, str) and len(value) <= MAX_LABEL and bool(DNS1123_LABEL.match(value))


def _from_defaults(problem: FieldError, defaulted: list[str]) -> FieldError:
    """A schema problem in a value the policy's defaults filled in says so: the caller never wrote it."""
    wire = problem.field.split("/")[2] if problem.field.startswith("/job/") else ""
    if wire in defaulted:
        return FieldError(problem.field, f"{problem.message} (the value is the policy's default)")
    return problem

