"""Many jobs in one call (``POST /api/v1/jobs/batch``).

Every job takes the one submit path (``Submitter.submit_request``, or its two halves for ``atomic``), so
a batch item is validated, named, created and rolled back exactly like a single submit. The jobs are
created concurrently by at most ``batch_concurrency`` threads, which share this process's one
cluster handle and so its one connection pool (sized for the fan-out in ``cluster/kube.py``).

* independent (the default): each job is all or nothing by itself; the answer lists every outcome.
* atomic: every job is validated before anything is created; when a create fails, no further job is
  started and every job the batch created is rolled back, so the batch leaves all its jobs or none.
"""
from __future__ import annotations

import contextvars
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..cluster.applier import rollback
from ..errors import BadRequest, FieldError, ServiceError, ValidationFailed
from ..metrics import BATCH_ITEMS, BATCH_JOBS, BATCHES
from ..schemas.batch import load_batch_request
from ..schemas.job import validation_failed
from .idempotency import IdempotencyKey
from .submit import Submitter, SubmitResult, ValidJob

log = logging.getLogger(__name__)

T = TypeVar("T")


class NotCreated(ServiceError):
    """A job of a failed atomic batch: valid, but rolled back or never started because another job failed.

    424 Failed Dependency: https://www.rfc-editor.org/rfc/rfc4918#section-11.4
    """

    status = 424
    default_message = "Not created: another job of this atomic batch failed."

    def to_dict(self) -> dict:
        envelope = super().to_dict()
        if self.left_behind:
            envelope["leftBehind"] = list(self.left_behind)
        return envelope


@dataclass
class BatchItem:
    """The outcome of one job of a batch, at its position in the request."""

    index: int
    result: SubmitResult | None = None
    error: ServiceError | None = None
    outcome: str = ""  # created, replayed, dry_run, rejected, conflict, failed, rolled_back, not_created

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self, *, dry_run: bool = False) -> dict:
        if self.error is not None:
            envelope = self.error.to_dict()
            retry_after = self.error.headers.get("Retry-After")
            if retry_after:
                envelope["retryAfterSeconds"] = int(retry_after)
            return {"index": self.index, "ok": False, "error": envelope}
        assert self.result is not None
        body = {"index": self.index, "ok": True, **self.result.to_dict(with_manifests=dry_run)}
        if self.result.replayed:
            body["replayed"] = True
        return body


@dataclass
class BatchResult:
    """Every item in request order; ``failure`` is set when an atomic batch failed (nothing of it remains)."""

    items: list[BatchItem]
    atomic: bool = False
    dry_run: bool = False
    failure: ServiceError | None = None
    left_behind: list[str] = field(default_factory=list)

    def data(self) -> list[dict]:
        return [item.to_dict(dry_run=self.dry_run) for item in self.items]


