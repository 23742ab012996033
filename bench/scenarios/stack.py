"""The stack's own floor: what gunicorn + Flask + werkzeug cost per request before the service does anything.

Issue 13 asks a seed submit to cost <= 0.4 x the API server's CPU per create, and fixes the stack (gunicorn, a
Flask blueprint, marshmallow, the ``kubernetes`` client). This scenario measures, in the same run and with the
same ``gunicorn.conf.py`` and layout as the service of this configuration, two minimal apps
(``bench/stackapp.py``) beside the seed job's floor:

- **stack**: a Flask blueprint answering ``POST /api/job`` from the JSON body, no cluster: the stack alone;
- **forward**: the same, POSTing the floor's exact seed manifest to the API server on one kept-alive TLS
  connection per worker thread (the floor's own client): the least any service on this stack can cost and add
  in latency;
- **floor**: the same manifest POSTed straight to the API server, as ``floor.py`` does.

Every level of the plan, the same client and counts as the seed scenario, each run in a project of its own on a
quiet control plane. The ratios are informational (no PASS/FAIL): they say how much of issue 13's budget the
fixed stack takes, and, when the seed scenario ran before in this run, what is left for the service's own work.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..loadgen import drive
from ..submits import FloorRequests
from . import Ratio
from .floor import CPU_RATIO_MAX, _div, cpu_ms_per_request, latency_and_rate_ratios

if TYPE_CHECKING:
    from ..runner import Bench
    from ..servers import Gunicorn

APP = "bench.stackapp:app"
SIDES = ("floor", "stack", "forward")


class StackFloor:
    """The seed job's floor, a bare Flask blueprint on gunicorn (stack), and the same forwarding the manifest."""

    name = "stack"
    title = ("the stack's own floor: a bare Flask blueprint on the service's gunicorn (stack), the same POSTing "
             "the seed manifest to the API server (forward), beside the floor")

    def run(self, bench: Bench) -> dict[str, Any]:
        n = bench.plan.counts["seed"]
        # The forward app's manifest: the seed job's, as the service renders it for a project of the scenario's
        # own; the app renames it per request and moves it into each request's project.
        template_project = bench.project("stack-template")
        dry = bench.dry_run("seed", template_project)
        manifest_file = bench.tmp / "stack-seed-manifest.json"
        manifest_file.write_text(json.dumps({"name": dry["name"], "project": template_project,
                                             "manifest": dry["manifests"][0]}))
        services: dict[str, Gunicorn] = {}
        try:
            services["stack"] = bench.start_service(env={"RUNAI_STACK_MODE": "stack"}, name="stack", app=APP)
            services["forward"] = bench.start_service(env={"RUNAI_STACK_MODE": "forward",
                                                           **self._forward_env(bench, manifest_file)},
                                                      name="forward", app=APP)
            for side, service in services.items():
                self._warm_up(bench, service, side)
            rows: dict[str, Any] = {}
            for level in bench.plan.levels:
                # The floor, then the two apps, each in a project of its own on a quiet control plane.
                project = bench.project(f"stack-c{level}-floor")
                floor_requests = FloorRequests(bench.api, bench.dry_run("seed", project), n, bench.errors)
                bench.settle()
                row = {"floor": bench.measure(bench.api.endpoint, floor_requests.work(), n, level)}
                for side, service in services.items():
                    project = bench.project(f"stack-c{level}-{side}")
                    work = bench.submits("seed", project, service=service)
                    bench.settle()
                    gthread = bench.config.worker_class == "gthread"
                    row[side] = bench.measure(service.endpoint, work, n, level, probe=bench.probe_for(service),
                                              sample_port=service.port if gthread and level > 1 else None)
                floor, stack, forward = (row[side] for side in SIDES)
                row["ratio"] = {
                    "forward_per_second": _div(forward["per_second"], floor["per_second"]),
                    "forward_p50": _div(forward["p50_ms"], floor["p50_ms"]),
                    "forward_p99": _div(forward["p99_ms"], floor["p99_ms"]),
                    "forward_p50_added_ms": round(forward["p50_ms"] - floor["p50_ms"], 3),
                }
                rows[str(level)] = row
                bad = {side: row[side] for side in SIDES if row[side]["ok"] != row[side]["requests"]}
                bench.say(
                    f"  stack    c={level:<3} floor {floor['per_second']:7.1f}/s p50 {floor['p50_ms']:6.2f} ms"
                    f" CPU {floor['apiserver_etcd_cpu_ms_per_submit']:5.2f} ms"
                    f" | stack {stack['per_second']:7.1f}/s p50 {stack['p50_ms']:6.2f} ms"
                    f" CPU {stack['service_cpu_ms_per_submit']:5.2f} ms"
                    f" | forward {forward['per_second']:7.1f}/s p50 {forward['p50_ms']:6.2f} ms"
                    f" CPU {forward['service_cpu_ms_per_submit']:5.2f} ms"
                    f" | other load {max(row[side]['other_busy_pct'] for side in SIDES):.0f} %"
                    + "".join(f" | {side} ERRORS {v['errors']}" for side, v in bad.items()))
            bench.release()
        finally:
            for service in services.values():
                service.stop()
        cpu = self._cpu(rows)
        if not bench.api.measured:  # an API server elsewhere: its CPU is not ours to read
            cpu["floor"] = cpu["apiserver_etcd_during_forward"] = None
        informational = self._ratios(rows, cpu)
        budget = self._budget(bench.results.get("seed"), cpu)  # printed by report.print_stack
        return {"kind": "stack", "title": self.title, "job": "seed", "requests_per_level": n, "levels": rows,
                "cpu_ms_per_submit": cpu, "informational": [r.to_dict() for r in informational],
                "budget": budget, "ratios": []}  # no targets of its own: nothing here is PASS/FAIL

    # --- the forwarding app's settings -------------------------------------------------------------

    @staticmethod
    def _forward_env(bench: Bench, manifest_file) -> dict[str, str]:
        """Where and how the forward app reaches the API server: the kubeconfig's CA and client certificate, as
        the service's ``kubernetes`` client reads them (its current context, like the service)."""
        import kubernetes.client
        import kubernetes.config

        cfg = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=bench.api.kubeconfig, client_configuration=cfg)
        endpoint = bench.api.endpoint
        return {
            "RUNAI_STACK_MANIFEST": str(manifest_file),
            "RUNAI_STACK_HOST": endpoint.host, "RUNAI_STACK_PORT": str(endpoint.port),
            "RUNAI_STACK_SCHEME": "https" if endpoint.ssl_context is not None else "http",
            # Inline certificate data in the kubeconfig (the kit's) is written to temporary files by the client;
            # they live as long as this process, i.e. longer than the forward app.
            "RUNAI_STACK_CA": cfg.ssl_ca_cert or "", "RUNAI_STACK_CERT": cfg.cert_file or "",
            "RUNAI_STACK_KEY": cfg.key_file or "", "RUNAI_STACK_VERIFY": "1" if cfg.verify_ssl else "0",
            "RUNAI_STACK_AUTHORIZATION": bench.api.auth.get("Authorization", ""),
            "RUNAI_STACK_QUERY": "?dryRun=All" if bench.api.dry_run else "",
        }

    @staticmethod
    def _warm_up(bench: Bench, service: Gunicorn, side: str) -> None:
        """Seed submits on fresh connections at concurrency 8, so every worker has imported, built its routes
        and (forward) opened its connections to the API server, in a project of its own."""
        project = bench.project(f"stack-warmup-{side}")
        warm = drive(service.endpoint, bench.submits("seed", project, service=service), bench.plan.warmup, 8,
                     bench.errors)
        if warm.ok != bench.plan.warmup:
            raise RuntimeError(f"warm-up of the {side} app failed: {warm.errors} {bench.errors}")

    # --- figures -----------------------------------------------------------------------------------

    @staticmethod
    def _cpu(rows: dict[str, Any]) -> dict[str, float | None]:
        """CPU per request over every level: the apps' workers, the floor's API server + etcd."""
        return {
            "stack": cpu_ms_per_request(rows, "stack", lambda r: r["cpu_s"]["service"]),
            "forward": cpu_ms_per_request(rows, "forward", lambda r: r["cpu_s"]["service"]),
            "floor": cpu_ms_per_request(rows, "floor", lambda r: r["apiserver_etcd_cpu_s"]),
            # For the reader: the API server and etcd while the forward app created the same objects.
            "apiserver_etcd_during_forward": cpu_ms_per_request(rows, "forward", lambda r: r["apiserver_etcd_cpu_s"]),
        }

    def _ratios(self, rows: dict[str, Any], cpu: dict[str, Any]) -> list[Ratio]:
        """Issue 13's three ratios for the two minimal apps: the lowest any service on this stack can reach.
        Never judged; the target shown is the one the service is held to."""
        ratios = [
            Ratio(self.name, "stack_cpu", "stack CPU per request / (kube-apiserver + etcd CPU per create), all levels",
                  cpu["stack"], cpu["floor"], "ms", "<=", CPU_RATIO_MAX, False),
            Ratio(self.name, "forward_cpu", "forward CPU per request / (kube-apiserver + etcd CPU per create), all "
                  "levels", cpu["forward"], cpu["floor"], "ms", "<=", CPU_RATIO_MAX, False),
        ]
        return ratios + latency_and_rate_ratios(self.name, "forward", rows, False, measure_prefix="forward_")

    @staticmethod
    def _budget(seed: dict[str, Any] | None, cpu: dict[str, Any]) -> dict[str, Any] | None:
        """What issue 13's CPU target leaves for the service's own work once the stack has taken its share, from
        the seed scenario of this run (its floor is the one the target is judged against)."""
        seed_cpu = (seed or {}).get("cpu_ms_per_submit") or {}
        service, floor, stack, forward = seed_cpu.get("service"), seed_cpu.get("floor"), cpu["stack"], cpu["forward"]
        if service is None or not floor or stack is None:
            return None
        allowed = CPU_RATIO_MAX * floor
        budget = {
            "seed_floor_cpu_ms": floor, "seed_service_cpu_ms": service, "allowed_cpu_ms": round(allowed, 3),
            "stack_cpu_ms": stack, "forward_cpu_ms": forward,
            "left_after_stack_ms": round(allowed - stack, 3),
            "service_own_ms": round(service - stack, 3),
            "stack_share_of_allowed": round(stack / allowed, 3),
            "left_after_forward_ms": None if forward is None else round(allowed - forward, 3),
            "service_beyond_forward_ms": None if forward is None else round(service - forward, 3),
        }
        budget["text"] = (
            f"issue 13's CPU target ({CPU_RATIO_MAX} x the seed floor's {floor:.2f} ms = {allowed:.2f} ms) leaves "
            f"{allowed - stack:.2f} ms per submit for everything the service does itself once the stack has taken "
            f"{stack:.2f} ms ({100 * stack / allowed:.0f} % of it); the service spends {service - stack:.2f} ms "
            f"beyond the stack ({service:.2f} ms in all)"
            + ("" if forward is None else
               f"; beyond a bare forward ({forward:.2f} ms) it leaves {allowed - forward:.2f} ms, the service "
               f"spends {service - forward:.2f} ms"))
        return budget
