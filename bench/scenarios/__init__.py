"""Scenarios: what one benchmark run measures against each gunicorn configuration.

A scenario is an object with a ``name``, a ``title`` and ``run(bench) -> dict``. ``bench`` (``runner.Bench``)
gives it the API server, the service, a fresh project per measured run, ``settle()`` and ``measure()``. The
dict it returns is stored under ``scenarios.<name>`` in the results JSON; its ``ratios`` (``Ratio.to_dict()``)
are printed with PASS/FAIL against their targets, and a ``levels`` table (service beside floor per
concurrency level) is printed and plotted when present.

To add one (say, a seed submit in token auth mode beside header mode, or 200 jobs as one batch beside 200
single submits): write a module here with a class like ``floor.FloorComparison``, add it to ``SCENARIOS``
below, and it runs with ``--scenarios NAME`` (add it to ``DEFAULT_SCENARIOS`` to run it in every ``make bench``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..runner import Bench


class Scenario(Protocol):
    name: str
    title: str

    def run(self, bench: Bench) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Ratio:
    """One measured ratio (service ÷ reference) and its target."""

    scenario: str
    measure: str          # short id: cpu, p50, throughput, ...
    text: str             # what is divided by what, for the report
    service: float | None
    reference: float | None
    unit: str             # of ``service`` and ``reference``
    op: str               # "<=" or ">=": how the ratio must compare with ``limit``
    limit: float
    judged: bool          # False where the reference is no real floor (the fake, dry runs): no PASS/FAIL

    @property
    def value(self) -> float | None:
        if self.service is None or not self.reference:
            return None
        return self.service / self.reference

    @property
    def passed(self) -> bool | None:
        value = self.value
        if value is None or not self.judged:
            return None
        return value <= self.limit if self.op == "<=" else value >= self.limit

    def to_dict(self) -> dict[str, Any]:
        value = self.value
        return {
            "id": f"{self.scenario}.{self.measure}", "scenario": self.scenario, "measure": self.measure,
            "text": self.text, "service": None if self.service is None else round(self.service, 3),
            "reference": None if self.reference is None else round(self.reference, 3), "unit": self.unit,
            "value": None if value is None else round(value, 3), "target": f"{self.op} {self.limit}",
            "op": self.op, "limit": self.limit, "pass": self.passed,
        }


def _floor(job: str) -> Callable[[], Scenario]:
    def make() -> Scenario:
        from .floor import FloorComparison

        return FloorComparison(job)
    return make


def _batch() -> Scenario:
    from .batch import BatchComparison

    return BatchComparison()


def _stack() -> Scenario:
    from .stack import StackFloor

    return StackFloor()


def _auth() -> Scenario:
    from .auth import TokenVsHeader

    return TokenVsHeader()


#: Every scenario by name (``--scenarios``), and those a plain ``make bench`` runs, in order.
SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "seed": _floor("seed"),
    "maximal": _floor("maximal"),
    "stack": _stack,  # issue 13: what gunicorn + Flask alone cost, and a bare forward of the seed manifest
    "batch": _batch,
    "auth": _auth,  # issue 9: token mode (cached review) beside header mode
}
DEFAULT_SCENARIOS = ("seed", "maximal", "stack", "batch", "auth")
