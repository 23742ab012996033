"""Pure builders: a validated ``JobSpec`` and its context in, fresh manifest dicts out.

Nothing here imports Flask or ``kubernetes`` or reads settings; every input is an argument.
"""
from __future__ import annotations

from ..model import JobSpec, OwnerRef, SubmitContext
from .pvc import make_pvcs
from .service import make_ingress, make_service
from .workload import make_workload

__all__ = ["make_workload", "make_dependents", "render_job"]


def make_dependents(spec: JobSpec, ctx: SubmitContext, owner: OwnerRef | None) -> list[dict]:
    """Everything created after the workload, in creation order: PVCs, Service, Ingress."""
    manifests = make_pvcs(spec, ctx, owner)
    for manifest in (make_service(spec, ctx, owner), make_ingress(spec, ctx, owner)):
        if manifest is not None:
            manifests.append(manifest)
    return manifests


def render_job(spec: JobSpec, ctx: SubmitContext, owner: OwnerRef | None = None) -> list[dict]:
    """All manifests of a job in creation order (without owner references unless ``owner`` is known)."""
    return [make_workload(spec, ctx), *make_dependents(spec, ctx, owner)]
