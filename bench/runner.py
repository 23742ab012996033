"""One gunicorn configuration, end to end: start the service, warm it up, run every scenario, stop it.

``Bench`` is what a scenario gets to work with: the API server (and its administrator), the service of this
configuration, a fresh project per measured run, ``settle`` (wait for a quiet control plane) and ``measure``
(drive a fixed number of requests and read every process group's CPU before and after).
"""
from __future__ import annotations

import random
import string
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .admin import Admin
from .jobs import BENCH_SELECTOR, EXPECTED_KINDS, JOBS, MANAGED_SELECTOR, job_in
from .loadgen import Endpoint, Work, drive
from .probes import Probe
from .servers import ApiServer, Gunicorn, ServerConfig
from .submits import dry_run_manifests, service_work

if TYPE_CHECKING:
    from .scenarios import Scenario

Say = Callable[[str], None]


@dataclass
class Plan:
    levels: list[int]
    counts: dict[str, int]          # submits per measured run, per job
    warmup: int
    configs: list[ServerConfig]
    scenarios: list[str]
    soak_total: int = 10_000
    soak_warmup: int = 1000
    soak_concurrency: int = 8
    settle_seconds: float = 30.0    # the longest wait for a quiet control plane before a measured run
    client_keepalive: bool = True   # False: every request to the service says Connection: close


