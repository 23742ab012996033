"""The securityContext a ``restricted`` namespace asks of every pod, beside the pod it secures.

Pod Security "restricted" admits a pod only when each container sets ``allowPrivilegeEscalation: false``
and drops ALL capabilities, and the pod (or each container) sets ``runAsNonRoot: true`` and a
``RuntimeDefault`` (or Localhost) seccomp profile. The pod-wide two go on the pod, so they hold for
every container. ``runAsNonRoot`` means the image must name a non-root user (or the pod is refused at
start by the kubelet, ``CreateContainerConfigError``).
https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted
"""
from __future__ import annotations

# The levels of Pod Security Admission, weakest first (runai_submit/podsecurity.py reads them from labels).
PRIVILEGED, BASELINE, RESTRICTED = "privileged", "baseline", "restricted"
LEVELS = (PRIVILEGED, BASELINE, RESTRICTED)


def secure_pod(pod: dict, level: str) -> dict:
    """``pod`` (a pod spec) made admissible at ``level``: a fresh dict, the input untouched."""
    if level != RESTRICTED:
        return pod
    secured = {**pod, "securityContext": {**pod.get("securityContext", {}), "runAsNonRoot": True,
                                          "seccompProfile": {"type": "RuntimeDefault"}}}
    secured["containers"] = [
        {**container, "securityContext": {**container.get("securityContext", {}),
                                          "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}
        for container in pod["containers"]
    ]
    return secured
