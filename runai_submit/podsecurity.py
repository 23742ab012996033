"""Pod Security Admission, judged at submit: what a project namespace's level refuses in a job.

Pod Security Admission judges pods, not Jobs: a Job whose pod template breaks its namespace's level is
created, and then every pod the job controller makes for it is refused (``FailedCreate``), with nobody
told. So the service reads the namespace's ``pod-security.kubernetes.io/enforce`` label and refuses such
a job itself (``job_violations``), and in a ``restricted`` namespace renders a pod that the level
admits (``render.podsecurity``). Pure: labels and a raw job in, field errors out.
https://kubernetes.io/docs/concepts/security/pod-security-admission/
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import FieldError
from .render.podsecurity import BASELINE, LEVELS, PRIVILEGED, RESTRICTED
from .schemas.fields import escape_pointer

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"


def enforced_level(labels: Mapping[str, str] | None) -> str:
    """The level a namespace enforces: no label is ``privileged`` (Pod Security Admission's default).

    The API server refuses any other value on a namespace; one could only be there from before Pod
    Security Admission ran, and then the admission plugin evaluates ``restricted``, so we do too.
    """
    value = (labels or {}).get(ENFORCE_LABEL)
    if not value:
        return PRIVILEGED
    return value if value in LEVELS else RESTRICTED


def job_violations(job: Mapping[str, Any], level: str, namespace: str) -> list[FieldError]:
    """One error per field of ``job`` that its namespace's level refuses; none for ``privileged``.

    Both ``baseline`` and ``restricted`` forbid host namespaces and hostPath volumes. What else
    ``restricted`` asks for (no privilege escalation, no capabilities, non-root, a seccomp profile) is
    not something a job can ask for otherwise: the service renders it (render/podsecurity.py).
    """
    if level not in (BASELINE, RESTRICTED):
        return []
    enforces = f'namespace {namespace} enforces Pod Security "{level}"'
    errors = []
    for wire in ("hostNetwork", "hostIpc"):
        if job.get(wire) is True:
            errors.append(FieldError(f"/job/{wire}", f"{enforces}; host namespaces are not allowed"))
    volume, volumes = job.get("volume"), job.get("volumes")
    pointers = []
    if isinstance(volume, dict):
        pointers += [f"/job/volume/{escape_pointer(str(source))}" for source in volume]
    if isinstance(volumes, list):
        pointers += [f"/job/volumes/{index}" for index in range(len(volumes))]
    errors += [FieldError(pointer, f"{enforces}; hostPath volumes are not allowed") for pointer in pointers]
    return errors
