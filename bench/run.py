#!/usr/bin/env python3
"""Benchmark of runai-submit: the service under gunicorn against an API server, beside the API server alone.

Run from the repository root with the project's virtualenv (``make bench`` does exactly this)::

    .venv/bin/python bench/run.py                 # full run (a few minutes), writes bench/results/latest.*
    .venv/bin/python bench/run.py --quick         # smoke check: small counts, one gunicorn config
    .venv/bin/python bench/run.py --soak          # 10,000 seed submits, RSS growth of every worker
    .venv/bin/python bench/run.py --kubeconfig ~/.kube/config --project team-a   # a real cluster

What it does (see bench/README.md for the why):

1. In-process micro-benchmark: ``load_submit_request`` + ``render_job`` per job, in µs.
2. Starts the fake API server (``tests/fake_apiserver.py``) as a separate process, unless ``--kubeconfig``.
3. For each gunicorn configuration: starts ``gunicorn -c gunicorn.conf.py wsgi:app`` on 127.0.0.1, asks it
   for the exact manifests it sends (``?dryRun=true``), then for each job and concurrency level drives a
   fixed number of submits through the service and the same manifests straight to the API server (the
   floor), with one keep-alive connection per client thread. The gunicorn workers' CPU time is read
   before and after every level.
4. Prints a table, PASS/FAIL lines for the targets, and writes JSON + a PNG plot under bench/results/.

Everything it starts it stops again, on success, on errors and on Ctrl-C. Only 127.0.0.1 is used unless
``--kubeconfig`` names a real cluster (where submits are dry runs unless ``--create`` is given).
"""
from __future__ import annotations

import argparse
import copy
import ctypes
import itertools
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import ssl
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

try:
    import psutil
except ImportError:  # pragma: no cover - make bench installs it
    sys.exit("bench/run.py needs psutil: .venv/bin/pip install -r requirements-bench.txt")

# --------------------------------------------------------------------------------------------------
# The two jobs
# --------------------------------------------------------------------------------------------------

#: The contract's worked example (shared/spec/examples/seed-request.json): no name, so every submit
#: gets a generated one and nothing collides.
# The same jobs as the tests (tests/golden/*-request.json): the seed page's example, and every parameter
# family at once minus ``name`` (a RunaiJob, a new PVC, a ClusterIP Service and an Ingress per submit;
# ``serviceType: ingress`` has no node ports, so thousands of these never collide in the API server).
GOLDEN = ROOT / "tests" / "golden"
SEED_JOB = json.loads((GOLDEN / "seed-request.json").read_text())["job"]
MAXIMAL_JOB = {key: value for key, value in json.loads((GOLDEN / "maximal-request.json").read_text())["job"].items()
               if key != "name"}

JOBS = {"seed": SEED_JOB, "maximal": MAXIMAL_JOB}
EXPECTED_KINDS = {"seed": 1, "maximal": 4}

BENCH_USER = "runai-submit-bench"   # RA-USER; becomes label runai/user=runai-submit-bench on every object
BENCH_SELECTOR = f"runai/user={BENCH_USER},app.kubernetes.io/managed-by=runai-submit"

#: REST collection of each kind the service creates: (api root, plural).
PLURALS = {
    "RunaiJob": "runaijobs",
    "Job": "jobs",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Service": "services",
    "Ingress": "ingresses",
}
CLEANUP_ORDER = ("Ingress", "Service", "PersistentVolumeClaim", "RunaiJob", "Job")  # dependents first


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    root = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    return f"{root}/namespaces/{namespace}/{PLURALS[kind]}"


# --------------------------------------------------------------------------------------------------
# Gunicorn configurations
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    workers: int
    threads: int
    worker_class: str  # gthread or sync

    @property
    def key(self) -> str:
        return f"{self.workers}xsync" if self.worker_class == "sync" else f"{self.workers}x{self.threads}"

    @property
    def label(self) -> str:
        if self.worker_class == "sync":
            return f"{self.workers} sync workers"
        return f"{self.workers}w x {self.threads}t gthread"

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_CONFIG

    @classmethod
    def parse(cls, text: str) -> ServerConfig:
        m = re.fullmatch(r"(\d+)x(\d+|sync)", text.strip())
        if not m:
            raise argparse.ArgumentTypeError(f"bad gunicorn config {text!r}: want WxT (gthread) or Wxsync")
        workers = int(m.group(1))
        if m.group(2) == "sync":
            return cls(workers, 1, "sync")
        return cls(workers, int(m.group(2)), "gthread")


# gunicorn.conf.py's defaults (WEB_CONCURRENCY=3, sync): keep the two equal.
DEFAULT_CONFIG = ServerConfig(3, 1, "sync")


# --------------------------------------------------------------------------------------------------
# Process management: everything started is registered and stopped again
# --------------------------------------------------------------------------------------------------

