"""Idempotent submits: a request retried with the same ``Idempotency-Key`` never creates a second job.

There is no store but the cluster, and the API server's atomic create decides who was first:

* **Scope.** A key is scoped to (user, project, key) and, in a batch, the item's index. Its digest names
  everything below, so two users (or projects) never share a key.
* **Name.** Without an explicit ``name`` the workload's name derives from the scope's digest
  (``render.names.derived_name``), so a retry asks for the very name the first request took, and the
  API server answers AlreadyExists instead of creating a second job.
* **Record.** The last object a keyed submit creates is the key's record: ConfigMap
  ``idempotency-<scope digest>``, owned by the workload, holding the digest of the job and the answer.
  - Its create is atomic, so one key binds one job even when a retry names the job differently (an
    explicit ``name`` changed, another ``jobNamePrefix``): that create fails and the retry rolls back.
  - It exists only once every other object of the job does, so "record present" means "done" and
    "workload present, record absent" means "still being created" (or stopped part-way, see below).
  - It is owned by the workload, so deleting the job deletes the record (Kubernetes' garbage collector)
    and frees the key. A failed submit rolls back everything it created, record included, so a failure
    binds nothing.
* **Decision.** A conflicting create is followed by reads (the workload, the record, and rarely the
  record's owner) that decide: replay the first answer, 409 + Retry-After while the first is in flight,
  422 naming the header when the key holds a different job.

The workload also carries the scope and job digests as annotations, so a request that finds the job in
flight can already tell "the same job, wait" from "a different job".
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..cluster.errors import AlreadyExists
from ..cluster.kinds import CONFIGMAP, WORKLOAD_KINDS
from ..errors import BadRequest, Conflict, FieldError, ServiceError
from ..metrics import IDEMPOTENT_SUBMITS
from ..model import CreatedObject, JobSpec, SubmitContext, warnings_of
from ..render.common import object_meta
from ..render.names import derived_name
from ..schemas.job import load_job

if TYPE_CHECKING:
    from .submit import Submitter, SubmitResult

log = logging.getLogger(__name__)

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
SCOPE_ANNOTATION = "runai-submit/idempotency-key"  # sha256 of the scope, never the key itself
JOB_ANNOTATION = "runai-submit/job-digest"  # sha256 of the validated job
RECORD_PREFIX = "idempotency-"
ANSWER = "answer"
# A request that finds the key's job still being created is asked to come back after this many seconds:
# a submit takes milliseconds, so the first request has usually answered by then.
IN_PROGRESS_RETRY_AFTER = 1
# Printable ASCII, as the IETF draft's sf-string allows; at most 255 characters.
_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")


def read_key(value: str | None) -> str | None:
    """The ``Idempotency-Key`` header's value, None when absent, or a 400 naming the header."""
    if value is None:
        return None
    if not _KEY.match(value):
        raise BadRequest(
            f"The {KEY_HEADER} header must be 1 to 255 printable ASCII characters.",
            errors=[FieldError(KEY_HEADER, "must be 1 to 255 printable ASCII characters")],
        )
    return value


class KeyInUse(Conflict):
    """The key's job is still being created, being deleted, or was left incomplete: 409, maybe Retry-After."""

    def __init__(self, message: str, reason: str, *, details: str = "",
                 retry_after: int | None = IN_PROGRESS_RETRY_AFTER) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after else {}
        super().__init__(message, details=details, headers=headers, errors=[FieldError(KEY_HEADER, reason)])


class KeyReused(ServiceError):
    """The key already holds a different job: 422 naming the header; nothing was created."""

    status = 422

    def __init__(self, job: str, project: str) -> None:
        super().__init__(
            f"The {KEY_HEADER} was already used for a different job ({job!r} in project {project!r}).",
            details="A key stands for one job: send the same job to get its answer again, or use a new key.",
            errors=[FieldError(KEY_HEADER, f"already used for a different job ({job!r})")],
        )
        self.job = job


