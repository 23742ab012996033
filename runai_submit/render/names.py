"""Kubernetes name rules and the DNS-safe names derived from a job, in one place."""
from __future__ import annotations

import hashlib
import re
import secrets

# https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
# Each is valid in Python and ECMA-262 alike (the OpenAPI document carries them as patterns); apply with
# fullmatch, since Python's "$" also matches before a trailing newline.
DNS1035_LABEL = re.compile(r"^[a-z](?:[-a-z0-9]*[a-z0-9])?$")
DNS1123_LABEL = re.compile(r"^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(?:(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# The API server also refuses ".", ".." and a leading ".." for these (validation.IsEnvVarName, IsConfigMapKey).
ENV_NAME = re.compile(r"^(?:[-_a-zA-Z][-._a-zA-Z0-9]*|\.[-_a-zA-Z0-9][-._a-zA-Z0-9]*)$")
SECRET_KEY = re.compile(r"^\.?[-_a-zA-Z0-9][-._a-zA-Z0-9]*$")
MAX_LABEL = 63
_NOT_IN_LABEL = re.compile(r"[^-A-Za-z0-9_.]+")
_LABEL_ENDS = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")
MAX_SUBDOMAIN = 253

# The alphabet and length of the API server's own generateName suffixes: no vowels, no look-alikes.
SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SUFFIX_LENGTH = 5
_SUFFIX_SPACE = len(SUFFIX_ALPHABET) ** SUFFIX_LENGTH
# A name derived from an Idempotency-Key has a longer suffix when the prefix leaves room: two keys should
# practically never derive the same name (a collision costs one more create, see service/idempotency.py).
DERIVED_SUFFIX_LENGTH = 10
DEFAULT_PREFIX = "job"
MAX_PREFIX = MAX_LABEL - SUFFIX_LENGTH - 1
HOME_DIR = "/home/runai-home"
SHM_DIR = "/dev/shm"


def generated_name(prefix: str | None) -> str:
    """``<prefix>-<5 random chars>``: unique enough that a collision (answered 409, then retried) is rare."""
    # One draw from the OS for the whole suffix (secrets.choice per letter would read it five times): a uniform
    # number below 27^5 written in base 27 is five uniform, independent letters.
    number = secrets.randbelow(_SUFFIX_SPACE)
    letters = []
    for _ in range(SUFFIX_LENGTH):
        number, digit = divmod(number, len(SUFFIX_ALPHABET))
        letters.append(SUFFIX_ALPHABET[digit])
    return f"{prefix or DEFAULT_PREFIX}-{''.join(letters)}"


def derived_name(prefix: str | None, seed: str, attempt: int = 0) -> str:
    """``<prefix>-<suffix>`` with the suffix derived from ``seed``: the same seed always names the same job.

    ``attempt`` gives the next name of the same seed when one is taken by an unrelated job. The suffix is
    as long as ``DERIVED_SUFFIX_LENGTH`` where the prefix leaves room, and never shorter than a random one.
    """
    prefix = prefix or DEFAULT_PREFIX
    length = max(SUFFIX_LENGTH, min(DERIVED_SUFFIX_LENGTH, MAX_LABEL - len(prefix) - 1))
    number = int.from_bytes(hashlib.sha256(f"{seed}:{attempt}".encode()).digest(), "big")
    letters = []
    for _ in range(length):
        number, digit = divmod(number, len(SUFFIX_ALPHABET))
        letters.append(SUFFIX_ALPHABET[digit])
    return f"{prefix}-{''.join(letters)}"


def label_safe(value: str) -> str:
    """A label value standing for ``value`` (e.g. a user name); the exact value lives in an annotation."""
    cleaned = _NOT_IN_LABEL.sub("-", value)[:MAX_LABEL]
    return _LABEL_ENDS.sub("", cleaned)


def pvc_name(job_name: str, index: int) -> str:
    return f"pvc-{job_name}-{index}"


def pvc_volume_name(index: int) -> str:
    return f"pvc-volume-{index}"


def host_path_volume_name(index: int) -> str:
    return f"host-path-volume-{index}"


def ingress_path(project: str, job_name: str) -> str:
    return f"/{project}-{job_name}"