_STARTED: list["Managed"] = []


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Managed:
    """A child process in its own session (so the terminal's Ctrl-C reaches only us), logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        self.pid = self.proc.pid
        _STARTED.append(self)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)  # its own process group: it and its workers only
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        # Workers left over by a master that died hard are in the same (own) process group.
        try:
            os.killpg(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            pass
        else:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()
        if self in _STARTED:
            _STARTED.remove(self)


def stop_all() -> None:
    for managed in reversed(list(_STARTED)):
        try:
            managed.stop()
        except Exception as exc:  # keep stopping the others
            print(f"warning: could not stop {managed.name} (pid {managed.pid}): {exc}", file=sys.stderr)


def _raise_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------------
# A minimal keep-alive HTTP/1.1 client: pre-encoded requests, raw socket, no header objects
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    ssl_context: ssl.SSLContext | None = None
    timeout: float = 30.0

    @property
    def host_header(self) -> str:
        return f"{self.host}:{self.port}"


class HttpError(Exception):
    pass


class _Eof(ConnectionError):
    def __init__(self, partial: bool) -> None:
        super().__init__("connection closed" + (" mid-response" if partial else ""))
        self.partial = partial


class Conn:
    """One keep-alive connection. ``request`` sends pre-encoded bytes and returns (status, body)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.ep = endpoint
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.fresh = False
        self.reconnects = 0

    def connect(self) -> None:
        sock = socket.create_connection((self.ep.host, self.ep.port), timeout=self.ep.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ep.ssl_context is not None:
            sock = self.ep.ssl_context.wrap_socket(sock, server_hostname=self.ep.host)
        self.sock = sock
        self.buf.clear()
        self.fresh = True

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf.clear()

    def request(self, data: bytes) -> tuple[int, bytes]:
        for _ in range(2):
            if self.sock is None:
                self.connect()
                self.reconnects += 1
            fresh, self.fresh = self.fresh, False
            try:
                self.sock.sendall(data)
                return self._read()
            except _Eof as exc:
                self.close()
                # A kept-alive connection the server closed while idle: nothing was processed, send again.
                if fresh or exc.partial:
                    raise
            except OSError:
                self.close()
                raise
        raise ConnectionError("connection closed twice")

    def _recv(self, partial: bool) -> None:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise _Eof(partial)
        self.buf += chunk

    def _read(self) -> tuple[int, bytes]:
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            self._recv(bool(buf))
        head = bytes(buf[:end])
        del buf[:end + 4]
        try:
            status = int(head[9:12])
        except ValueError:
            raise HttpError(f"bad status line {head[:40]!r}") from None
        length, chunked, close = -1, False, head.startswith(b"HTTP/1.0")
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                value = value.lower()
                close = b"close" in value or (close and b"keep-alive" not in value)
        if chunked:
            body = self._read_chunked()
        elif length >= 0:
            while len(buf) < length:
                self._recv(True)
            body = bytes(buf[:length])
            del buf[:length]
        else:  # no length: the body runs to the end of the connection
            try:
                while True:
                    self._recv(True)
            except _Eof:
                pass
            body, close = bytes(buf), True
            buf.clear()
        if close:
            self.close()
        return status, body

    def _read_chunked(self) -> bytes:
        buf, out = self.buf, bytearray()
        while True:
            while (nl := buf.find(b"\r\n")) < 0:
                self._recv(True)
            size = int(bytes(buf[:nl]).split(b";")[0].strip() or b"0", 16)
            del buf[:nl + 2]
            if size == 0:
                while (end := buf.find(b"\r\n")) != 0:  # trailers up to the empty line
                    if end < 0:
                        self._recv(True)
                    else:
                        del buf[:end + 2]
                del buf[:2]
                return bytes(out)
            while len(buf) < size + 2:
                self._recv(True)
            out += buf[:size]
            del buf[:size + 2]


def request_head(method: str, path: str, ep: Endpoint, headers: dict[str, str]) -> bytes:
    """Request line and headers up to ``Content-Length: `` (the caller appends the length and body)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {ep.host_header}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")


def full_request(head: bytes, body: bytes) -> bytes:
    return b"%s%d\r\n\r\n%s" % (head, len(body), body)


def call(ep: Endpoint, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """One request on a throw-away connection (setup and cleanup, never timed)."""
    conn = Conn(ep)
    try:
        return conn.request(full_request(request_head(method, path, ep, headers), body))
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------------
# The load driver: N requests, C threads, each with its own keep-alive connection
# --------------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    n: int
    ok: int
    errors: dict[str, int]
    elapsed: float
    latencies: list[float]
    sample_error: str = ""
    reconnects: int = 0

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    def pct(self, q: float) -> float:
        """Nearest-rank percentile in ms."""
        if not self.latencies:
            return float("nan")
        lat = self.latencies
        return lat[max(0, min(len(lat) - 1, math.ceil(q * len(lat)) - 1))] * 1000.0

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.n, "ok": self.ok, "errors": self.errors, "seconds": round(self.elapsed, 4),
            "per_second": round(self.rate, 2),
            "p50_ms": round(self.pct(0.50), 3), "p95_ms": round(self.pct(0.95), 3),
            "p99_ms": round(self.pct(0.99), 3), "max_ms": round(self.pct(1.0), 3),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 3) if self.latencies else None,
            "reconnects": self.reconnects,
            **({"sample_error": self.sample_error} if self.sample_error else {}),
        }


Work = Callable[[Conn, int], "str | None"]  # returns None on success, else an error label


def drive(ep: Endpoint, work: Work, total: int, concurrency: int, errors_out: dict[str, str]) -> LoadResult:
    """Run ``work(conn, i)`` for i in 0..total-1 on ``concurrency`` threads; time from a common start."""
    counter = itertools.count()
    start = threading.Barrier(concurrency + 1)
    stop = threading.Event()
    per_thread: list[list[float]] = []
    errors: Counter = Counter()
    reconnects = [0]
    lock = threading.Lock()

    def worker() -> None:
        conn = Conn(ep)
        lat: list[float] = []
        local_errors: Counter = Counter()
        try:
            conn.connect()
        except OSError as exc:
            local_errors[f"connect: {type(exc).__name__}"] += 1
            conn = None
        try:
            start.wait()
        except threading.BrokenBarrierError:
            return
        clock = time.perf_counter
        while conn is not None and not stop.is_set():
            i = next(counter)
            if i >= total:
                break
            t0 = clock()
            try:
                err = work(conn, i)
            except (OSError, HttpError, ValueError) as exc:
                err = type(exc).__name__
                conn.close()
                errors_out.setdefault(err, str(exc))
            t1 = clock()
            if err is None:
                lat.append(t1 - t0)
            else:
                local_errors[err] += 1
        if conn is not None:
            conn.close()
        with lock:
            per_thread.append(lat)
            errors.update(local_errors)
            reconnects[0] += max(0, (conn.reconnects if conn else 0))

    threads = [threading.Thread(target=worker, daemon=True, name=f"load-{i}") for i in range(concurrency)]
    for t in threads:
        t.start()
    try:
        start.wait(timeout=60)
        t0 = time.perf_counter()
        for t in threads:
            while t.is_alive():
                t.join(0.2)
        elapsed = time.perf_counter() - t0
    except BaseException:
        stop.set()
        start.abort()
        raise
    latencies = sorted(itertools.chain.from_iterable(per_thread))
    sample = next(iter(errors_out.values()), "") if errors else ""
    return LoadResult(total, len(latencies), dict(errors), elapsed, latencies, sample, reconnects[0])


# --------------------------------------------------------------------------------------------------
# CPU and memory probes (psutil: /proc/<pid>/stat utime+stime)
# --------------------------------------------------------------------------------------------------


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, over all cores."""
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    busy = t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0) \
        + getattr(t, "steal", 0.0)
    return busy, busy + idle


