"""Create a job's objects all or nothing: remember each one, and on any failure delete them again."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from ..errors import ServiceError
from ..metrics import ROLLBACKS
from ..model import CreatedObject
from .kinds import KINDS, Kind, kind_of

log = logging.getLogger(__name__)


class ObjectStore(Protocol):
    def create(self, namespace: str, manifest: dict, *, dry_run: bool = False) -> CreatedObject: ...

    def delete(self, namespace: str, kind: Kind, name: str, *, propagation: str = "Background") -> bool: ...


def apply_all(
    store: ObjectStore,
    namespace: str,
    first: dict,
    then: Callable[[list[CreatedObject]], Iterable[dict]],
    *,
    dry_run: bool = False,
) -> list[CreatedObject]:
    """Create ``first`` (it reserves the name), then each manifest ``then(created)`` yields.

    ``created`` is the list of the objects created so far, ``first`` at its head. It grows while ``then``'s
    iterable is consumed, so a manifest yielded last can carry what the creates before it answered.

    On failure everything created here is deleted in reverse order and the original error is re-raised,
    annotated with the object that failed and any object that could not be removed.
    """
    created: list[CreatedObject] = []
    current = first
    try:
        created.append(store.create(namespace, first, dry_run=dry_run))
        for manifest in then(created):
            current = manifest
            created.append(store.create(namespace, manifest, dry_run=dry_run))
    except Exception as exc:
        failed = f"{current['kind']} {current['metadata']['name']}"
        maybe = current if isinstance(exc, ServiceError) and exc.maybe_applied else None
        late = isinstance(exc, ServiceError) and exc.may_land_late
        left_behind = [] if dry_run else rollback(store, namespace, created, maybe_created=maybe, may_land_late=late)
        if isinstance(exc, ServiceError):
            exc.failed_object = failed
            exc.left_behind = left_behind
            exc.details = _explain(exc.details, failed, created, left_behind, dry_run)
        raise
    return created


def rollback(
    store: ObjectStore,
    namespace: str,
    created: list[CreatedObject],
    *,
    maybe_created: dict | None = None,
    may_land_late: bool = False,
) -> list[str]:
    """Delete ``created`` newest first; return "Kind name" of each object that may remain."""
    left_behind = []
    if maybe_created is not None:
        # The failed create timed out or hit a server error after the request was sent: it may exist, or
        # the API server may still be storing it, so a 404 now proves nothing about a minute from now.
        kind, name = kind_of(maybe_created), maybe_created["metadata"]["name"]
        outcome = _delete(store, namespace, kind, name)
        owned = bool(maybe_created["metadata"].get("ownerReferences"))
        if outcome == "failed" or (outcome == "absent" and may_land_late and not owned):
            # An owned object landing late is collected with its (deleted) owner; an unowned one is not.
            log.error("the create of %s %s/%s failed ambiguously and it may still appear; an operator must "
                      "check for it", kind.kind, namespace, name)
            left_behind.append(f"{kind.kind} {name}")
    for obj in reversed(created):
        if _delete(store, namespace, KINDS[obj.kind], obj.name) == "failed":
            left_behind.append(f"{obj.kind} {obj.name}")
    ROLLBACKS.labels("partial" if left_behind else "complete").inc()
    return left_behind


def _delete(store: ObjectStore, namespace: str, kind: Kind, name: str) -> str:
    """Delete one object for a rollback: "deleted", "absent" (nothing to delete) or "failed"."""
    try:
        found = store.delete(namespace, kind, name)
    except ServiceError as exc:
        log.error("rollback could not delete %s %s/%s: %s %s; an operator must remove it",
                  kind.kind, namespace, name, exc.message, exc.details)
        return "failed"
    log.info("rolled back %s %s/%s", kind.kind, namespace, name)
    return "deleted" if found else "absent"


def _explain(details: str, failed: str, created: list[CreatedObject], left_behind: list[str], dry_run: bool) -> str:
    """The API server's words (a sentence of their own), then which object failed and what became of the rest."""
    parts = [details if details.endswith((".", "!", "?")) else f"{details}."] if details else []
    parts.append(f"Failed object: {failed}.")
    if dry_run:
        parts.append("Nothing was created (dry run).")
    elif created and not left_behind:
        parts.append(f"Rolled back: {', '.join(f'{obj.kind} {obj.name}' for obj in created)}.")
    if left_behind:
        parts.append(
            f"Rollback could not delete: {', '.join(left_behind)}; they may remain"
            " (the workload's owner references let the cluster collect its Service and Ingress)."
        )
    return " ".join(parts)