@dataclass(frozen=True)
class IdempotencyKey:
    """A caller's key; ``index`` is the position of a batch item (each item of a keyed batch has its own).

    ``for_request`` adds what the key binds: the digest of the job as the caller sent it, and the fields
    the policy filled in (part of the answer a replay repeats).
    """

    key: str
    index: int | None = None
    digest: str | None = None
    defaulted: tuple[str, ...] = ()

    def scope(self, user: str, project: str) -> str:
        """The hex digest that stands for (user, project, key, index) in names and annotations."""
        material = json.dumps(["runai-submit/idempotency/v1", user, project, self.key, self.index],
                              separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(material.encode()).hexdigest()

    def for_request(self, job: Any, defaulted: tuple[str, ...] = ()) -> IdempotencyKey:
        return dataclasses.replace(self, digest=request_digest(job), defaulted=tuple(defaulted))

    def bind(self, submitter: Submitter, spec: JobSpec, user: str) -> KeyBinding:
        return KeyBinding(submitter, spec, user, self.scope(user, spec.project), self.digest or job_digest(spec),
                          self.defaulted)


def request_digest(job: Any) -> str:
    """The digest of the job as the caller sent it, so that a retry matches its first request even if an
    admin changed the policy's defaults in between.

    A job valid on its own is digested after validation (``job_digest``: spellings do not matter); one
    that needs the policy's defaults to be valid, as canonical JSON (key order and whitespace do not
    matter). Which of the two applies depends on the request alone, so a retry always compares alike.
    """
    spec, problems = load_job(job) if isinstance(job, dict) else (None, ["not an object"])
    if spec is not None and not problems:
        return job_digest(spec)
    canonical = json.dumps(_canonical(job), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "request:" + hashlib.sha256(canonical.encode()).hexdigest()


def job_digest(spec: JobSpec) -> str:
    """A digest of the validated job: the same for requests that differ only in key order, whitespace,
    or the accepted spellings of a value (``command`` as a string or a list, ``2`` or ``2.0``)."""
    job = dataclasses.asdict(spec)
    # Given as JSON objects (environment, the map form of volume), their order is not the caller's to mean.
    job["environment"] = sorted(job["environment"], key=lambda variable: variable["name"])
    job["volumes"] = sorted(job["volumes"], key=lambda volume: (volume["target_path"], volume["source_path"]))
    canonical = json.dumps(_canonical(job), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class KeyBinding:
    """One keyed submit: the names it may take, the objects it adds, and the decision after a conflict."""

    def __init__(self, submitter: Submitter, spec: JobSpec, user: str, scope: str, digest: str,
                 defaulted: tuple[str, ...] = ()) -> None:
        self.submitter = submitter
        self.cluster = submitter.cluster
        self.spec = spec
        self.user = user
        self.scope = scope
        self.digest = digest
        self.defaulted = defaulted
        self.record_name = RECORD_PREFIX + scope[:32]  # 128 bits: names never collide
        self.annotations = ((SCOPE_ANNOTATION, scope), (JOB_ANNOTATION, digest))

    def name(self, attempt: int) -> str:
        """The workload's name when the job has none: derived from the scope, the same on every retry."""
        return derived_name(self.spec.job_name_prefix, self.scope, attempt)

    def create(self, ctx: SubmitContext, *, dry_run: bool) -> SubmitResult:
        ctx = dataclasses.replace(ctx, annotations=self.annotations)
        result = self.submitter._create(self.spec, ctx, dry_run=dry_run,
                                        record=lambda created, manifests: self._record(ctx, created, manifests))
        IDEMPOTENT_SUBMITS.labels("dry_run" if dry_run else "created").inc()
        return result

    def _record(self, ctx: SubmitContext, created: list[CreatedObject], manifests: list[dict]) -> dict:
        """The key's record, created last: the digests, and the answer a retry gets back (with the
        policy's filled-in fields and the API server's warnings for every object created before it)."""
        objects = [{"kind": m["kind"], "name": m["metadata"]["name"]} for m in manifests]
        objects.append({"kind": CONFIGMAP.kind, "name": self.record_name})
        answer = {"name": ctx.name, "project": self.spec.project, "namespace": ctx.namespace,
                  "kind": ctx.workload_kind, "objects": objects, "defaulted": list(self.defaulted),
                  "warnings": warnings_of(created)}
        meta = object_meta(ctx, self.spec.project, self.record_name, created[0].as_owner())
        meta["annotations"] = dict(self.annotations)
        return {"apiVersion": CONFIGMAP.api_version, "kind": CONFIGMAP.kind, "metadata": meta,
                "immutable": True, "data": {ANSWER: json.dumps(answer, separators=(",", ":"))}}

    # --- after a conflict ---------------------------------------------------------------------------

    def resolve(self, exc: AlreadyExists, ctx: SubmitContext, *, dry_run: bool) -> SubmitResult | None:
        """Decide what a taken name means for this key: the replayed answer, a raised 409/422, or None when
        the name belongs to an unrelated job (the caller then tries another name, or answers 409)."""
        try:
            if exc.failed_object == f"{CONFIGMAP.kind} {self.record_name}":
                # Everything this request created was rolled back: the key is bound to another job.
                found = self.cluster.get(ctx.namespace, CONFIGMAP, self.record_name)
                if found is None:
                    raise KeyInUse(f"The {KEY_HEADER} is being released right now; retry.", "is being released")
                return self._bound_elsewhere(found, ctx, dry_run)
            if exc.failed_object != f"{ctx.workload_kind} {ctx.name}":
                return None  # a dependent's name is taken (say a PVC kept from an earlier job): not the key's
            return self._after_name_conflict(ctx, dry_run)
        except ServiceError as decision:
            if exc.left_behind and not decision.left_behind:
                decision.caused_by(exc)  # keep what the rollback could not delete in the answer
            if isinstance(decision, (KeyInUse, KeyReused)):
                IDEMPOTENT_SUBMITS.labels("in_use" if isinstance(decision, KeyInUse) else "reused").inc()
            raise decision from exc

    def _after_name_conflict(self, ctx: SubmitContext, dry_run: bool) -> SubmitResult | None:
        workload = self.cluster.get(ctx.namespace, WORKLOAD_KINDS[ctx.workload_kind], ctx.name)
        record = self.cluster.get(ctx.namespace, CONFIGMAP, self.record_name)
        if workload is None:
            raise KeyInUse(f"Job {ctx.name!r} changed while this request looked at it; retry.",
                           "is bound to a job that is changing")
        meta = workload.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        if record is not None:
            if _owner_uid(record) == meta.get("uid"):
                if _annotations(record).get(JOB_ANNOTATION) != self.digest:
                    raise KeyReused(ctx.name, self.spec.project)
                if meta.get("deletionTimestamp"):
                    raise KeyInUse(f"The job of this {KEY_HEADER}, {ctx.name!r}, is being deleted; retry to "
                                   "submit it again.", "is bound to a job that is being deleted")
                return self._replay(record, dry_run)
            return self._bound_elsewhere(record, ctx, dry_run)
        if annotations.get(SCOPE_ANNOTATION) != self.scope:
            return None  # an unrelated job holds the name
        if annotations.get(JOB_ANNOTATION) != self.digest:
            raise KeyReused(ctx.name, self.spec.project)
        created = meta.get("creationTimestamp") or ""
        if _age_seconds(created) > self._creation_bound():
            raise KeyInUse(
                f"The job of this {KEY_HEADER}, {ctx.name!r}, was left incomplete by an earlier request.",
                "is bound to an incomplete job",
                details=f"It was created at {created} and some of its objects were never made. Delete job "
                        f"{ctx.name!r} in project {self.spec.project!r} to free the key, then retry.",
                retry_after=None,
            )
        raise KeyInUse(
            f"The job of this {KEY_HEADER}, {ctx.name!r}, is still being created; retry shortly.",
            "is bound to a job that is still being created",
            details=f"Job {ctx.name!r} was created at {created}; its answer is not complete yet.",
        )

    def _bound_elsewhere(self, record: dict, ctx: SubmitContext, dry_run: bool) -> SubmitResult:
        """The key's record names a job other than ``ctx.name``: is that job alive (a different job under
        this key, or the same job under another name), or gone (the key is free once the record goes)?"""
        owner = _owner(record) or {}
        alive = None
        if owner.get("kind") in WORKLOAD_KINDS:
            alive = self.cluster.get(ctx.namespace, WORKLOAD_KINDS[owner["kind"]], owner.get("name", ""))
        if alive is None or (alive.get("metadata") or {}).get("uid") != owner.get("uid"):
            if dry_run:  # a dry run changes nothing, not even a record that is garbage
                raise KeyInUse(f"The job this {KEY_HEADER} was used for has been deleted; the key is being "
                               "released.", "is being released")
            self._release(record, ctx)
            raise KeyInUse(f"The job this {KEY_HEADER} was used for has been deleted; the key is free now, "
                           "retry.", "was released")
        if _annotations(record).get(JOB_ANNOTATION) == self.digest:
            return self._replay(record, dry_run)
        raise KeyReused(owner.get("name", ""), self.spec.project)

    def _release(self, record: dict, ctx: SubmitContext) -> None:
        """Delete a record whose job is gone. The garbage collector would, soon after the job's deletion
        (https://kubernetes.io/docs/concepts/architecture/garbage-collection/#background-deletion), but
        not at all when the job was deleted with propagationPolicy=Orphan, which leaves the record without
        an owner. The uid precondition spares a record another request made since under the same name."""
        uid = (record.get("metadata") or {}).get("uid")
        if self.cluster.delete(ctx.namespace, CONFIGMAP, self.record_name, uid=uid):
            log.info("released the record %s/%s of a deleted job", ctx.namespace, self.record_name)

    def _replay(self, record: dict, dry_run: bool) -> SubmitResult:
        from .submit import SubmitResult

        answer = json.loads((record.get("data") or {}).get(ANSWER) or "{}")
        IDEMPOTENT_SUBMITS.labels("replayed").inc()
        log.info("replayed job %s/%s for an Idempotency-Key", answer.get("namespace"), answer.get("name"))
        objects = [CreatedObject("", obj["kind"], obj["name"], "") for obj in answer.get("objects", [])]
        if objects:  # the API server's warnings for the job's objects, in order, each once
            objects[0] = dataclasses.replace(objects[0], warnings=tuple(answer.get("warnings", ())))
        # A replay creates nothing, so a dry run of it would create nothing either: no manifests.
        return SubmitResult(answer["name"], answer["project"], answer["namespace"], answer["kind"], objects,
                            manifests=[], defaulted=list(answer.get("defaulted", [])), replayed=True)

    def _creation_bound(self) -> float:
        """Seconds after which a job without its record can no longer be in flight: every call of a submit
        and of its rollback at its longest, twice over, plus a minute for clocks that disagree."""
        settings = self.submitter.settings
        per_call = (settings.connect_timeout + settings.request_timeout + settings.max_throttle_wait) * (
            1 + settings.throttle_retries)
        calls = 2 * (2 + len(self.spec.pvcs) + 2)  # workload, claims, Service, Ingress, record; and rollback
        return 2 * per_call * calls + 60


def _annotations(obj: Mapping) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _owner(obj: Mapping) -> dict | None:
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return owners[0] if owners else None


def _owner_uid(obj: Mapping) -> str | None:
    owner = _owner(obj)
    return owner.get("uid") if owner else None


def _age_seconds(timestamp: str) -> float:
    """Seconds since an API server timestamp (RFC 3339, UTC); 0 when it cannot be read."""
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (datetime.now(timezone.utc) - moment).total_seconds()