def background_load(seconds: float = 1.0) -> float:
    """% of the machine's CPU used while this benchmark does nothing (other sessions, builds, tests)."""
    b0, t0 = machine_cpu()
    time.sleep(seconds)
    b1, t1 = machine_cpu()
    return 100.0 * (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


class Probe:
    """CPU seconds of the gunicorn workers, the API server, this process, and the whole machine."""

    def __init__(self, master_pid: int, apiserver_pid: int | None) -> None:
        self.master = psutil.Process(master_pid)
        self.apiserver = psutil.Process(apiserver_pid) if apiserver_pid else None
        self.me = psutil.Process()

    def workers(self) -> list[psutil.Process]:
        return self.master.children()

    def snapshot(self) -> dict[str, Any]:
        workers: dict[int, float] = {}
        for w in self.workers():
            try:
                workers[w.pid] = _cpu(w)
            except psutil.NoSuchProcess:
                pass
        busy, total = machine_cpu()
        try:
            master = _cpu(self.master)
        except psutil.NoSuchProcess:
            master = 0.0
        return {
            "workers": workers,
            "master": master,
            "apiserver": _cpu(self.apiserver) if self.apiserver else 0.0,
            "me": _cpu(self.me),
            "busy": busy,
            "total": total,
        }

    @staticmethod
    def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
        workers = sum(t - before["workers"].get(pid, 0.0) for pid, t in after["workers"].items())
        total = after["total"] - before["total"]
        ours = workers + sum(after[k] - before[k] for k in ("master", "apiserver", "me"))
        busy = after["busy"] - before["busy"]
        return {
            "workers_s": workers,
            "apiserver_s": after["apiserver"] - before["apiserver"],
            "loadgen_s": after["me"] - before["me"],
            "machine_busy_pct": 100.0 * busy / total if total > 0 else 0.0,
            # CPU used by processes that are not part of the benchmark (another build, a test run...).
            "other_busy_pct": max(0.0, 100.0 * (busy - ours) / total) if total > 0 else 0.0,
        }

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


# --------------------------------------------------------------------------------------------------
# The API server: the fake (a separate process) or a real cluster from a kubeconfig
# --------------------------------------------------------------------------------------------------


@dataclass
class ApiServer:
    endpoint: Endpoint
    kubeconfig: str
    auth: dict[str, str]          # headers every API request carries (Authorization)
    process: Managed | None = None
    dry_run: bool = False         # real cluster without --create: every create is a server-side dry run
    description: str = ""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


def start_fake(tmp: Path, validate: bool, tag: str = "") -> ApiServer:
    kubeconfig = tmp / f"kubeconfig{tag}"
    argv = [sys.executable, str(ROOT / "tests" / "fake_apiserver.py"), "--port", "0", "--kubeconfig", str(kubeconfig)]
    if not validate:
        argv.append("--no-validate")
    managed = Managed("fake API server", argv, dict(os.environ, PYTHONUNBUFFERED="1"),
                      tmp / f"fake-apiserver{tag}.log")
    deadline = time.monotonic() + 60
    port = None
    while time.monotonic() < deadline:
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", managed.log_path.read_text(errors="replace"))
        if m:
            port = int(m.group(1))
            break
        if not managed.alive():
            raise RuntimeError(f"the fake API server exited:\n{managed.log_tail()}")
        time.sleep(0.05)
    if port is None:
        raise RuntimeError(f"the fake API server did not start in 60 s:\n{managed.log_tail()}")
    return ApiServer(Endpoint("127.0.0.1", port), str(kubeconfig), {"Authorization": "Bearer fake-token"}, managed,
                     description=f"fake API server (tests/fake_apiserver.py{'' if validate else ' --no-validate'}), "
                                 f"pid {managed.pid}")


def real_cluster(kubeconfig: str, context: str | None, create: bool) -> ApiServer:
    """Endpoint, TLS and bearer token of a real cluster, as the kubernetes client reads the kubeconfig."""
    import kubernetes.client
    import kubernetes.config

    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
    if cfg.refresh_api_key_hook is not None:
        cfg.refresh_api_key_hook(cfg)
    url = urlsplit(cfg.host)
    ctx = None
    if url.scheme == "https":
        ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert) if cfg.verify_ssl else ssl._create_unverified_context()
        if cfg.cert_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    auth = {}
    bearer = cfg.auth_settings().get("BearerToken")
    if bearer:
        auth["Authorization"] = bearer["value"]
    port = url.port or (443 if url.scheme == "https" else 80)
    return ApiServer(Endpoint(url.hostname, port, ctx), kubeconfig, auth, None, dry_run=not create,
                     description=f"real cluster {cfg.host}" + ("" if create else " (server-side dry runs)"))


def cleanup(api: ApiServer, namespace: str) -> int:
    """Delete every object this benchmark created (label runai/user=runai-submit-bench); never timed."""
    if api.dry_run:
        return 0
    headers = {**api.auth, "Accept": "application/json"}
    removed = 0
    for kind in CLEANUP_ORDER:
        version = {"RunaiJob": "run.ai/v1", "Job": "batch/v1", "Ingress": "networking.k8s.io/v1"}.get(kind, "v1")
        path = collection_path(version, kind, namespace)
        query = urlencode({"labelSelector": BENCH_SELECTOR, "propagationPolicy": "Background"})
        status, body = call(api.endpoint, "DELETE", f"{path}?{query}", headers)
        if status == 200:
            removed += len(json.loads(body).get("items") or [])
            continue
        if status in (404,):  # kind not served (e.g. no run.ai group)
            continue
        # No deletecollection: list and delete one by one.
        status, body = call(api.endpoint, "GET", f"{path}?{urlencode({'labelSelector': BENCH_SELECTOR})}", headers)
        if status != 200:
            continue
        for item in json.loads(body).get("items") or []:
            name = item["metadata"]["name"]
            call(api.endpoint, "DELETE", f"{path}/{name}?propagationPolicy=Background", headers)
            removed += 1
    return removed


# --------------------------------------------------------------------------------------------------
# The service under gunicorn
# --------------------------------------------------------------------------------------------------


class Gunicorn:
    def __init__(self, config: ServerConfig, api: ApiServer, tmp: Path, conf: Path) -> None:
        self.config = config
        self.port = free_port()
        self.endpoint = Endpoint("127.0.0.1", self.port)
        prom = tmp / f"prometheus-{config.key}"
        prom.mkdir(exist_ok=True)
        env = dict(os.environ)
        env.update({
            "RUNAI_SUBMIT_BACKEND": "kubeconfig",
            "RUNAI_SUBMIT_KUBECONFIG": api.kubeconfig,
            "RUNAI_SUBMIT_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(config.workers),
            "RUNAI_SUBMIT_THREADS": str(config.threads),
            "RUNAI_SUBMIT_WORKER_CLASS": config.worker_class,
            "PROMETHEUS_MULTIPROC_DIR": str(prom),
        })
        argv = [sys.executable, "-m", "gunicorn", "-c", str(conf)]
        if config.worker_class != "gthread":
            argv += ["-k", config.worker_class]
        argv.append("wsgi:app")
        self.managed = Managed(f"gunicorn {config.label}", argv, env, tmp / f"gunicorn-{config.key}.log")

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.managed.alive():
                raise RuntimeError(f"gunicorn exited at start:\n{self.managed.log_tail()}")
            try:
                status, _ = call(self.endpoint, "GET", "/healthz", {})
                workers = psutil.Process(self.managed.pid).children()
                if status == 200 and len(workers) >= self.config.workers:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer /healthz in {timeout:.0f} s:\n{self.managed.log_tail()}")

    def stop(self) -> None:
        self.managed.stop(timeout=20)