class Bench:
    """The collaborators of the scenarios for one gunicorn configuration (see the module docstring)."""

    #: A run tag in every project name: a run's namespaces are recognisable, and two runs never share one.
    tag = "".join(random.choice(string.ascii_lowercase) for _ in range(3))

    def __init__(self, api: ApiServer, admin: Admin, service: Gunicorn, plan: Plan, tmp: Path, conf: Path,
                 say: Say, baseline: dict[str, float], project: str = "team-a") -> None:
        self.api = api
        self.admin = admin
        self.service = service
        self.config = service.config
        self.plan = plan
        self.tmp = tmp
        self.conf = conf
        self.say = say
        self.baseline = baseline          # idle cores of the floor (apiserver + etcd) and of the whole control plane
        self.fixed_project = project      # an external cluster: the one project the user named
        self.errors: dict[str, str] = {}  # one sample message per error label, for the report
        self.probe = Probe(api.pids, service.pid)
        self.housekeeping = {"deletion_s": 0.0, "settle_s": 0.0}  # time between measured runs
        self._namespaces: list[str] = []
        self._released: set[str] = set()
        #: The results of the scenarios that already ran against this configuration, by name (the ``stack``
        #: scenario reads the ``seed`` scenario's CPU figures from here).
        self.results: dict[str, Any] = {}

    # --- projects ----------------------------------------------------------------------------------

    def project(self, label: str) -> str:
        """A project of its own for one measured run, after removing what the previous run created, so that no
        run inherits another's objects or its clean-up. On an external cluster the one given project is reused.
        """
        self.release()
        if not self.api.owns_namespaces:
            return self.fixed_project
        # The configuration's key too: with --configs A,B the second one's warm-up must not meet the first's
        # project, whose namespace is still being deleted.
        project = f"b{self.tag}-{self.config.key}-{label}"
        namespace = f"runai-{project}"  # the service's default convention; labelled too
        self.admin.create_namespace(namespace, {"runai/queue": project, "runai-submit-bench": "true"})
        self._namespaces.append(namespace)
        return project

    def release(self) -> None:
        """Delete what the last measured run created and wait until it is gone (never timed).

        The (empty) namespaces stay until ``finish``: deleting a namespace keeps the namespace controller busy
        for seconds, which would only make the run longer and the control plane noisier.
        """
        if not self.api.owns_namespaces and self._namespaces == []:
            # An external cluster: the namespace the service maps the given project to.
            self._namespaces.append(dry_run_manifests(self.service.endpoint,
                                                      job_in("seed", self.fixed_project))["namespace"])
        if self._namespaces and self._namespaces[-1] not in self._released:
            started = time.monotonic()
            # In a project of its own, everything the service made goes (submits in token mode carry the
            # caller's user label, not the bench's); in someone's cluster, only what carries the bench's user.
            selector = MANAGED_SELECTOR if self.api.owns_namespaces else BENCH_SELECTOR
            self.admin.delete_bench_objects(self._namespaces[-1], selector=selector)
            self.housekeeping["deletion_s"] += time.monotonic() - started
            if self.api.owns_namespaces:
                self._released.add(self._namespaces[-1])

    def finish(self) -> None:
        """Remove everything: the last run's objects, then every namespace made for this configuration."""
        self.release()
        if self.api.owns_namespaces:
            for namespace in self._namespaces:
                self.admin.delete_namespace(namespace, wait=False)

    # --- measuring ---------------------------------------------------------------------------------

    def settle(self) -> float:
        """Wait until the control plane is idle again (deletions, garbage collection, controllers catching up),
        so that its CPU in the next run is that run's. Returns the cores it used last."""
        if not self.api.measured:
            return 0.0
        limit = max(0.10, 2.0 * self.baseline.get("control_plane", 0.0))
        started = time.monotonic()
        quiet, rate = 0, 0.0
        while quiet < 2:
            rate = self.probe.control_plane_rate(0.5)
            quiet = quiet + 1 if rate <= limit else 0
            if time.monotonic() - started > self.plan.settle_seconds:
                self.say(f"  (the control plane did not calm down within {self.plan.settle_seconds:.0f} s: "
                         f"{rate:.2f} cores busy; measuring anyway)")
                break
        self.housekeeping["settle_s"] += time.monotonic() - started
        return rate

    def measure(self, target: Endpoint, work: Work, total: int, concurrency: int, *,
                probe: Probe | None = None, sample_port: int | None = None) -> dict[str, Any]:
        """``total`` requests of ``work`` on ``concurrency`` connections to ``target``, and the CPU of every
        process group over the run (per successful request, in ms)."""
        probe = probe or self.probe
        conns: list[int] = []
        sampler = None
        if sample_port:  # how the kept-alive connections spread over the workers, a moment into the run
            sampler = threading.Timer(0.2, lambda: conns.extend(probe.connections(sample_port)))
            sampler.daemon = True
        before = probe.snapshot()
        if sampler:
            sampler.start()
        result = drive(target, work, total, concurrency, self.errors)
        after = probe.snapshot()
        if sampler:
            sampler.cancel()
            sampler.join(1)
        cpu = Probe.delta(before, after)
        summary = result.summary()
        ok = max(1, result.ok)
        # The API server's and etcd's CPU for this run's requests: less what they burn when idle (watch
        # bookkeeping, leases, compaction), measured before the first run. For the floor, this is the floor.
        apiserver_etcd_s = max(0.0, cpu["apiserver"] + cpu["etcd"] - self.baseline.get("floor", 0.0) * cpu["seconds"])
        summary.update({
            "concurrency": concurrency,
            "service_cpu_ms_per_submit": round(cpu["service"] * 1000 / ok, 3),
            "apiserver_etcd_cpu_ms_per_submit": round(apiserver_etcd_s * 1000 / ok, 3),
            "apiserver_cpu_ms_per_submit": round(cpu["apiserver"] * 1000 / ok, 3),
            "etcd_cpu_ms_per_submit": round(cpu["etcd"] * 1000 / ok, 3),
            "controllers_cpu_ms_per_submit": round(cpu["controllers"] * 1000 / ok, 3),
            "loadgen_cpu_ms_per_submit": round(cpu["loadgen"] * 1000 / ok, 3),
            "machine_busy_pct": round(cpu["machine_busy_pct"], 1),
            "other_busy_pct": round(cpu["other_busy_pct"], 1),
            "cpu_s": {k: round(cpu[k], 4) for k in ("service", "master", "apiserver", "etcd", "controllers",
                                                     "loadgen", "seconds")},
            "apiserver_etcd_cpu_s": round(apiserver_etcd_s, 4),
        })
        if sample_port:
            summary["connections_per_worker"] = list(conns)
        summary["_latencies_ms"] = [round(x * 1000, 4) for x in result.latencies]
        return summary

    def probe_for(self, service: Gunicorn) -> Probe:
        """A probe whose ``service`` group is the workers of ``service`` (a second instance of a scenario)."""
        return Probe(self.api.pids, service.pid)

    # --- the service -------------------------------------------------------------------------------

    def dry_run(self, job: str, project: str) -> dict:
        """The service's dry-run answer for ``job`` in ``project``, checked to have the expected objects."""
        answer = dry_run_manifests(self.service.endpoint, job_in(job, project))
        kinds = [m["kind"] for m in answer["manifests"]]
        if len(kinds) != EXPECTED_KINDS[job]:
            raise RuntimeError(f"the {job} job renders {kinds}, expected {EXPECTED_KINDS[job]} objects")
        return answer

    def submits(self, job: str, project: str, *, service: Gunicorn | None = None,
                headers: dict[str, str] | None = None) -> Work:
        """Submits of ``job`` into ``project`` through the service (this configuration's, or ``service``)."""
        service = service or self.service
        if not self.plan.client_keepalive:  # --client-close: a new connection per request, as some balancers do
            headers = {**(headers or {}), "Connection": "close"}
        return service_work(service.endpoint, job_in(job, project), self.api.dry_run, self.errors, headers)

    def start_service(self, *, env: dict[str, str], name: str, app: str = "wsgi:app") -> Gunicorn:
        """A second service instance of this configuration with other settings (e.g. another auth mode), or
        another WSGI ``app`` served the same way, ready (not warmed up); the scenario stops it when done."""
        server = Gunicorn(self.config, self.api, self.tmp, self.conf, env=env, name=name, app=app)
        server.wait_ready()
        return server

    def warm_up(self, service: Gunicorn | None = None, headers: dict[str, str] | None = None, *,
                label: str = "warmup") -> None:
        """Submits of every job on fresh connections, so that every worker has discovered the workload kind,
        cached the namespaces and opened its pool to the API server (in a project of its own: ``label``)."""
        service = service or self.service
        project = self.project(label)
        for job in JOBS:
            self.dry_run(job, project)
            warm = drive(service.endpoint, self.submits(job, project, service=service, headers=headers),
                         self.plan.warmup, 8, self.errors)
            if warm.ok != self.plan.warmup:
                raise RuntimeError(f"warm-up of the {job} job failed: {warm.errors} {self.errors}")
        self.release()


