"""Kubernetes quantities and Go durations, parsed by well-kept libraries.

``kubernetes.utils.quantity`` is the client's pure quantity parser (no network, no client objects), so this
module is the one place outside ``cluster/`` that imports from the ``kubernetes`` package.
"""
from __future__ import annotations

import re
from decimal import Decimal

import durationpy
from kubernetes.utils.quantity import parse_quantity

# The seed page itself writes "3GB"; Kubernetes spells the same suffixes without the "B".
_DECIMAL_BYTE_SUFFIXES = {"KB": "k", "MB": "M", "GB": "G", "TB": "T", "PB": "P", "EB": "E"}
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
# Go's time.ParseDuration units plus "d" for days (not weeks, months or years: ambiguous).
_DURATION = re.compile(r"^((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d))+$")
_MICROSECONDS_PER_SECOND = 1_000_000


def normalize_quantity(text: str) -> str:
    """Return ``text`` in Kubernetes quantity syntax ("3GB" -> "3G"), or raise ValueError."""
    text = text.strip()
    for suffix, canonical in _DECIMAL_BYTE_SUFFIXES.items():
        if text.endswith(suffix):
            text = text[: -len(suffix)] + canonical
            break
    if not _QUANTITY.match(text):
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    parse_quantity(text)  # the client's own parser is the judge of what it can compare
    return text


def quantity_value(text: str) -> Decimal:
    """The numeric value of a normalised quantity, for comparisons such as limit >= request."""
    return parse_quantity(text)


def duration_seconds(text: str) -> int:
    """Seconds in a Go duration ("1h30m", "500ms", "2d"), rounded half away from zero."""
    if not _DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration such as 90s, 1h30m, 500ms or 2d")
    delta = durationpy.from_str(text)
    micros = (delta.days * 86_400 + delta.seconds) * _MICROSECONDS_PER_SECOND + delta.microseconds
    # Half away from zero, unlike Python's round() which rounds half to even (2.5s -> 2).
    return (micros + _MICROSECONDS_PER_SECOND // 2) // _MICROSECONDS_PER_SECOND