# --------------------------------------------------------------------------------------------------
# Requests: the submit, and the floor's manifests
# --------------------------------------------------------------------------------------------------

UID_PLACEHOLDER = "0wner0000-uid0-0000-0000-placeholder"[:36]
_UID_RE = re.compile(rb'"uid"\s*:\s*"([^"]+)"')


def submit_request(ep: Endpoint, job: dict, dry_run: bool) -> bytes:
    path = "/api/job?dryRun=true" if dry_run else "/api/job"
    head = request_head("POST", path, ep, {"RA-USER": BENCH_USER, "Content-Type": "application/json"})
    return full_request(head, json.dumps({"job": job}).encode())


def dry_run_manifests(svc: Endpoint, job: dict) -> dict:
    status, body = call(svc, "POST", "/api/job?dryRun=true",
                        {"RA-USER": BENCH_USER, "Content-Type": "application/json"}, json.dumps({"job": job}).encode())
    if status != 200:
        raise RuntimeError(f"the service's dry run answered HTTP {status}: {body[:500]!r}")
    return json.loads(body)


class FloorRequests:
    """The exact manifests the service sends for a job, renamed per request, as raw POSTs to the API server."""

    _seq = itertools.count(1)
    _tag = "".join(random.choice(string.ascii_lowercase) for _ in range(3))

    def __init__(self, api: ApiServer, dry: dict, count: int) -> None:
        name = dry["name"]
        namespace = dry["namespace"]
        manifests = copy.deepcopy(dry["manifests"])
        self.kinds = [m["kind"] for m in manifests]
        heads, texts = [], []
        headers = {**api.auth, "Accept": "application/json", "Content-Type": "application/json",
                   "User-Agent": "runai-submit-bench-floor"}
        query = "?dryRun=All" if api.dry_run else ""
        for manifest in manifests:
            for ref in manifest["metadata"].get("ownerReferences") or []:
                ref["uid"] = UID_PLACEHOLDER
            path = collection_path(manifest["apiVersion"], manifest["kind"], namespace) + query
            heads.append(request_head("POST", path, api.endpoint, headers))
            texts.append(json.dumps(manifest))  # as the kubernetes client's rest.py encodes a dict body
        self.heads = heads
        self.needs_uid = [UID_PLACEHOLDER in text for text in texts]
        # Unique names: fl<run tag><sequence>, never a generated name of the service (job-xxxxx).
        self.bodies: list[list[bytes]] = []
        for _ in range(count):
            new = f"fl{self._tag}{next(self._seq):06d}"
            self.bodies.append([text.replace(name, new).encode() for text in texts])
        self.placeholder = UID_PLACEHOLDER.encode()

    def work(self) -> Work:
        heads, needs_uid, bodies, placeholder = self.heads, self.needs_uid, self.bodies, self.placeholder
        first_only = len(heads) == 1

        def post_all(conn: Conn, i: int) -> str | None:
            uid = b""
            for k, body in enumerate(bodies[i]):
                if needs_uid[k]:
                    body = body.replace(placeholder, uid)
                status, answer = conn.request(full_request(heads[k], body))
                if status not in (200, 201, 202):
                    return f"HTTP {status}"
                if k == 0 and not first_only:
                    m = _UID_RE.search(answer)
                    if not m:
                        return "no uid in the workload's answer"
                    uid = m.group(1)
            return None

        return post_all


def service_work(ep: Endpoint, job: dict, dry_run: bool, errors_out: dict[str, str]) -> Work:
    data = submit_request(ep, job, dry_run)

    def post(conn: Conn, i: int) -> str | None:  # noqa: ARG001
        status, body = conn.request(data)
        if status == 200:
            return None
        label = f"HTTP {status}"
        errors_out.setdefault(label, body[:400].decode(errors="replace"))
        return label

    return post


# --------------------------------------------------------------------------------------------------
# Micro-benchmark: validate + render in-process
# --------------------------------------------------------------------------------------------------


