"""``python -m bench.profile``: where one gunicorn worker's CPU goes per submit, against a running control plane.

The benchmark (``python -m bench``) says *how much* the service costs beside its floor; this says *where*, so
that a change can be A/B-tested on a busy machine without trusting latencies:

- ``--tool cpu`` (default): utime + stime of the worker(s) per submit, median over ``--rounds``;
- ``--tool callgrind``: the worker runs under ``valgrind --tool=callgrind``; instructions per submit, counted
  only while the measured submits run (instrumentation switched on and off with ``callgrind_control -i``). Repeatable to a fraction of a percent
  whatever else the machine does: the instrument for A/B comparisons;
- ``--tool pyspy``: ``py-spy record --gil`` of the worker during the measured submits (samples only while it
  runs Python, so waits on a busy machine do not count; raw stacks), summarised by
  layer (gunicorn, werkzeug, flask, marshmallow, the kubernetes client, urllib3, ssl/socket, logging, ...);
- ``--tool cprofile``: ``cProfile`` with a CPU clock (``time.process_time``) inside the worker, switched on and
  off around the measured submits by SIGUSR2 (``bench/profile_gunicorn.py``); the top functions by own time.

It starts nothing but the service: give it a kit's kubeconfig (``../shared/kube/start DIR`` writes
``DIR/kubeconfig``). It installs the bench's RunaiJob CRD there, makes one project namespace, and deletes what
it created after every round.

    ../shared/kube/start /tmp/kube
    python -m bench.profile --kubeconfig /tmp/kube/kubeconfig --tool callgrind --requests 200
"""
from __future__ import annotations

import argparse
import collections
import os
import random
import re
import signal
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from .admin import Admin
from .jobs import JOBS, job_in
from .loadgen import drive
from .servers import (ROOT, ApiServer, Gunicorn, Managed, ServerConfig, client_endpoint, kit_pids, raise_interrupt,
                      stop_all)
from .submits import dry_run_manifests, service_work

PROFILE_CONF = Path(__file__).resolve().parent / "profile_gunicorn.py"

#: Layers a sample is charged to: the innermost frame whose file path contains one of these markers.
LAYERS = (
    ("runai_submit/api/observability", "our after/before-request hooks"),
    ("runai_submit/cluster", "runai_submit.cluster"),
    ("runai_submit/schemas", "runai_submit.schemas (marshmallow rules)"),
    ("runai_submit", "runai_submit (other)"),
    ("pythonjsonlogger", "logging (JSON formatter)"),
    ("prometheus_client", "prometheus_client"),
    ("marshmallow", "marshmallow"),
    ("kubernetes", "kubernetes client"),
    ("urllib3", "urllib3"),
    ("flask", "flask"),
    ("werkzeug", "werkzeug"),
    ("gunicorn", "gunicorn"),
    ("/logging/", "logging (stdlib)"),
    ("/http/client", "http.client"),
    ("/ssl.py", "ssl/socket"),
    ("/socket.py", "ssl/socket"),
    ("/json/", "json (stdlib)"),
)


