"""The service beside its floor: one job through the service, and the same manifests POSTed straight to the
same API server by the same keep-alive client, at every concurrency level, in fresh projects.

Issue 13's three ratios come from here, for the seed job and for the maximal job (whose floor is the same
four POSTs):
- service CPU per submit ÷ (kube-apiserver + etcd CPU per create of the same manifests), over every level;
- service p50 ÷ floor p50 at concurrency 1;
- service throughput ÷ floor throughput at concurrency 8.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..submits import FloorRequests
from . import Ratio

if TYPE_CHECKING:
    from ..runner import Bench

# Issue 13's targets.
CPU_RATIO_MAX = 0.4
P50_RATIO_MAX = 1.35
P50_LEVEL = 1
THROUGHPUT_RATIO_MIN = 0.7
THROUGHPUT_LEVEL = 8


def _div(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


class FloorComparison:
    """Service vs floor for one job (``seed`` or ``maximal``)."""

    def __init__(self, job: str) -> None:
        self.name = job
        self.job = job
        self.title = f"{job} job: service vs floor (the same manifests POSTed straight to the API server)"

    def run(self, bench: Bench) -> dict[str, Any]:
        job, n = self.job, bench.plan.counts[self.job]
        gthread = bench.config.worker_class == "gthread"
        levels: dict[str, Any] = {}
        for level in bench.plan.levels:
            # The floor first, then the service, each in a project of its own on a quiet control plane.
            project = bench.project(f"{job}-c{level}-floor")
            floor_requests = FloorRequests(bench.api, bench.dry_run(job, project), n, bench.errors)
            bench.settle()
            floor = bench.measure(bench.api.endpoint, floor_requests.work(), n, level)
            project = bench.project(f"{job}-c{level}-service")
            work = bench.submits(job, project)
            bench.settle()
            service = bench.measure(bench.service.endpoint, work, n, level,
                                    sample_port=bench.service.port if gthread and level > 1 else None)
            ratio = {
                "per_second": _div(service["per_second"], floor["per_second"]),
                "p50": _div(service["p50_ms"], floor["p50_ms"]),
                "p99": _div(service["p99_ms"], floor["p99_ms"]),
                "p50_added_ms": round(service["p50_ms"] - floor["p50_ms"], 3),
            }
            levels[str(level)] = {"service": service, "floor": floor, "ratio": ratio}
            bad = {k: v for k, v in (("service", service), ("floor", floor)) if v["ok"] != v["requests"]}
            bench.say(
                f"  {job:<8} c={level:<3} service {service['per_second']:7.1f}/s p50 {service['p50_ms']:6.2f} ms"
                f" CPU {service['service_cpu_ms_per_submit']:5.2f} ms"
                f" | floor {floor['per_second']:7.1f}/s p50 {floor['p50_ms']:6.2f} ms"
                f" CPU {floor['apiserver_etcd_cpu_ms_per_submit']:5.2f} ms"
                f" | other load {max(service['other_busy_pct'], floor['other_busy_pct']):.0f} %"
                + (f" | connections per worker {service['connections_per_worker']}"
                   if service.get("connections_per_worker") else "")
                + "".join(f" | {side} ERRORS {v['errors']}" for side, v in bad.items()))
        bench.release()
        cpu = self._cpu(levels)
        if not bench.api.measured:  # an API server elsewhere: its CPU is not ours to read
            cpu["floor"] = cpu["apiserver_etcd_during_service"] = None
        ratios = self._ratios(levels, cpu, judged=bench.api.real_floor)
        return {"kind": "floor", "title": self.title, "job": job, "requests_per_level": n,
                "levels": levels, "cpu_ms_per_submit": cpu, "ratios": [r.to_dict() for r in ratios]}

    @staticmethod
    def _cpu(levels: dict[str, Any]) -> dict[str, float | None]:
        """CPU per submit over every level: the service's workers, the floor's API server + etcd."""
        return {
            "service": cpu_ms_per_request(levels, "service", lambda r: r["cpu_s"]["service"]),
            "floor": cpu_ms_per_request(levels, "floor", lambda r: r["apiserver_etcd_cpu_s"]),
            # For the reader: what the API server and etcd spent while the *service* submitted (the same
            # creates plus the service's own reads), and what the controllers spent reacting to the floor.
            "apiserver_etcd_during_service": cpu_ms_per_request(levels, "service", lambda r: r["apiserver_etcd_cpu_s"]),
            "controllers_during_floor": cpu_ms_per_request(levels, "floor", lambda r: r["cpu_s"]["controllers"]),
        }

    def _ratios(self, levels: dict[str, Any], cpu: dict[str, Any], judged: bool) -> list[Ratio]:
        ratios = [Ratio(self.name, "cpu", "service CPU per submit / (kube-apiserver + etcd CPU per create), all "
                        "levels", cpu["service"], cpu["floor"], "ms", "<=", CPU_RATIO_MAX, judged)]
        return ratios + latency_and_rate_ratios(self.name, "service", levels, judged)


def cpu_ms_per_request(levels: dict[str, Any], side: str, key: Callable[[dict[str, Any]], float]) -> float | None:
    """CPU ms per successful request of ``side`` over every level, ``key`` picking its CPU seconds from a run."""
    ok = sum(row[side]["ok"] for row in levels.values())
    seconds = sum(key(row[side]) for row in levels.values())
    return round(seconds * 1000 / ok, 3) if ok else None


def latency_and_rate_ratios(scenario: str, side: str, levels: dict[str, Any], judged: bool,
                            measure_prefix: str = "") -> list[Ratio]:
    """Issue 13's p50 ratio (at ``P50_LEVEL``) and throughput ratio (at ``THROUGHPUT_LEVEL``) of ``side``
    against the floor, from per-level rows holding both (``levels[str(level)][side]`` and ``[...]["floor"]``)."""
    ratios = []
    row = levels.get(str(P50_LEVEL))
    if row:
        ratios.append(Ratio(scenario, f"{measure_prefix}p50", f"{side} p50 / floor p50 at concurrency {P50_LEVEL}",
                            row[side]["p50_ms"], row["floor"]["p50_ms"], "ms", "<=", P50_RATIO_MAX, judged))
    row = levels.get(str(THROUGHPUT_LEVEL))
    if row:
        ratios.append(Ratio(scenario, f"{measure_prefix}throughput",
                            f"{side} throughput / floor throughput at concurrency {THROUGHPUT_LEVEL}",
                            row[side]["per_second"], row["floor"]["per_second"], "/s", ">=",
                            THROUGHPUT_RATIO_MIN, judged))
    return ratios
