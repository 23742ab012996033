"""Kubernetes quantities (parsed by the client's own parser) and Go durations.

``kubernetes.utils.quantity`` is the client's pure quantity parser (no network, no client objects), so this
module is the one place outside ``cluster/`` that imports from the ``kubernetes`` package.
"""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from kubernetes.utils.quantity import parse_quantity

# The seed page itself writes "3GB"; Kubernetes spells the same suffixes without the "B".
_DECIMAL_BYTE_SUFFIXES = {"KB": "k", "MB": "M", "GB": "G", "TB": "T", "PB": "P", "EB": "E"}
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
# Go's time.ParseDuration syntax plus "d" for days (not weeks, months or years: ambiguous).
_DURATION = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d))+$")
_DURATION_TERM = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")
_UNIT_SECONDS = {
    "ns": Decimal("1e-9"), "us": Decimal("1e-6"), "µs": Decimal("1e-6"), "μs": Decimal("1e-6"),
    "ms": Decimal("1e-3"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600), "d": Decimal(86400),
}


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
    """Seconds in a Go duration ("1h30m", "500ms", "2d", "-1s", "0"), rounded half away from zero.

    Decimal arithmetic, because float-based parsers (durationpy) turn "499999999ns" into 0.5 s.
    """
    if text in ("0", "+0", "-0"):
        return 0
    if not _DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration such as 90s, 1h30m, 500ms or 2d")
    total = sum(Decimal(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_TERM.findall(text))
    if text.startswith("-"):
        total = -total
    # Half away from zero, unlike Python's round() which rounds half to even (2.5s -> 2).
    return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))