def kit_api(kubeconfig: str) -> ApiServer:
    endpoint, auth, host = client_endpoint(kubeconfig)
    pids = kit_pids(Path(kubeconfig).resolve().parent)
    return ApiServer("kit", endpoint, kubeconfig, auth, pids, f"kit at {host}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubeconfig", required=True, help="kubeconfig of a running control plane (a kit's)")
    ap.add_argument("--tool", choices=("cpu", "callgrind", "pyspy", "cprofile"), default="cpu")
    ap.add_argument("--job", choices=tuple(JOBS), default="seed")
    ap.add_argument("--config", type=ServerConfig.parse, default=ServerConfig(1, 1, "sync"),
                    help="gunicorn layout (default 1xsync: one worker, everything in one process)")
    ap.add_argument("--requests", type=int, default=300, help="measured submits per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="a service setting")
    ap.add_argument("--header", action="append", default=[], metavar="NAME=VALUE", help="a header of every submit")
    ap.add_argument("--out", default=None, help="folder for the profiles (default: a temporary one, printed)")
    ap.add_argument("--top", type=int, default=30, help="lines of the cProfile / layer summaries")
    args = ap.parse_args(argv)
    if not 1 <= args.requests <= 20_000 or not 1 <= args.rounds <= 20:
        ap.error("--requests 1..20000 and --rounds 1..20 (the run is bounded)")
    return args


class ProfiledGunicorn(Gunicorn):
    """``Gunicorn`` with a command prefix (valgrind) or the profiling config."""

    def __init__(self, *args, prefix: list[str] | None = None, **kwargs) -> None:
        self._prefix = prefix or []
        super().__init__(*args, **kwargs)

    def workers(self) -> list[psutil.Process]:
        return psutil.Process(self.pid).children()


def start_service(args, api: ApiServer, tmp: Path, out: Path) -> ProfiledGunicorn:
    env = dict(item.split("=", 1) for item in args.env)
    conf = ROOT / "gunicorn.conf.py"
    prefix: list[str] = []
    if args.tool == "callgrind":
        prefix = ["valgrind", "--tool=callgrind", "--trace-children=yes", "--instr-atstart=no",
                  f"--callgrind-out-file={out}/callgrind.out.%p"]
        env.setdefault("RUNAI_SUBMIT_WORKER_TIMEOUT", "600")  # valgrind is ~50x slower
    if args.tool == "cprofile":
        conf = PROFILE_CONF
        env["RUNAI_SUBMIT_PROFILE_DIR"] = str(out)
    original = Managed.__init__

    def managed_with_prefix(self, name, argv, environ, log_path):  # noqa: ANN001
        original(self, name, prefix + argv, environ, log_path)

    Managed.__init__ = managed_with_prefix  # type: ignore[method-assign]
    try:
        server = ProfiledGunicorn(args.config, api, tmp, conf, env=env, prefix=prefix)
    finally:
        Managed.__init__ = original  # type: ignore[method-assign]
    server.wait_ready(timeout=600 if prefix else 60)
    return server


def layer_of(frame: str) -> str | None:
    for marker, layer in LAYERS:
        if marker in frame:
            return layer
    return None


def summarise_pyspy(raw: Path, top: int) -> list[str]:
    """Samples per layer (innermost frame of a known layer; stdlib frames go to their caller's layer)."""
    by_layer: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        for frame in reversed(frames):
            layer = layer_of(frame)
            if layer:
                by_layer[layer] += n
                break
        else:
            by_layer["other (stdlib, interpreter)"] += n
        for name in {f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                     for f in frames}:
            inclusive[name] += n
    lines = [f"py-spy: {total} samples of the worker while it served the measured submits", "", "self, by layer:"]
    lines += [f"  {100 * n / total:5.1f} %  {layer}" for layer, n in by_layer.most_common()]
    lines += ["", f"inclusive, top {top} functions:"]
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in inclusive.most_common(top)]
    return lines


