"""Metadata shared by every object of a job: labels, annotations, owner references, number format."""
from __future__ import annotations

from decimal import Decimal

from ..model import OwnerRef, SubmitContext
from .names import label_safe

MANAGED_BY = "runai-submit"


def job_labels(ctx: SubmitContext, project: str) -> dict[str, str]:
    """Labels on every object of the job and on its pods; selectors and listings rely on them."""
    return {
        "app": "runaijob",
        "release": ctx.name,
        "createdBy": "RunaiJob",
        "project": project,
        "runai/user": label_safe(ctx.user),
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def object_meta(ctx: SubmitContext, project: str, name: str, owner: OwnerRef | None = None) -> dict:
    meta: dict = {"name": name, "namespace": ctx.namespace, "labels": job_labels(ctx, project)}
    if owner is not None:
        # No blockOwnerDeletion: setting it needs update rights on the owner's finalizers, which the
        # service has no other use for. https://kubernetes.io/docs/concepts/overview/working-with-objects/owners-dependents/
        meta["ownerReferences"] = [
            {"apiVersion": owner.api_version, "kind": owner.kind, "name": owner.name, "uid": owner.uid}
        ]
    return meta


def format_number(value: float) -> str:
    """A number as a quantity or annotation string: 2.0 -> "2", 0.5 -> "0.5", 1e-05 -> "0.00001"."""
    if isinstance(value, int):
        return str(value)
    return format(Decimal(repr(value)).normalize(), "f")