class Batches(Submitter):
    """Batch submits over the single submit path."""

    def submit_batch(
        self, payload: Any, user: str, *, dry_run: bool = False, atomic: bool = False, key: str | None = None
    ) -> BatchResult:
        """Submit ``{"jobs": [...]}``; with ``key`` (an Idempotency-Key) each job is bound by its index."""
        mode = "atomic" if atomic else "independent"
        try:
            jobs = load_batch_request(payload, self.settings.max_batch)
        except ServiceError:
            BATCHES.labels(mode, "invalid").inc()
            raise
        BATCH_JOBS.observe(len(jobs))
        keys = [IdempotencyKey(key, index) if key is not None else None for index in range(len(jobs))]
        self._warm_up(jobs)
        repeats = repeated_names(jobs)
        if atomic:
            result = self._submit_atomic(jobs, user, keys, repeats, dry_run=dry_run)
        else:
            items = self._fan_out(len(jobs), lambda i: self._submit_one(i, jobs[i], user, keys[i], dry_run,
                                                                        repeats.get(i)))
            result = BatchResult(items, dry_run=dry_run)
        for item in result.items:
            BATCH_ITEMS.labels(item.outcome).inc()
        BATCHES.labels(mode, _batch_outcome(result)).inc()
        return result

    # --- independent jobs ------------------------------------------------------------------------------

    def _submit_one(self, index: int, job: Any, user: str, key: IdempotencyKey | None, dry_run: bool,
                    repeat: ValidationFailed | None) -> BatchItem:
        try:
            _require_object(index, job)
            if repeat is not None:
                self.validate_request({"job": job})  # the job's own problems first
                raise repeat
            return _succeeded(index, self.submit_request({"job": job}, user, dry_run=dry_run, key=key), dry_run)
        except Exception as exc:  # one job's failure, even a bug, must not sink the others already created
            return _failed(index, exc)

    # --- all or none -----------------------------------------------------------------------------------

    def _submit_atomic(self, jobs: list[Any], user: str, keys: list[IdempotencyKey | None],
                       repeats: dict[int, ValidationFailed], *, dry_run: bool) -> BatchResult:
        valid: list[ValidJob | None] = []
        invalid: list[BatchItem] = []
        for index, job in enumerate(jobs):
            checked: ValidJob | None = None
            try:
                _require_object(index, job)
                checked = self.validate_request({"job": job})
                if index in repeats:
                    raise repeats[index]
            except Exception as exc:
                checked = None
                invalid.append(_failed(index, exc))
            valid.append(checked)
        if invalid:
            return self._atomic_invalid(len(jobs), invalid, dry_run)

        # After a failure no further job starts (a dry run tries them all: it reports every problem at once).
        stop = threading.Event()

        def create(index: int) -> BatchItem:
            if stop.is_set():
                return BatchItem(index, error=NotCreated(), outcome="not_created")
            try:
                job = valid[index]
                assert job is not None  # every job is valid here: an invalid one ended the batch above
                return _succeeded(index, self.submit_valid(job, user, dry_run=dry_run, key=keys[index]), dry_run)
            except Exception as exc:
                if not dry_run:
                    stop.set()
                return _failed(index, exc)

        items = self._fan_out(len(jobs), create)
        failed = [item for item in items if item.error is not None and item.outcome != "not_created"]
        if not failed:
            return BatchResult(items, atomic=True, dry_run=dry_run)
        first = failed[0]
        left_behind = [] if dry_run else self._roll_back(items, first.index)
        for item in items:
            if item.outcome == "not_created":
                item.error = NotCreated(f"Not created: job {first.index} of this atomic batch failed.")
        details = f"Job {first.index}: {first.error.message} {first.error.details}".strip()
        if left_behind:
            details += f" Rollback could not delete: {', '.join(left_behind)}; they may remain."
        failure = _failure_like(
            first.error,
            f"Job {first.index} of the atomic batch failed; "
            + ("nothing would be created." if dry_run else "every job the batch created was rolled back."),
            details=details,
            errors=[error for item in failed for error in item.error.errors],
        )
        return BatchResult(items, atomic=True, dry_run=dry_run, failure=failure, left_behind=left_behind)

    def _atomic_invalid(self, count: int, invalid: list[BatchItem], dry_run: bool) -> BatchResult:
        """Some jobs are invalid: nothing was created, and the 422 lists every error of every job."""
        by_index = {item.index: item for item in invalid}
        items = [by_index.get(index) or BatchItem(index, error=NotCreated(
            "Not created: other jobs of this atomic batch are not valid."), outcome="not_created")
            for index in range(count)]
        errors = [error for item in invalid for error in item.error.errors]  # type: ignore[union-attr]
        failure = ValidationFailed(
            f"{len(invalid)} of {count} jobs of the atomic batch are not valid; nothing was created.",
            details="; ".join(f"{error.field}: {error.message}" for error in errors),
            errors=errors,
        )
        return BatchResult(items, atomic=True, dry_run=dry_run, failure=failure)

    def _roll_back(self, items: list[BatchItem], failed_index: int) -> list[str]:
        """Delete every job this request created (not those an Idempotency-Key replayed: an earlier request
        made them); each such item then says it was rolled back, and why."""
        created = [item for item in items if item.result is not None and not item.result.replayed]

        def undo(position: int) -> list[str]:
            item = created[position]
            assert item.result is not None
            left = rollback(self.cluster, item.result.namespace, item.result.objects)
            log.info("atomic batch: rolled back job %s/%s", item.result.namespace, item.result.name)
            error = NotCreated(
                f"Rolled back: job {failed_index} of this atomic batch failed.",
                details=f"Job {item.result.name!r} was created, then deleted again"
                        + (f"; could not delete: {', '.join(left)}." if left else "."),
            )
            error.left_behind = left
            item.error, item.outcome = error, "rolled_back"
            return left

        return [obj for left in self._fan_out(len(created), undo) for obj in left]

    # --- shared ----------------------------------------------------------------------------------------

    def _fan_out(self, count: int, work: Callable[[int], T]) -> list[T]:
        """``work(i)`` for i in 0..count-1 by at most ``batch_concurrency`` threads; results in order.

        Each task runs in a copy of the caller's context, so its log lines keep the request id.
        """
        workers = min(self.settings.batch_concurrency, count)
        if workers <= 1:
            return [work(index) for index in range(count)]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch") as pool:
            futures = [pool.submit(contextvars.copy_context().run, work, index) for index in range(count)]
            return [future.result() for future in futures]

    def _warm_up(self, jobs: list[Any]) -> None:
        """Discover the workload kind and read the project map once, before the threads would all do it."""
        self.cluster.workload_kind()
        projects = [job.get("project") for job in jobs if isinstance(job, dict)]
        for project in sorted({p for p in projects if isinstance(p, str)}):
            try:
                self.cluster.namespace_for(project)
            except ServiceError:
                pass  # the job's own submit answers it, at its index