def run_config(config: ServerConfig, api: ApiServer, admin: Admin, scenarios: Sequence[Scenario], plan: Plan,
               tmp: Path, conf: Path, say: Say, baseline: dict[str, float], *, project: str = "team-a",
               service_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Every scenario against one gunicorn configuration (a fresh service, the run's one API server)."""
    say(f"\n--- gunicorn {config.label}{' (default of gunicorn.conf.py)' if config.is_default else ''} ---")
    server = Gunicorn(config, api, tmp, conf, env=service_env)
    bench = None
    try:
        server.wait_ready()
        bench = Bench(api, admin, server, plan, tmp, conf, say, baseline, project)
        bench.warm_up()
        results = bench.results
        for scenario in scenarios:
            results[scenario.name] = scenario.run(bench)
        bench.finish()
        say(f"  (between the measured runs: {bench.housekeeping['deletion_s']:.0f} s deleting what they created, "
            f"{bench.housekeeping['settle_s']:.0f} s waiting for a quiet control plane)")
        return {
            "key": config.key, "label": config.label, "workers": config.workers, "threads": config.threads,
            "worker_class": config.worker_class, "default": config.is_default,
            "scenarios": results, "sample_errors": bench.errors, "service_log_lines": server.log_lines(),
            "housekeeping_s": {k: round(v, 1) for k, v in bench.housekeeping.items()},
        }
    except Exception:
        say(f"gunicorn log (last lines):\n{server.managed.log_tail()}")
        if bench is not None and not api.owns_namespaces:  # someone's cluster: leave nothing behind
            try:
                bench.finish()
            except Exception as exc:  # the original error matters more
                say(f"could not remove the benchmark's objects: {exc}")
        raise
    finally:
        server.stop()
