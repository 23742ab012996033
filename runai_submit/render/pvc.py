"""New persistent volume claims of a job. They have no owner: their data outlives the job."""
from __future__ import annotations

from ..model import JobSpec, OwnerRef, SubmitContext
from . import names
from .common import object_meta

# The uid of the workload a claim was made with. No owner reference (the garbage collector would delete the
# data with the job), yet DELETE ?deletePvcs=true must know the job's own claims from those an earlier job of
# the same name kept, which carry the same labels and which a new job may mount again by name.
JOB_UID_ANNOTATION = "runai-submit/job-uid"


def make_pvcs(spec: JobSpec, ctx: SubmitContext, owner: OwnerRef | None = None) -> list[dict]:
    """The job's new claims; with ``owner`` (the created workload), each records its uid."""
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
        meta = object_meta(ctx, spec.project, names.pvc_name(ctx.name, index))
        if owner is not None:
            meta["annotations"] = {JOB_UID_ANNOTATION: owner.uid}
        claims.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": claim_spec})
    return claims
