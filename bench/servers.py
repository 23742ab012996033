"""The servers a benchmark run starts or connects to, and their clean stop.

- the **kit's control plane** (``../shared/kube``: kube-apiserver, etcd, controller-manager, scheduler), started
  in a temporary folder and purged at the end; the API server speaks TLS and wants a client certificate,
  exactly as the kubeconfig the kit writes says;
- the **fake API server** (``tests/fake_apiserver.py``), the fallback when the kit is absent;
- an **external cluster** from ``--kubeconfig`` (never changed: dry runs unless ``--create``);
- the **service** under gunicorn, one instance per gunicorn configuration.

Every process started here is registered and stopped again on success, on errors, on Ctrl-C and on SIGTERM.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from tests.kube_kit import KIT, start_kit_env  # one way to start the kit: with the tests' retry

from . import ROOT
from .loadgen import Endpoint, call, tls_context


# --------------------------------------------------------------------------------------------------
# Process management: everything started is registered and stopped again
# --------------------------------------------------------------------------------------------------

_CLEANUPS: list[tuple[str, Callable[[], None]]] = []


def on_exit(name: str, stop: Callable[[], None]) -> None:
    """Register ``stop`` to run (last registered, first run) when the benchmark ends, however it ends."""
    _CLEANUPS.append((name, stop))


def stop_all() -> None:
    while _CLEANUPS:
        name, stop = _CLEANUPS.pop()
        try:
            stop()
        except Exception as exc:  # keep stopping the others
            print(f"warning: could not stop {name}: {exc}", file=sys.stderr)


def raise_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


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
        self._stopped = False
        on_exit(f"{name} (pid {self.pid})", self.stop)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self._stopped:
            return
        self._stopped = True
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------------
# The API server
# --------------------------------------------------------------------------------------------------


@dataclass
class ApiServer:
    """The API server both the service and the floor talk to, and what the benchmark knows about it."""

    kind: str                       # "kit", "fake" or "external"
    endpoint: Endpoint
    kubeconfig: str
    auth: dict[str, str]            # headers every request to it carries (a bearer token, if the kubeconfig has one)
    pids: dict[str, list[int]] = field(default_factory=dict)  # probe groups: apiserver, etcd, controllers
    description: str = ""
    dry_run: bool = False           # every create is a server-side dry run (an external cluster without --create)
    owns_namespaces: bool = True    # the benchmark may create and delete namespaces (never on an external cluster)

    @property
    def measured(self) -> bool:
        """True when the API server's own CPU is read from /proc (a local process)."""
        return bool(self.pids.get("apiserver"))

    @property
    def real_floor(self) -> bool:
        """True when the floor is a real API server storing in etcd: what issue 13's targets are about."""
        return self.kind != "fake" and not self.dry_run


def client_endpoint(kubeconfig: str, context: str | None = None) -> tuple[Endpoint, dict[str, str], str]:
    """Endpoint (TLS, CA, client certificate) and auth headers of a kubeconfig, as the ``kubernetes`` client reads it."""
    import kubernetes.client
    import kubernetes.config

    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
    if cfg.refresh_api_key_hook is not None:
        cfg.refresh_api_key_hook(cfg)
    url = urlsplit(cfg.host)
    ctx = None
    if url.scheme == "https":
        # The client writes inline certificate data (the kit's kubeconfig embeds it) to temporary files.
        ctx = tls_context(cfg.ssl_ca_cert, cfg.cert_file, cfg.key_file, verify=cfg.verify_ssl)
    auth = {}
    bearer = cfg.auth_settings().get("BearerToken")
    if bearer:
        auth["Authorization"] = bearer["value"]
    port = url.port or (443 if url.scheme == "https" else 80)
    return Endpoint(url.hostname, port, ctx), auth, cfg.host


def _pid_of_kit_component(kit_dir: Path, name: str) -> int | None:
    """The kit records each component's pid in DIR/run/NAME.pid; trust it only if it still runs DIR/bin/NAME."""
    try:
        pid = int((kit_dir / "run" / f"{name}.pid").read_text().strip())
        if os.readlink(f"/proc/{pid}/exe") == str(kit_dir / "bin" / name):
            return pid
    except (OSError, ValueError):
        pass
    return None


def kit_pids(kit_dir: Path) -> dict[str, list[int]]:
    groups = {"apiserver": ["kube-apiserver"], "etcd": ["etcd"],
              "controllers": ["kube-controller-manager", "kube-scheduler"]}
    out: dict[str, list[int]] = {}
    for group, names in groups.items():
        out[group] = [pid for pid in (_pid_of_kit_component(kit_dir, n) for n in names) if pid]
    return out


def _listener(port: int) -> int | None:
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None


