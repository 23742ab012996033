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
# Kubernetes' quantity grammar: a number, then at most one of a decimal exponent or an SI suffix, never both
# (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/). The number must have a
# digit other than 0: every quantity this service takes (memory, size) must be more than zero. Written for
# both Python and ECMA-262 (no \d: Python's matches every Unicode digit), applied with fullmatch.
_POSITIVE_NUMBER = r"[+]?(?:[0-9]*[1-9][0-9]*(?:\.[0-9]*)?|[0-9]*\.[0-9]*[1-9][0-9]*)"
_SUFFIX = r"(?:[eE][-+]?[0-9]{1,2}|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?"
_SUFFIX_WITH_BYTES = r"(?:[eE][-+]?[0-9]{1,2}|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|KB|MB|GB|TB|PB|EB)?"
POSITIVE_QUANTITY = re.compile(f"^{_POSITIVE_NUMBER}{_SUFFIX}$")
# What the API accepts: the above, or with the seed page's "GB"-style suffixes.
POSITIVE_QUANTITY_INPUT = re.compile(f"^{_POSITIVE_NUMBER}{_SUFFIX_WITH_BYTES}$")
# A well-formed quantity of zero ("0", "0.0Gi"): refused with its own message.
ZERO_QUANTITY = re.compile(f"^[+-]?(?:0+(?:\\.0*)?|\\.0+){_SUFFIX_WITH_BYTES}$")
# Go's time.ParseDuration syntax plus "d" for days (not weeks, months or years: ambiguous), without a sign:
# every duration this service takes is 0 or more.
_DURATION_UNITS = "ns|us|µs|μs|ms|s|m|h|d"
DURATION_INPUT = re.compile(f"^[+]?(?:0|(?:(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:{_DURATION_UNITS}))+)$")
_DURATION_TERM = re.compile(f"([0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)({_DURATION_UNITS})")
_UNIT_SECONDS = {
    "ns": Decimal("1e-9"), "us": Decimal("1e-6"), "µs": Decimal("1e-6"), "μs": Decimal("1e-6"),
    "ms": Decimal("1e-3"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600), "d": Decimal(86400),
}


def normalize_quantity(text: str) -> str:
    """Return a positive quantity in Kubernetes syntax ("3GB" -> "3G"), or raise ValueError."""
    if not POSITIVE_QUANTITY_INPUT.fullmatch(text):
        raise ValueError(f"{text!r} is not a Kubernetes quantity more than zero")
    for suffix, canonical in _DECIMAL_BYTE_SUFFIXES.items():
        if text.endswith(suffix):
            text = text[: -len(suffix)] + canonical
            break
    parse_quantity(text)  # the client's own parser is the judge of what it can compare
    return text


def quantity_value(text: str) -> Decimal:
    """The numeric value of a normalised quantity, for comparisons such as limit >= request."""
    return parse_quantity(text)


def duration_seconds(text: str) -> int:
    """Seconds in a Go duration ("1h30m", "500ms", "2d", "0"), rounded half away from zero.

    Decimal arithmetic, because float-based parsers (durationpy) turn "499999999ns" into 0.5 s.
    """
    if not DURATION_INPUT.fullmatch(text):
        raise ValueError(f"{text!r} is not a duration such as 90s, 1h30m, 500ms or 2d")
    total = sum((Decimal(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_TERM.findall(text)),
                Decimal(0))
    # Half away from zero, unlike Python's round() which rounds half to even (2.5s -> 2).
    # to_integral_value, not quantize: quantize raises past 28 digits ("99999999999999999999999999999d").
    return int(total.to_integral_value(rounding=ROUND_HALF_UP))