def callgrind_total(path: Path) -> int:
    """The instruction count (Ir) of one callgrind dump."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_interrupt)
    tmp = Path(tempfile.mkdtemp(prefix="runai-submit-profile-"))
    out = Path(args.out) if args.out else tmp
    out.mkdir(parents=True, exist_ok=True)
    api = kit_api(args.kubeconfig)
    admin = Admin(api)
    admin.install_runaijob_crd()
    tag = "".join(random.choice(string.ascii_lowercase) for _ in range(4))
    project = f"prof-{tag}"
    namespace = f"runai-{project}"
    admin.create_namespace(namespace, {"runai/queue": project, "runai-submit-bench": "true"})
    headers = dict(item.split("=", 1) for item in args.header)
    errors: dict[str, str] = {}
    server = None
    try:
        server = start_service(args, api, tmp, out)
        dry_run_manifests(server.endpoint, job_in(args.job, project))
        work = service_work(server.endpoint, job_in(args.job, project), False, errors, headers)
        warm = drive(server.endpoint, work, args.warmup, max(1, args.concurrency), errors)
        if warm.ok != args.warmup:
            raise RuntimeError(f"warm-up failed: {warm.errors} {errors}")
        admin.delete_bench_objects(namespace)
        workers = server.workers()
        cpu_ms, sys_ms, p50s, counts = [], [], [], []
        for round_no in range(args.rounds):
            before = {w.pid: w.cpu_times() for w in workers}
            spy = None
            if args.tool == "callgrind":
                for w in workers:
                    subprocess.run(["callgrind_control", "-i", "on", str(w.pid)], check=True, capture_output=True)
                    subprocess.run(["callgrind_control", "-z", str(w.pid)], check=True, capture_output=True)
            elif args.tool == "pyspy":
                spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(workers[0].pid), "-r", "200", "-f", "raw",
                                        "-o", str(out / f"pyspy-{round_no}.txt"), "--nonblocking", "--gil"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            elif args.tool == "cprofile":
                for w in workers:
                    os.kill(w.pid, signal.SIGUSR2)
                time.sleep(0.2)
            result = drive(server.endpoint, work, args.requests, args.concurrency, errors)
            after = {w.pid: w.cpu_times() for w in workers}
            ok = max(1, result.ok)
            if result.ok != args.requests:
                print(f"round {round_no}: {result.errors} {errors}", file=sys.stderr)
            user = sum(a.user - before[pid].user for pid, a in after.items())
            system = sum(a.system - before[pid].system for pid, a in after.items())
            cpu_ms.append((user + system) * 1000 / ok)
            sys_ms.append(system * 1000 / ok)
            p50s.append(result.pct(0.5))
            if args.tool == "callgrind":
                total = 0
                for w in workers:
                    subprocess.run(["callgrind_control", "-i", "off", str(w.pid)], check=True, capture_output=True)
                    subprocess.run(["callgrind_control", "-d", f"round{round_no}", str(w.pid)], check=True,
                                   capture_output=True)
                time.sleep(0.5)
                for w in workers:
                    dumps = sorted(out.glob(f"callgrind.out.{w.pid}.*"), key=lambda p: p.stat().st_mtime)
                    total += callgrind_total(dumps[-1])
                counts.append(total / ok)
            elif spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
            elif args.tool == "cprofile":
                for w in workers:
                    os.kill(w.pid, signal.SIGUSR2)  # off, and dump
                time.sleep(0.5)
            admin.delete_bench_objects(namespace)
            line = f"round {round_no}: {result.ok} submits, worker CPU {cpu_ms[-1]:.3f} ms/submit ({sys_ms[-1]:.3f} in the kernel), p50 {p50s[-1]:.2f} ms"
            if counts:
                line += f", {counts[-1] / 1e6:.3f} M instructions/submit"
            print(line, flush=True)
        print(f"\n{args.job} job, gunicorn {args.config.label}, concurrency {args.concurrency}, "
              f"{args.rounds} x {args.requests} submits:")
        print(f"  worker CPU per submit: median {statistics.median(cpu_ms):.3f} ms (min {min(cpu_ms):.3f}), "
              f"of which in the kernel: median {statistics.median(sys_ms):.3f} ms")
        if counts:
            print(f"  instructions per submit (callgrind): median {statistics.median(counts) / 1e6:.3f} M "
                  f"(spread {(max(counts) - min(counts)) / max(1.0, statistics.median(counts)) * 100:.2f} %)")
        if args.tool == "pyspy":
            merged = out / "pyspy-all.txt"
            merged.write_text("".join(p.read_text() for p in sorted(out.glob("pyspy-[0-9]*.txt"))))
            print("\n".join(summarise_pyspy(merged, args.top)))
        if args.tool == "cprofile":
            import pstats

            files = sorted(out.glob("cprofile.*"))
            stats = pstats.Stats(*map(str, files))
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
        print(f"\nprofiles in {out}")
    finally:
        if server is not None:
            server.stop()
        stop_all()
        try:
            admin.delete_bench_objects(namespace)
            admin.delete_namespace(namespace, wait=False)
        except Exception as exc:  # the profile matters more than this clean-up
            print(f"could not delete namespace {namespace}: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