def micro_benchmark(iterations: int, repeats: int) -> dict[str, dict[str, float]]:
    import gc

    from runai_submit.model import OwnerRef, SubmitContext
    from runai_submit.render import render_job
    from runai_submit.schemas import load_submit_request

    ctx = SubmitContext(name="job-bcdfg", namespace="runai-team-a", user="john",
                        workload_api_version="run.ai/v1", workload_kind="RunaiJob")
    owner = OwnerRef("run.ai/v1", "RunaiJob", "job-bcdfg", "6c0f7a5e-0000-4000-8000-000000000000")
    out = {}
    for job_name, job in JOBS.items():
        payload = {"job": copy.deepcopy(job)}
        spec = load_submit_request(payload)
        manifests = render_job(spec, ctx, owner)
        assert len(manifests) == EXPECTED_KINDS[job_name], [m["kind"] for m in manifests]
        for _ in range(max(50, iterations // 10)):  # warm caches
            render_job(load_submit_request(payload), ctx, owner)
        clock = time.perf_counter
        samples: dict[str, list[float]] = {"validate": [], "render": [], "total": []}
        gc.collect()
        for _ in range(repeats):
            t0 = clock()
            for _ in range(iterations):
                load_submit_request(payload)
            t1 = clock()
            for _ in range(iterations):
                render_job(spec, ctx, owner)
            t2 = clock()
            for _ in range(iterations):
                render_job(load_submit_request(payload), ctx, owner)
            t3 = clock()
            samples["validate"].append((t1 - t0) / iterations * 1e6)
            samples["render"].append((t2 - t1) / iterations * 1e6)
            samples["total"].append((t3 - t2) / iterations * 1e6)
        out[job_name] = {
            "validate_us": round(statistics.median(samples["validate"]), 2),
            "render_us": round(statistics.median(samples["render"]), 2),
            "total_us": round(statistics.median(samples["total"]), 2),
            "total_min_us": round(min(samples["total"]), 2),
            "iterations": iterations, "repeats": repeats,
        }
    return out


# --------------------------------------------------------------------------------------------------
# One gunicorn configuration: every job x level, service and floor side by side
# --------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    levels: list[int]
    counts: dict[str, int]          # requests per level, per job
    warmup: int
    configs: list[ServerConfig]
    soak_total: int
    soak_warmup: int
    soak_concurrency: int


def run_level(api: ApiServer, svc: Endpoint, probe: Probe, namespace: str, work: Work, total: int,
              concurrency: int, errors_out: dict[str, str], target: Endpoint, clean: bool,
              sample_port: int | None = None) -> dict[str, Any]:
    conns: list[int] = []
    sampler = None
    if sample_port:  # how the kept-alive connections spread over the workers, a moment into the run
        sampler = threading.Timer(0.2, lambda: conns.extend(probe.connections(sample_port)))
        sampler.daemon = True
    before = probe.snapshot()
    if sampler:
        sampler.start()
    result = drive(target, work, total, concurrency, errors_out)
    after = probe.snapshot()
    if sampler:
        sampler.cancel()
        sampler.join(1)
    cpu = Probe.delta(before, after)
    summary = result.summary()
    ok = max(1, result.ok)
    summary.update({
        "service_cpu_ms_per_submit": round(cpu["workers_s"] * 1000 / ok, 3),
        "apiserver_cpu_ms_per_submit": round(cpu["apiserver_s"] * 1000 / ok, 3),
        "loadgen_cpu_ms_per_submit": round(cpu["loadgen_s"] * 1000 / ok, 3),
        "machine_busy_pct": round(cpu["machine_busy_pct"], 1),
        "other_busy_pct": round(cpu["other_busy_pct"], 1),
        "workers_cpu_s": round(cpu["workers_s"], 4),
    })
    if sample_port:
        summary["connections_per_worker"] = list(conns)
    summary["_latencies_ms"] = [round(x * 1000, 4) for x in result.latencies]
    if clean:
        t0 = time.perf_counter()
        cleanup(api, namespace)
        summary["cleanup_s"] = round(time.perf_counter() - t0, 3)
    return summary


def bench_config(config: ServerConfig, api_factory: Callable[[str], ApiServer], plan: Plan, tmp: Path,
                 conf: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """One gunicorn configuration against a fresh API server: every job and level, floor then service.

    The fake API server keeps every object in memory and scans all Services on each Service create and all
    objects on each delete, so objects are not left to pile up: the maximal job (which creates Services)
    runs first and is deleted after every run; the seed job (RunaiJobs only, O(1) creates) runs last and
    is left in place until the fake is stopped with this configuration.
    """
    say(f"\n--- gunicorn {config.label}{' (default of gunicorn.conf.py)' if config.is_default else ''} ---")
    api = api_factory(config.key)
    server = None
    try:
        server = Gunicorn(config, api, tmp, conf)
        server.wait_ready()
        probe = Probe(server.managed.pid, api.pid)
        svc = server.endpoint
        errors_out: dict[str, str] = {}
        dry = {job: dry_run_manifests(svc, body) for job, body in JOBS.items()}
        namespace = dry["seed"]["namespace"]
        for job, answer in dry.items():
            kinds = [m["kind"] for m in answer["manifests"]]
            if len(kinds) != EXPECTED_KINDS[job]:
                raise RuntimeError(f"{job} job renders {kinds}, expected {EXPECTED_KINDS[job]} objects")
        # Warm-up on fresh connections so every worker has discovered the workload kind, filled its
        # namespace cache and opened its pool to the API server.
        for job, body in JOBS.items():
            warm = drive(svc, service_work(svc, body, api.dry_run, errors_out), plan.warmup, 8, errors_out)
            if warm.ok != plan.warmup:
                raise RuntimeError(f"warm-up of the {job} job failed: {warm.errors} {errors_out}")
        cleanup(api, namespace)
        runs: dict[str, dict[str, Any]] = {}
        for job in ("maximal", "seed"):
            body = JOBS[job]
            clean = job == "maximal" or api.process is None  # a real cluster: always clean up (if --create)
            runs[job] = {}
            for level in plan.levels:
                n = plan.counts[job]
                floor_reqs = FloorRequests(api, dry[job], n)
                floor = run_level(api, svc, probe, namespace, floor_reqs.work(), n, level, errors_out,
                                  api.endpoint, clean)
                service = run_level(api, svc, probe, namespace, service_work(svc, body, api.dry_run, errors_out),
                                    n, level, errors_out, svc, clean,
                                    sample_port=server.port if config.worker_class == "gthread" and level > 1 else None)
                ratio = {
                    "per_second": round(service["per_second"] / floor["per_second"], 3) if floor["per_second"] else None,
                    "p50": round(service["p50_ms"] / floor["p50_ms"], 3) if floor["p50_ms"] else None,
                    "p99": round(service["p99_ms"] / floor["p99_ms"], 3) if floor["p99_ms"] else None,
                    "p50_added_ms": round(service["p50_ms"] - floor["p50_ms"], 3),
                }
                runs[job][str(level)] = {"service": service, "floor": floor, "ratio": ratio}
                bad = {k: v for k, v in (("service", service), ("floor", floor)) if v["ok"] != v["requests"]}
                say(f"  {job:<8} c={level:<3} service {service['per_second']:8.1f}/s p50 {service['p50_ms']:6.2f} ms"
                    f"   floor {floor['per_second']:8.1f}/s p50 {floor['p50_ms']:6.2f} ms"
                    f"   (other load {max(service['other_busy_pct'], floor['other_busy_pct']):.0f} %)"
                    + (f"   connections per worker {service['connections_per_worker']}"
                       if service.get("connections_per_worker") else "")
                    + "".join(f"   {side} ERRORS {v['errors']}" for side, v in bad.items()))
        runs = {job: runs[job] for job in JOBS}  # report in the usual order: seed, maximal
        log_lines = sum(1 for _ in open(server.managed.log_path, errors="replace"))
        return {
            "key": config.key, "label": config.label, "workers": config.workers, "threads": config.threads,
            "worker_class": config.worker_class, "default": config.is_default,
            "api_server": api.description, "namespace": namespace, "runs": runs,
            "cpu_ms_per_submit": {"seed": _cpu_per_submit(runs["seed"]), "maximal": _cpu_per_submit(runs["maximal"])},
            "score": _score(runs), "sample_errors": errors_out, "service_log_lines": log_lines,
        }
    except Exception:
        if server is not None:
            say(f"gunicorn log (last lines):\n{server.managed.log_tail()}")
        raise
    finally:
        if server is not None:
            server.stop()
        if api.process is not None:
            api.process.stop()


def _cpu_per_submit(levels: dict[str, Any]) -> float:
    cpu = sum(v["service"]["workers_cpu_s"] for v in levels.values())
    ok = sum(v["service"]["ok"] for v in levels.values())
    return round(cpu * 1000 / ok, 3) if ok else float("nan")


def _score(runs: dict[str, Any]) -> float:
    """Geometric mean of the service's submits/s over every job and level: the configuration ranking."""
    rates = [v["service"]["per_second"] for levels in runs.values() for v in levels.values()]
    rates = [r for r in rates if r > 0]
    return round(math.exp(sum(map(math.log, rates)) / len(rates)), 2) if rates else 0.0


# --------------------------------------------------------------------------------------------------
# Soak: 10,000 seed submits, RSS of every worker after warm-up and at the end
# --------------------------------------------------------------------------------------------------


def soak(config: ServerConfig, api: ApiServer, plan: Plan, tmp: Path, conf: Path,
         say: Callable[[str], None]) -> dict[str, Any]:
    say(f"\n--- soak: {plan.soak_total} seed submits at concurrency {plan.soak_concurrency}, gunicorn {config.label} ---")
    server = Gunicorn(config, api, tmp, conf)
    try:
        server.wait_ready()
        probe = Probe(server.managed.pid, api.pid)
        svc = server.endpoint
        errors_out: dict[str, str] = {}
        namespace = dry_run_manifests(svc, SEED_JOB)["namespace"]
        work = service_work(svc, SEED_JOB, api.dry_run, errors_out)
        chunk = max(1, plan.soak_total // 10)
        done, samples, chunks = 0, [], []
        rss0 = probe.rss()
        samples.append({"submits": 0, "rss": rss0})
        say(f"  start: RSS {_fmt_rss(rss0)}")
        while done < plan.soak_total:
            n = min(chunk, plan.soak_total - done)
            before = probe.snapshot()
            res = drive(svc, work, n, plan.soak_concurrency, errors_out)
            cpu = Probe.delta(before, probe.snapshot())
            done += n
            cleanup(api, namespace)
            rss = probe.rss()
            samples.append({"submits": done, "rss": rss})
            chunks.append({"submits": done, **{k: v for k, v in res.summary().items()},
                           "service_cpu_ms_per_submit": round(cpu["workers_s"] * 1000 / max(1, res.ok), 3)})
            say(f"  {done:6d} submits: {res.rate:7.1f}/s p50 {res.pct(.5):6.2f} ms p99 {res.pct(.99):6.2f} ms"
                f"  errors {sum(res.errors.values())}  RSS {_fmt_rss(rss)}")
        warm = next(s for s in samples if s["submits"] >= plan.soak_warmup)
        final = samples[-1]
        growth = {}
        for pid, start_rss in warm["rss"].items():
            if pid in final["rss"]:
                growth[str(pid)] = round(100.0 * (final["rss"][pid] - start_rss) / start_rss, 2)
        replaced = sorted(set(warm["rss"]) ^ set(final["rss"]))
        return {
            "config": config.key, "label": config.label, "total": plan.soak_total, "warmup": plan.soak_warmup,
            "concurrency": plan.soak_concurrency,
            "errors": sum(sum(c["errors"].values()) for c in chunks), "sample_errors": errors_out,
            "rss_samples": [{"submits": s["submits"], "rss_mib": {str(p): round(r / 2**20, 2) for p, r in s["rss"].items()}}
                            for s in samples],
            "rss_growth_pct": growth, "workers_replaced": replaced,
            "max_growth_pct": max(growth.values()) if growth else None,
            "chunks": [{k: v for k, v in c.items() if k != "_latencies_ms"} for c in chunks],
        }
    finally:
        server.stop()


def _fmt_rss(rss: dict[int, int]) -> str:
    return ", ".join(f"{pid}: {r / 2**20:.1f} MiB" for pid, r in sorted(rss.items()))


# --------------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------------


def print_table(results: dict[str, Any], say: Callable[[str], None]) -> None:
    header = (f"{'job':<8} {'conc':>4} | {'service/s':>9} {'p50':>7} {'p95':>7} {'p99':>7} | {'floor/s':>9} {'p50':>7}"
              f" {'p95':>7} {'p99':>7} | {'thr s/f':>7} {'p50 s/f':>7} {'+p50 ms':>7} | {'svc CPU':>7} {'api CPU':>7}"
              f" {'busy':>5} {'other':>5}")
    for cfg in results["configs"]:
        say(f"\n== gunicorn {cfg['label']}{' (default)' if cfg['default'] else ''}: latencies in ms, CPU in ms "
            f"per submit; busy = % of all cores in use, other = % used by processes outside the benchmark ==")
        say(header)
        say("-" * len(header))
        for job, levels in cfg["runs"].items():
            for level, row in levels.items():
                s, f, r = row["service"], row["floor"], row["ratio"]
                err = ""
                if s["ok"] != s["requests"] or f["ok"] != f["requests"]:
                    err = f"  errors: service {s['errors']} floor {f['errors']}"
                say(f"{job:<8} {level:>4} | {s['per_second']:9.1f} {s['p50_ms']:7.2f} {s['p95_ms']:7.2f} {s['p99_ms']:7.2f}"
                    f" | {f['per_second']:9.1f} {f['p50_ms']:7.2f} {f['p95_ms']:7.2f} {f['p99_ms']:7.2f}"
                    f" | {r['per_second']:7.2f} {r['p50']:7.2f} {r['p50_added_ms']:7.2f}"
                    f" | {s['service_cpu_ms_per_submit']:7.2f} {s['apiserver_cpu_ms_per_submit']:7.2f}"
                    f" {s['machine_busy_pct']:5.0f} {s.get('other_busy_pct', 0):5.0f}{err}")
        say(f"service CPU per submit over all levels: seed {cfg['cpu_ms_per_submit']['seed']:.2f} ms, "
            f"maximal {cfg['cpu_ms_per_submit']['maximal']:.2f} ms; throughput score (geometric mean) "
            f"{cfg['score']:.1f}/s")


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    targets = []
    micro = results.get("micro")
    if micro:
        v = micro["maximal"]["total_us"]
        targets.append({"id": "micro", "text": "validate + render of the maximal job", "value": v, "unit": "µs",
                        "limit": "<= 300 µs", "pass": v <= 300, "per_config": None})

    def per_config(fn) -> list[tuple[str, float, bool]]:
        out = []
        for cfg in results.get("configs", []):
            try:
                value, ok = fn(cfg)
            except KeyError:
                continue
            out.append((cfg["label"] + (" (default)" if cfg["default"] else ""), value, ok))
        return out

    def added(cfg):
        row = cfg["runs"]["seed"]["1"]
        v = row["service"]["p50_ms"] - row["floor"]["p50_ms"]
        return round(v, 3), v <= 2.0

    def cpu(cfg):
        v = cfg["cpu_ms_per_submit"]["seed"]
        return v, v <= 2.0

    def tail(cfg):
        worst = max(cfg["runs"][job]["8"]["service"]["p99_ms"] / cfg["runs"][job]["8"]["service"]["p50_ms"]
                    for job in cfg["runs"])
        return round(worst, 2), worst <= 3.0

    if results.get("configs"):
        for tid, text, unit, limit, fn in (
            ("p50_c1", "seed job, concurrency 1: service p50 minus floor p50", "ms", "<= 2 ms", added),
            ("cpu", "service CPU per seed submit (gunicorn workers, all levels)", "ms", "<= 2 ms", cpu),
            ("p99_c8", "p99 / p50 at concurrency 8 (worse of seed and maximal)", "x", "<= 3x", tail),
        ):
            rows = per_config(fn)
            if not rows:
                continue
            head = next((r for r in rows if r[0].endswith("(default)")), rows[0])
            targets.append({"id": tid, "text": text, "unit": unit, "limit": limit, "config": head[0],
                            "value": head[1], "pass": head[2],
                            "per_config": [{"config": c, "value": v, "pass": ok} for c, v, ok in rows]})
    soak_res = results.get("soak")
    if soak_res and soak_res.get("max_growth_pct") is not None:
        v = soak_res["max_growth_pct"]
        targets.append({"id": "soak", "text": f"soak: RSS growth per worker from {soak_res['warmup']} to "
                                              f"{soak_res['total']} submits (worst worker)",
                        "value": v, "unit": "%", "limit": "< 10 %", "pass": v < 10.0 and not soak_res["errors"],
                        "per_config": None})
    return targets


def print_targets(targets: list[dict[str, Any]], say: Callable[[str], None]) -> None:
    say("\n== targets ==")
    for t in targets:
        where = f" [{t['config']}]" if t.get("config") else ""
        say(f"{'PASS' if t['pass'] else 'FAIL'}  {t['text']}{where}: {t['value']} {t['unit']} (target {t['limit']})")
        for other in t.get("per_config") or []:
            if other["config"] != t.get("config"):
                say(f"        {other['config']}: {other['value']} {t['unit']} {'PASS' if other['pass'] else 'FAIL'}")


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = results["configs"]
    jobs = list(configs[0]["runs"])
    fig, axes = plt.subplots(len(jobs), 2, figsize=(12, 4.2 * len(jobs)), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, job in enumerate(jobs):
        ax_t, ax_p = axes[row]
        levels = [int(x) for x in configs[0]["runs"][job]]
        for i, cfg in enumerate(configs):
            runs = cfg["runs"][job]
            color = colors[i % len(colors)]
            label = cfg["label"] + (" (default)" if cfg["default"] else "")
            ax_t.plot(levels, [runs[str(c)]["service"]["per_second"] for c in levels], "o-", color=color,
                      label=f"service {label}")
            ax_p.plot(levels, [runs[str(c)]["service"]["p99_ms"] for c in levels], "o-", color=color,
                      label=f"service {label}")
        # The floor was measured beside every configuration; plot the mean and the spread.
        for ax, key in ((ax_t, "per_second"), (ax_p, "p99_ms")):
            vals = [[cfg["runs"][job][str(c)]["floor"][key] for cfg in configs] for c in levels]
            ax.plot(levels, [statistics.fmean(v) for v in vals], "s--", color="black", label="floor (API server alone)")
            ax.fill_between(levels, [min(v) for v in vals], [max(v) for v in vals], color="black", alpha=0.08)
            ax.set_xscale("log", base=2)
            ax.set_xticks(levels, [str(c) for c in levels])
            ax.set_xlabel("concurrency (client threads)")
            ax.grid(True, alpha=0.3)
        ax_t.set_ylabel("submits/s")
        ax_t.set_title(f"{job} job: throughput")
        ax_t.set_ylim(bottom=0)
        ax_p.set_ylabel("p99 latency (ms)")
        ax_p.set_title(f"{job} job: p99 latency")
        ax_p.set_ylim(bottom=0)
        ax_t.legend(fontsize=8)
    meta = results["meta"]
    fig.suptitle(f"runai-submit (service) vs the same manifests POSTed to the API server alone (floor), "
                 f"{meta['started']}\n{meta['api_server']}; {meta['cpus']} cores shared by the API server, gunicorn "
                 "and the load generator", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def strip_latencies(obj: Any, keep: bool) -> Any:
    if isinstance(obj, dict):
        return {k: strip_latencies(v, keep) for k, v in obj.items() if keep or k != "_latencies_ms"}
    if isinstance(obj, list):
        return [strip_latencies(v, keep) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # a level without a single success: no latency (JSON has no NaN)
    return obj


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Benchmark runai-submit under gunicorn against an API server, "
                                             "beside the API server alone (the floor).")
    ap.add_argument("--quick", action="store_true", help="small counts and one gunicorn config (smoke check)")
    ap.add_argument("--soak", action="store_true",
                    help="soak mode only: 10,000 seed submits (--soak-total), RSS growth per worker")
    ap.add_argument("--kubeconfig", help="use the cluster of this kubeconfig instead of starting the fake API server")
    ap.add_argument("--context", help="kubeconfig context (with --kubeconfig)")
    ap.add_argument("--project", default="team-a", help="project of the submitted jobs (default team-a)")
    ap.add_argument("--create", action="store_true",
                    help="with --kubeconfig: really create the jobs (deleted again by label after every level); "
                         "without it every submit is a server-side dry run so nothing is scheduled")
    ap.add_argument("--configs", type=lambda s: [ServerConfig.parse(x) for x in s.split(",") if x],
                    help="gunicorn configurations, e.g. 2x4,1x8,2xsync (WxT = W gthread workers x T threads)")
    ap.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], help="concurrency levels (1,8,32)")
    ap.add_argument("--requests", type=int, help="submits per level for the seed job")
    ap.add_argument("--requests-maximal", type=int, help="submits per level for the maximal job")
    ap.add_argument("--soak-total", type=int, help="soak submits (10000)")
    ap.add_argument("--soak-concurrency", type=int, default=8)
    ap.add_argument("--validate", action="store_true",
                    help="run the fake API server with schema validation (slow: its jsonschema cost dominates)")
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
    return args


def make_plan(args: argparse.Namespace) -> Plan:
    quick = args.quick
    configs = args.configs or ([DEFAULT_CONFIG] if quick or args.soak else
                               [DEFAULT_CONFIG, ServerConfig(2, 4, "gthread"), ServerConfig(4, 2, "gthread"),
                                ServerConfig(2, 1, "sync")])
    soak_total = args.soak_total or (1000 if quick else 10_000)
    for name, value in (("--requests", args.requests), ("--requests-maximal", args.requests_maximal),
                        ("--soak-total", args.soak_total)):
        if value is not None and not 1 <= value <= 100_000:
            sys.exit(f"{name} must be between 1 and 100000 (the benchmark is bounded)")
    return Plan(
        levels=args.levels or [1, 8, 32],
        counts={"seed": args.requests or (60 if quick else 3000),
                "maximal": args.requests_maximal or (30 if quick else 600)},
        warmup=20 if quick else 100,
        configs=configs,
        soak_total=soak_total,
        soak_warmup=max(1, min(1000, soak_total * 3 // 10) if quick else min(1000, soak_total // 2)),
        soak_concurrency=args.soak_concurrency,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT too: a background job ignores it
        signal.signal(sig, _raise_interrupt)
    stem = args.output or ("soak" if args.soak else "quick" if args.quick else "latest")
    if args.soak and args.quick and not args.output:
        stem = "quick-soak"
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="runai-submit-bench-"))
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    if args.project != "team-a":
        for job in JOBS.values():
            job["project"] = args.project
    started = time.time()
    results: dict[str, Any] = {}
    try:
        cpus = os.cpu_count() or 1
        say(f"runai-submit benchmark ({'soak' if args.soak else 'quick' if args.quick else 'full'} run), "
            f"commit {git_commit()}, Python {platform.python_version()}, {cpus} CPU cores")
        say(f"NOTE: the API server, the gunicorn workers and this load generator share the {cpus} cores of this "
            "machine; absolute numbers are for this machine only, the service/floor ratios are the point.")
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
                "test run?): the numbers will be noisy; the 'other' column shows it per level.")
        results["meta"] = {
            "background_load_pct": round(idle_load, 1),
            "mode": "soak" if args.soak else "quick" if args.quick else "full",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)), "commit": git_commit(),
            "python": platform.python_version(), "cpus": cpus, "platform": platform.platform(),
            "levels": plan.levels, "requests_per_level": plan.counts, "warmup": plan.warmup,
            "configs": [c.key for c in plan.configs], "user": BENCH_USER,
        }
        if not args.no_micro and not args.soak:
            iterations, repeats = (300, 3) if args.quick else (2000, 7)
            say(f"\n== validate + render, in-process (median of {repeats} x {iterations}; µs per job) ==")
            micro = micro_benchmark(iterations, repeats)
            results["micro"] = micro
            say(f"{'job':<8} {'validate':>9} {'render':>8} {'total':>8} {'best':>8}")
            for job, m in micro.items():
                say(f"{job:<8} {m['validate_us']:9.1f} {m['render_us']:8.1f} {m['total_us']:8.1f} {m['total_min_us']:8.1f}")
        if args.kubeconfig:
            cluster = real_cluster(args.kubeconfig, args.context, args.create)

            def api_factory(tag: str) -> ApiServer:  # noqa: ARG001
                return cluster
            description = cluster.description
        else:
            def api_factory(tag: str) -> ApiServer:
                return start_fake(tmp, validate=args.validate, tag=f"-{tag}")
            description = (f"fake API server (tests/fake_apiserver.py{'' if args.validate else ' --no-validate'}), "
                           "a fresh process per gunicorn configuration")
        results["meta"]["api_server"] = description
        say(f"\nAPI server: {description}")
        if not args.kubeconfig and not args.validate:
            say("(run without schema validation: its Python jsonschema cost would dominate both the service and the "
                "floor; --validate turns it on)")
        conf = Path(args.gunicorn_conf)
        if args.soak:
            results["soak"] = soak(plan.configs[0], api_factory("soak"), plan, tmp, conf, say)
        else:
            say(f"load: {plan.counts['seed']} seed / {plan.counts['maximal']} maximal submits per level, levels "
                f"{plan.levels}, one keep-alive connection per client thread; floor = the same manifests POSTed "
                "straight to the API server (4 sequential POSTs per maximal job)")
            results["configs"] = []
            for config in plan.configs:
                results["configs"].append(bench_config(config, api_factory, plan, tmp, conf, say))
            best = max(results["configs"], key=lambda c: c["score"])
            results["best_config"] = best["key"]
            print_table(results, say)
            say(f"\nbest gunicorn configuration by throughput (geometric mean over jobs and levels): {best['label']}"
                f" ({best['score']:.1f}/s)" + "".join(
                    f"; {c['label']} {c['score']:.1f}/s" for c in results["configs"] if c is not best))
        if args.soak:
            s = results["soak"]
            say(f"\nsoak: RSS growth per worker from {s['warmup']} to {s['total']} submits: "
                + ", ".join(f"pid {pid} {g:+.2f} %" for pid, g in s["rss_growth_pct"].items())
                + (f"; workers replaced: {s['workers_replaced']}" if s["workers_replaced"] else "")
                + f"; errors {s['errors']}")
        targets = check_targets(results)
        results["targets"] = targets
        print_targets(targets, say)
        results["meta"]["seconds"] = round(time.time() - started, 1)
        json_path = RESULTS / f"{stem}.json"
        json_path.write_text(json.dumps(strip_latencies(results, args.keep_latencies), indent=1) + "\n")
        say(f"\nwrote {json_path.relative_to(ROOT)}")
        if results.get("configs"):
            png = RESULTS / f"{stem}.png"
            try:
                plot(results, png)
                say(f"wrote {png.relative_to(ROOT)}")
            except ImportError as exc:
                say(f"no plot ({exc}); pip install -r requirements-bench.txt")
        (RESULTS / f"{stem}.txt").write_text("\n".join(lines) + "\n")
        say(f"wrote {(RESULTS / f'{stem}.txt').relative_to(ROOT)} ({time.time() - started:.0f} s in all)")
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


if __name__ == "__main__":
    sys.exit(main())
