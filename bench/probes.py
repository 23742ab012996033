"""CPU and memory probes from /proc (through psutil): utime + stime of the processes that take part.

Groups measured in every run:
- ``service``: the gunicorn workers (children of the master), the cost of the service itself;
- ``master``: the gunicorn master (nearly idle: it only supervises);
- ``apiserver`` and ``etcd``: the floor's own cost (with the fake, the fake's process is ``apiserver``);
- ``controllers``: kube-controller-manager and kube-scheduler, i.e. how much the control plane *reacts*
  to what was created (no part of the floor, but it shares the cores and it shows pollution);
- ``loadgen``: this process.
The machine's busy time minus all of those is ``other``: sessions and builds that are not the benchmark.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import psutil

CONTROL_PLANE_GROUPS = ("apiserver", "etcd", "controllers")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, over all cores."""
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    busy = t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0) \
        + getattr(t, "steal", 0.0)
    return busy, busy + idle


def background_load(seconds: float = 1.0) -> float:
    """% of the machine's CPU in use over ``seconds`` (before the benchmark starts anything)."""
    b0, t0 = machine_cpu()
    time.sleep(seconds)
    b1, t1 = machine_cpu()
    return 100.0 * (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def _processes(pids: Iterable[int]) -> list[psutil.Process]:
    out = []
    for pid in pids:
        try:
            out.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    return out


class Probe:
    """CPU seconds of every group (see the module docstring) and of the whole machine, as snapshots."""

    def __init__(self, control_plane: dict[str, list[int]], service_master: int | None = None) -> None:
        self.groups = {name: _processes(control_plane.get(name, ())) for name in CONTROL_PLANE_GROUPS}
        self.master = psutil.Process(service_master) if service_master else None
        self.me = psutil.Process()

    def workers(self) -> list[psutil.Process]:
        if self.master is None:
            return []
        try:
            return self.master.children()
        except psutil.NoSuchProcess:
            return []

    def _sum(self, procs: Iterable[psutil.Process]) -> float:
        total = 0.0
        for proc in procs:
            try:
                total += _cpu(proc)
            except psutil.NoSuchProcess:
                pass
        return total

    def snapshot(self) -> dict[str, Any]:
        workers: dict[int, float] = {}
        for w in self.workers():
            try:
                workers[w.pid] = _cpu(w)
            except psutil.NoSuchProcess:
                pass
        busy, total = machine_cpu()
        snap = {name: self._sum(procs) for name, procs in self.groups.items()}
        snap.update({
            "workers": workers,
            "master": self._sum([self.master]) if self.master else 0.0,
            "loadgen": _cpu(self.me),
            "busy": busy,
            "total": total,
            "clock": time.monotonic(),
        })
        return snap

    @staticmethod
    def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
        """CPU seconds per group between two snapshots, and the machine's busy shares in %."""
        # A worker that appeared meanwhile (a replaced one) counts from zero; one that died is lost.
        out = {"service": sum(t - before["workers"].get(pid, 0.0) for pid, t in after["workers"].items())}
        for name in ("master", "loadgen", *CONTROL_PLANE_GROUPS):
            out[name] = after[name] - before[name]
        total = after["total"] - before["total"]
        busy = after["busy"] - before["busy"]
        ours = sum(out.values())
        out["seconds"] = after["clock"] - before["clock"]
        out["machine_busy_pct"] = 100.0 * busy / total if total > 0 else 0.0
        # CPU used by processes that are not part of the benchmark (another build, a test run...).
        out["other_busy_pct"] = max(0.0, 100.0 * (busy - ours) / total) if total > 0 else 0.0
        return out

    def control_plane_rate(self, seconds: float) -> float:
        """Cores the control plane (API server, etcd, controllers) uses over the next ``seconds``."""
        before = {name: self._sum(procs) for name, procs in self.groups.items()}
        time.sleep(seconds)
        return sum(self._sum(procs) - before[name] for name, procs in self.groups.items()) / seconds

    def floor_rate(self, seconds: float) -> float:
        """Cores the API server and etcd use over the next ``seconds`` (the idle baseline of the floor)."""
        names = ("apiserver", "etcd")
        before = {name: self._sum(self.groups[name]) for name in names}
        time.sleep(seconds)
        return sum(self._sum(self.groups[name]) - before[name] for name in names) / seconds

    def connections(self, port: int) -> list[int]:
        """Established client connections held by each worker on ``port`` (gthread keeps them alive)."""
        out = []
        for w in self.workers():
            try:
                out.append(sum(1 for c in w.net_connections("tcp")
                               if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED))
            except psutil.NoSuchProcess:
                pass
        return sorted(out, reverse=True)

    def rss(self) -> dict[int, int]:
        out = {}
        for w in self.workers():
            try:
                out[w.pid] = w.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return out
