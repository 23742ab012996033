"""New persistent volume claims of a job. They have no owner: their data outlives the job."""
from __future__ import annotations

from ..model import JobSpec, SubmitContext
from . import names
from .common import object_meta


def make_pvcs(spec: JobSpec, ctx: SubmitContext) -> list[dict]:
    claims = []
    for index, pvc in enumerate(spec.pvcs):
        if not pvc.is_new:
            continue
        claim_spec: dict = {
            "accessModes": ["ReadWriteOnce"],
            "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": pvc.size}},
        }
        if pvc.storage_class:
            claim_spec["storageClassName"] = pvc.storage_class
        claims.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": object_meta(ctx, spec.project, names.pvc_name(ctx.name, index)),
                "spec": claim_spec,
            }
        )
    return claims
