"""``python -m bench``: the command line, the plan of a run, and the run from start to report.

See bench/README.md for the method; ``python -m bench --help`` for every option.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import report
from .admin import Admin
from .micro import micro_benchmark
from .probes import Probe, background_load
from .runner import Bench, Plan, run_config
from .scenarios import DEFAULT_SCENARIOS, SCENARIOS
from .servers import (DEFAULT_CONFIG, KIT, ROOT, ApiServer, Gunicorn, ServerConfig, connect_external,
                      raise_interrupt, start_fake, start_kit, stop_all)

RESULTS = ROOT / "bench" / "results"
MAX_REQUESTS = 100_000
# The kit's Service CIDR is a /24: about 250 ClusterIPs, and the API server answers 500 "failed to allocate a
# serviceIP: range is full" beyond. A maximal job holds one Service until its run's objects are deleted.
KIT_MAX_SERVICES = 240


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench",
                                 description="Benchmark runai-submit under gunicorn against a Kubernetes API server, "
                                             "beside the API server alone (the floor), in one run.")
    ap.add_argument("--quick", action="store_true", help="small counts, levels 1 and 8 (smoke check)")
    ap.add_argument("--soak", action="store_true",
                    help="soak mode only: 10,000 seed submits (--soak-total), RSS growth per worker")
    ap.add_argument("--api", choices=("auto", "kit", "fake"), default="auto",
                    help=f"API server to start: the control plane kit ({KIT}), the fake (tests/fake_apiserver.py), "
                         "or auto: the kit when present, else the fake (default)")
    ap.add_argument("--kubeconfig", help="use the cluster of this kubeconfig instead of starting an API server")
    ap.add_argument("--context", help="kubeconfig context (with --kubeconfig)")
    ap.add_argument("--project", default="team-a", help="with --kubeconfig: the project to submit to (default team-a)")
    ap.add_argument("--create", action="store_true",
                    help="with --kubeconfig: really create the jobs (deleted again by label after every run); "
                         "without it every submit is a server-side dry run so nothing is scheduled")
    ap.add_argument("--workload-kind", choices=("RunaiJob", "Job"), default="RunaiJob",
                    help="workload kind on the kit or the fake (default RunaiJob: see bench/README.md for why)")
    ap.add_argument("--scenarios", type=lambda s: [x for x in s.split(",") if x],
                    help=f"scenarios to run, of {', '.join(SCENARIOS)} (default {','.join(DEFAULT_SCENARIOS)})")
    ap.add_argument("--configs", type=lambda s: [ServerConfig.parse(x) for x in s.split(",") if x],
                    help="gunicorn configurations, e.g. 3xsync,2x4 (WxT = W gthread workers x T threads; "
                         "default: 3x2, the default of gunicorn.conf.py)")
    ap.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], help="concurrency levels (1,8,32)")
    ap.add_argument("--requests", type=int, help="submits per measured run for the seed job")
    ap.add_argument("--requests-maximal", type=int, help="submits per measured run for the maximal job")
    ap.add_argument("--soak-total", type=int, help="soak submits (10000)")
    ap.add_argument("--soak-concurrency", type=int, default=8)
    ap.add_argument("--client-close", action="store_true",
                    help="every request to the service says 'Connection: close' (a load balancer without keep-alive "
                         "to its backends); the floor keeps its connections")
    ap.add_argument("--validate", action="store_true",
                    help="with the fake: schema validation on (slow: its jsonschema cost dominates)")
    ap.add_argument("--gunicorn-conf", default=str(ROOT / "gunicorn.conf.py"), help="gunicorn config file")
    ap.add_argument("--no-micro", action="store_true", help="skip the in-process micro-benchmark")
    ap.add_argument("--output", help="results file stem under bench/results (default latest, quick, soak)")
    ap.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                    help="before starting, wait up to this long for the machine to be idle (< 15 %% busy)")
    ap.add_argument("--keep-latencies", action="store_true", help="keep every latency sample in the JSON")
    ap.add_argument("--keep-logs", action="store_true", help="keep the temporary folder with the server logs")
    args = ap.parse_args(argv)
    if args.create and not args.kubeconfig:
        ap.error("--create goes with --kubeconfig")
    if args.kubeconfig and args.api != "auto":
        ap.error("--api and --kubeconfig exclude each other")
    unknown = [s for s in args.scenarios or () if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    if args.api == "kit" and not (KIT / "start").is_file():
        ap.error(f"--api kit: no kit at {KIT}")
    for name, value in (("--requests", args.requests), ("--requests-maximal", args.requests_maximal),
                        ("--soak-total", args.soak_total)):
        if value is not None and not 1 <= value <= MAX_REQUESTS:
            ap.error(f"{name} must be between 1 and {MAX_REQUESTS} (the benchmark is bounded)")
    uses_kit = not args.kubeconfig and (args.api == "kit" or (args.api == "auto" and (KIT / "start").is_file()))
    if uses_kit and "maximal" in (args.scenarios or DEFAULT_SCENARIOS) and (args.requests_maximal or 0) > KIT_MAX_SERVICES:
        ap.error(f"--requests-maximal above {KIT_MAX_SERVICES}: the kit's Service CIDR (a /24) has no more ClusterIPs")
    return args


def make_plan(args: argparse.Namespace) -> Plan:
    quick = args.quick
    soak_total = args.soak_total or (1000 if quick else 10_000)
    return Plan(
        levels=args.levels or ([1, 8] if quick else [1, 8, 32]),
        counts={"seed": args.requests or (100 if quick else 800),
                "maximal": args.requests_maximal or (40 if quick else 200)},
        warmup=20 if quick else 100,
        configs=args.configs or [DEFAULT_CONFIG],
        scenarios=args.scenarios or list(DEFAULT_SCENARIOS),
        soak_total=soak_total,
        soak_warmup=max(1, min(1000, soak_total * 3 // 10) if quick else min(1000, soak_total // 2)),
        soak_concurrency=args.soak_concurrency,
        client_keepalive=not args.client_close,
    )


def start_api_server(args: argparse.Namespace, tmp: Path, say) -> ApiServer:
    if args.kubeconfig:
        return connect_external(args.kubeconfig, args.context, args.create)
    if args.api == "kit" or (args.api == "auto" and (KIT / "start").is_file()):
        return start_kit(tmp, say)
    if args.api == "auto":
        say(f"no control plane kit at {KIT}: falling back to the fake API server (no TLS, no etcd: the ratios "
            "below are not issue 13's; put ../shared/kube beside the clone, or pass --kubeconfig)")
    return start_fake(tmp, validate=args.validate)


def api_kind_text(api: ApiServer) -> str:
    if api.kind == "kit":
        return "a real kube-apiserver + etcd (the kit; TLS with client certificates)"
    if api.kind == "fake":
        return "the fake API server (not a real floor)"
    return "an external cluster" + (" (server-side dry runs: not a real floor)" if api.dry_run else "")


def measure_baseline(api: ApiServer, admin: Admin, say) -> dict[str, float]:
    """What the control plane burns when nobody asks it anything, subtracted from the floor's CPU."""
    if not api.measured:
        return {}
    probe = Probe(api.pids)
    deadline = time.monotonic() + 30
    while probe.control_plane_rate(0.5) > 0.15 and time.monotonic() < deadline:
        pass  # start-up work (CRD, controllers' first sync) still going on
    floor = probe.floor_rate(3.0)
    control_plane = probe.control_plane_rate(2.0)
    say(f"idle control plane: API server + etcd {floor * 100:.1f} % of a core (subtracted from the floor's CPU), "
        f"with the controllers {control_plane * 100:.1f} %")
    return {"floor": floor, "control_plane": control_plane}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT too: a background job ignores it
        signal.signal(sig, raise_interrupt)
    stem = args.output or ("soak" if args.soak else "quick" if args.quick else "latest")
    if args.soak and args.quick and not args.output:
        stem = "quick-soak"
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="runai-submit-bench-"))
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    started = time.time()
    results: dict[str, Any] = {}
    mode = "soak" if args.soak else "quick" if args.quick else "full"
    try:
        cpus = os.cpu_count() or 1
        say(f"runai-submit benchmark ({mode} run), commit {report.git_commit()}, Python {platform.python_version()}, "
            f"{cpus} CPU cores")
        say(f"NOTE: the control plane, the gunicorn workers and this load generator share the {cpus} cores of this "
            "machine; absolute times depend on the machine, the service/floor ratios measured in this one run are "
            "the point.")
        idle_load = background_load(1.0)
        waited = 0.0
        while idle_load > 15 and waited < args.wait_idle:
            if waited == 0:
                say(f"waiting up to {args.wait_idle:.0f} s for other processes to leave the CPUs "
                    f"({idle_load:.0f} % busy)...")
            idle_load = background_load(2.0)
            waited += 2.0
        if idle_load > 15:
            say(f"WARNING: {idle_load:.0f} % of the CPUs is busy before the benchmark starts (another build or "
                "test run?): the numbers will be noisy; the 'other' column shows it per run.")
        results["meta"] = {
            "background_load_pct": round(idle_load, 1), "mode": mode,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)), "commit": report.git_commit(),
            "python": platform.python_version(), "cpus": cpus, "platform": platform.platform(),
            "levels": plan.levels, "requests_per_level": plan.counts, "warmup": plan.warmup,
            "configs": [c.key for c in plan.configs], "scenarios": plan.scenarios, "user": "runai-submit-bench",
            "client_keepalive": plan.client_keepalive,
            "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        }
        if not args.no_micro and not args.soak:
            iterations, repeats = (300, 3) if args.quick else (2000, 7)
            say(f"\n== validate + render, in-process (median of {repeats} x {iterations}; µs per job) ==")
            micro = micro_benchmark(iterations, repeats)
            results["micro"] = micro
            say(f"{'job':<8} {'validate':>9} {'render':>8} {'total':>8} {'best':>8}")
            for job, m in micro.items():
                say(f"{job:<8} {m['validate_us']:9.1f} {m['render_us']:8.1f} {m['total_us']:8.1f} {m['total_min_us']:8.1f}")

        say("")
        api = start_api_server(args, tmp, say)
        admin = Admin(api)
        service_env: dict[str, str] = {}
        if args.workload_kind == "Job" and not args.kubeconfig:
            # batch/v1 Jobs: the job controller makes a pod per job and the scheduler tries to place it.
            service_env = {"RUNAI_SUBMIT_WORKLOAD_KIND": "Job", "RUNAI_SUBMIT_SCHEDULER_NAME": "default-scheduler"}
        elif api.kind == "kit":
            admin.install_runaijob_crd()
        say(f"API server: {api.description}")
        baseline = measure_baseline(api, admin, say)
        results["meta"].update({"api_server": api.description, "api_kind": api.kind,
                                "api_kind_text": api_kind_text(api), "real_floor": api.real_floor,
                                "workload_kind": "Job" if service_env else "RunaiJob (if served)",
                                "idle_baseline_cores": {k: round(v, 4) for k, v in baseline.items()}})
        conf = Path(args.gunicorn_conf)
        if args.soak:
            from .soak import soak

            server = Gunicorn(plan.configs[0], api, tmp, conf, env=service_env)
            server.wait_ready()
            try:
                bench = Bench(api, admin, server, plan, tmp, conf, say, baseline, args.project)
                results["soak"] = soak(bench)
                bench.finish()
            finally:
                server.stop()
            s = results["soak"]
            say(f"\nsoak: RSS growth per worker from {s['warmup']} to {s['total']} submits: "
                + ", ".join(f"pid {pid} {g:+.2f} %" for pid, g in s["rss_growth_pct"].items())
                + (f"; workers replaced: {s['workers_replaced']}" if s["workers_replaced"] else "")
                + f"; errors {s['errors']}")
        else:
            say(f"load: {plan.counts['seed']} seed / {plan.counts['maximal']} maximal submits per run, levels "
                f"{plan.levels}, one {'keep-alive ' if plan.client_keepalive else ''}connection per client thread"
                f"{'' if plan.client_keepalive else ' (Connection: close on every request to the service)'}; "
                "floor = the same manifests POSTed "
                "straight to the API server by the same client (4 sequential POSTs per maximal job); every run in a "
                "fresh project on a quiet control plane")
            scenarios = [SCENARIOS[name]() for name in plan.scenarios]
            results["configs"] = [run_config(config, api, admin, scenarios, plan, tmp, conf, say, baseline,
                                             project=args.project, service_env=service_env)
                                  for config in plan.configs]
            headline = next((c for c in results["configs"] if c["default"]), results["configs"][0])
            results["headline_config"] = headline["key"]
            results["ratios"] = [r for s in headline["scenarios"].values() for r in s.get("ratios", [])]
            report.print_tables(results, say)
            report.print_stack(results, say)
            report.print_ratios(results, say)
        targets = list(results.get("ratios", []))
        if results.get("soak") and (t := report.soak_target(results["soak"])):
            targets.append(t)
            say(f"\n{'PASS' if t['pass'] else 'FAIL'}  soak: {t['text']}: {t['value']} % (target {t['target']} %)")
        results["targets"] = targets
        results["meta"]["seconds"] = round(time.time() - started, 1)
        json_path = RESULTS / f"{stem}.json"
        report.write_json(results, json_path, args.keep_latencies)
        say(f"\nwrote {json_path.relative_to(ROOT)}")
        if results.get("configs"):
            png = RESULTS / f"{stem}.png"
            try:
                if report.plot(results, png):
                    say(f"wrote {png.relative_to(ROOT)}")
            except ImportError as exc:
                say(f"no plot ({exc}); pip install -r requirements-bench.txt")
        say(f"wrote {(RESULTS / f'{stem}.txt').relative_to(ROOT)} ({time.time() - started:.0f} s in all)")
        (RESULTS / f"{stem}.txt").write_text("\n".join(lines) + "\n")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything that was started", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"\nbenchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        args.keep_logs = True  # the server logs are what explains a failure
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        stop_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if not args.keep_logs:
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            print(f"logs: {tmp}", file=sys.stderr)