def local_pids(host: str, port: int) -> dict[str, list[int]]:
    """For an API server on this machine: its pid (listening on ``port``) and etcd's (from ``--etcd-servers``);
    nothing unless both are found."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        return {}
    try:
        pid = _listener(port)
        if pid is None:
            return {}
        for arg in psutil.Process(pid).cmdline():
            m = re.match(r"--etcd-servers=\w+://[^:/]+:(\d+)", arg)
            if m and (etcd := _listener(int(m.group(1)))):
                return {"apiserver": [pid], "etcd": [etcd]}
        return {}  # the API server alone is no floor: its etcd's CPU would be missing
    except (psutil.Error, OSError):
        return {}


def start_kit(tmp: Path, say: Callable[[str], None]) -> ApiServer:
    """Start ``../shared/kube`` in ``tmp/kube`` (stopped and purged when the benchmark ends)."""
    directory = tmp / "kube"
    on_exit(f"the control plane in {directory}", lambda: subprocess.run(
        [str(KIT / "stop"), "--purge", str(directory)], capture_output=True, timeout=90))
    say(f"starting the control plane of {KIT} in {directory} (stop it by hand with "
        f"`{KIT / 'stop'} --purge {directory}` should this run be killed)")
    started = time.monotonic()
    kubeconfig = start_kit_env(directory)["KUBECONFIG"]
    endpoint, auth, host = client_endpoint(kubeconfig)
    pids = kit_pids(directory)
    if not pids["apiserver"] or not pids["etcd"]:
        raise RuntimeError(f"the control plane in {directory} started, but its pid files are not usable: {pids}")
    return ApiServer("kit", endpoint, kubeconfig, auth, pids,
                     f"Kubernetes v1.28 control plane ({KIT.name} kit) at {host}: TLS with client certificates, "
                     f"kube-apiserver pid {pids['apiserver'][0]}, etcd pid {pids['etcd'][0]} "
                     f"(ready in {time.monotonic() - started:.0f} s)")


def start_fake(tmp: Path, validate: bool) -> ApiServer:
    kubeconfig = tmp / "kubeconfig-fake"
    argv = [sys.executable, str(ROOT / "tests" / "fake_apiserver.py"), "--port", "0", "--kubeconfig", str(kubeconfig)]
    if not validate:
        argv.append("--no-validate")
    managed = Managed("fake API server", argv, dict(os.environ, PYTHONUNBUFFERED="1"), tmp / "fake-apiserver.log")
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
    return ApiServer("fake", Endpoint("127.0.0.1", port), str(kubeconfig), {"Authorization": "Bearer fake-token"},
                     {"apiserver": [managed.pid]},
                     f"fake API server (tests/fake_apiserver.py{'' if validate else ' --no-validate'}), "
                     f"pid {managed.pid}: NOT a real floor (no TLS, no etcd); the ratios are not issue 13's")


def connect_external(kubeconfig: str, context: str | None, create: bool) -> ApiServer:
    """A cluster the user names. Its API server and etcd are measured when they run on this machine."""
    endpoint, auth, host = client_endpoint(kubeconfig, context)
    kit_dir = Path(kubeconfig).resolve().parent
    pids = kit_pids(kit_dir) if (kit_dir / ".kube-kit").exists() else local_pids(endpoint.host, endpoint.port)
    where = ", ".join(f"{k} pid {v[0]}" for k, v in pids.items() if v) or "not on this machine: no CPU floor"
    return ApiServer("external", endpoint, kubeconfig, auth, pids,
                     f"cluster of {kubeconfig} at {host} ({where})" + ("" if create else "; server-side dry runs"),
                     dry_run=not create, owns_namespaces=False)


# --------------------------------------------------------------------------------------------------
# The service under gunicorn
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    """One gunicorn layout: ``3xsync`` (3 sync workers) or ``2x4`` (2 gthread workers x 4 threads)."""

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


# gunicorn.conf.py's defaults (WEB_CONCURRENCY=3, gthread, RUNAI_SUBMIT_THREADS=2): keep the two equal.
DEFAULT_CONFIG = ServerConfig(3, 2, "gthread")


class Gunicorn:
    """``python -m gunicorn -c gunicorn.conf.py wsgi:app`` on a free loopback port, against ``api``.

    ``env`` adds service settings (``RUNAI_SUBMIT_*``) for this instance, e.g. another auth mode; ``app`` serves
    another WSGI app with the same configuration and layout (the ``stack`` scenario's ``bench.stackapp:app``).
    """

    def __init__(self, config: ServerConfig, api: ApiServer, tmp: Path, conf: Path, *,
                 env: dict[str, str] | None = None, name: str = "", app: str = "wsgi:app") -> None:
        self.config = config
        self.port = free_port()
        self.endpoint = Endpoint("127.0.0.1", self.port)
        tag = config.key + (f"-{name}" if name else "")
        prom = tmp / f"prometheus-{tag}"
        prom.mkdir(exist_ok=True)
        environ = dict(os.environ)
        environ.update({
            "RUNAI_SUBMIT_BACKEND": "kubeconfig",
            "RUNAI_SUBMIT_KUBECONFIG": api.kubeconfig,
            "RUNAI_SUBMIT_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(config.workers),
            "RUNAI_SUBMIT_THREADS": str(config.threads),
            "RUNAI_SUBMIT_WORKER_CLASS": config.worker_class,
            "PROMETHEUS_MULTIPROC_DIR": str(prom),
            **(env or {}),
        })
        argv = [sys.executable, "-m", "gunicorn", "-c", str(conf)]
        if config.worker_class != "gthread":
            argv += ["-k", config.worker_class]
        argv.append(app)
        self.managed = Managed(f"gunicorn {config.label}", argv, environ, tmp / f"gunicorn-{tag}.log")

    @property
    def pid(self) -> int:
        return self.managed.pid

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

    def log_lines(self) -> int:
        with open(self.managed.log_path, errors="replace") as log:
            return sum(1 for _ in log)

    def stop(self) -> None:
        self.managed.stop(timeout=20)