def repeated_names(jobs: list[Any]) -> dict[int, ValidationFailed]:
    """Index -> the 422 of a job whose explicit name an earlier job of the batch already gives in the same
    project. The second create would be refused as taken, but a dry run could not know: each of its objects
    is judged alone. So the batch says it up front, in a dry run too, and in an atomic batch before anything
    is created."""
    first: dict[tuple[str, str], int] = {}
    repeats = {}
    for index, job in enumerate(jobs):
        if isinstance(job, dict) and isinstance(job.get("name"), str) and isinstance(job.get("project"), str):
            earlier = first.setdefault((job["project"], job["name"]), index)
            if earlier != index:
                repeats[index] = validation_failed([FieldError(
                    "/job/name", f"job {earlier} of this batch has the same name in project {job['project']!r}; "
                                 "a name is one job")])
    return repeats


def _require_object(index: int, job: Any) -> None:
    if not isinstance(job, dict):
        raise BadRequest(f"Job {index} of the batch is not a JSON object.",
                         errors=[FieldError(f"/jobs/{index}", "must be an object")])


def _succeeded(index: int, result: SubmitResult, dry_run: bool) -> BatchItem:
    outcome = "replayed" if result.replayed else "dry_run" if dry_run else "created"
    return BatchItem(index, result=result, outcome=outcome)


def _failed(index: int, exc: Exception) -> BatchItem:
    """A job's error, with its pointers rebased from ``/job/...`` to ``/jobs/<index>/...``."""
    if not isinstance(exc, ServiceError):
        log.error("unexpected error in job %d of a batch", index, exc_info=exc)
        error = ServiceError("Internal error.", details="The error was logged; nothing of it is shown here.")
    else:
        error = exc
        error.errors = [FieldError(_rebase(e.field, index), e.message) for e in error.errors]
        error.details = _POINTER_IN_TEXT.sub(lambda m: m.group(1) + _rebase(m.group(2), index), error.details)
    status = error.status
    outcome = "conflict" if status == 409 else "failed" if status >= 500 else "rejected"
    return BatchItem(index, error=error, outcome=outcome)


_POINTER_IN_TEXT = re.compile(r"(^|[\s;(])(/job(?:/[^\s:;,)]*)?)(?=[\s:;,)]|$)")


def _rebase(pointer: str, index: int) -> str:
    """``/job/ports/1`` -> ``/jobs/<index>/ports/1``; other names (a header) stay as they are."""
    if pointer == "/job" or pointer.startswith("/job/"):
        return f"/jobs/{index}{pointer[len('/job'):]}"
    return pointer


def _failure_like(cause: ServiceError, message: str, *, details: str, errors: list[FieldError]) -> ServiceError:
    """The error an atomic batch answers with: the first failed job's status and headers, the batch's words."""
    failure = ServiceError(message, details=details, errors=errors, headers=cause.headers)
    failure.status = cause.status
    return failure


def _batch_outcome(result: BatchResult) -> str:
    if result.failure is not None:
        if isinstance(result.failure, ValidationFailed):
            return "invalid"
        return "failed" if result.dry_run else "rolled_back"
    oks = sum(item.ok for item in result.items)
    return "ok" if oks == len(result.items) else "failed" if oks == 0 else "partial"
