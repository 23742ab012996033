"""Production readiness, end to end: the service as it is deployed (gunicorn, several workers, several
replicas) against the fake API server on loopback.

The ``slow`` tests start real gunicorn processes with ``gunicorn.conf.py`` and ``wsgi:app`` and talk to them
over HTTP, one connection per request (as separate clients would). Every process started here is stopped in
a fixture's teardown, also when a test fails. The audit tests that need no second process run in-process
with the Flask test client and ``caplog``.
"""
from __future__ import annotations

import concurrent.futures
import http.client
import json
import urllib.parse
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from runai_submit.api.observability import manifests_digest
from tests.conftest import SEED_JOB, TEAM_A, submit
from tests.fake_apiserver import FakeApiServer

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
STARTUP_TIMEOUT = 20.0          # seconds for gunicorn to answer /healthz
GRACEFUL_TIMEOUT = 10           # RUNAI_SUBMIT_GRACEFUL_TIMEOUT of the started instances
SERVICE_JOB = {**SEED_JOB, "ports": [8888], "serviceType": "clusterip"}   # a workload and a Service
INVALID_JOB = {**SEED_JOB, "gpu": -1}                                       # 422: gpu must be 0 or more
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")
SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


# --- plumbing: ports, HTTP, processes ---------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on right now (bind to port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
         timeout: float = 15.0) -> Reply:
    """One request on a connection of its own, closed afterwards."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        sent_headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent_headers.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=sent_headers)
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def post_job(port: int, job: dict, *, user: str = "john", headers: dict[str, str] | None = None) -> Reply:
    return call(port, "POST", "/api/job", {"job": job}, {"RA-USER": user, **(headers or {})})


class Gunicorn:
    """``gunicorn -c gunicorn.conf.py wsgi:app`` in a session (and process group) of its own."""

    def __init__(self, env: dict[str, str], port: int, folder: Path) -> None:
        self.port = port
        self.metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
        self.stderr_path = folder / "gunicorn.stderr"
        self.stdout_path = folder / "gunicorn.stdout"
        with open(self.stderr_path, "ab") as stderr, open(self.stdout_path, "ab") as stdout:
            self.proc = subprocess.Popen([str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=env,
                                         stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                         start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def worker_pids(self) -> set[int]:
        return {int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", self.stderr())}

    def wait_ready(self, workers: int) -> None:
        """Until /healthz answers 200 and every worker has booted; fail with gunicorn's stderr otherwise."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.proc.returncode} at start:\n{self.stderr()}")
            try:
                if call(self.port, "GET", "/healthz", timeout=2).status == 200 and \
                        len(self.worker_pids()) >= workers:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"gunicorn did not answer /healthz on port {self.port} within {STARTUP_TIMEOUT}s:\n"
                    f"{self.stderr()}")

    def terminate(self) -> None:
        """SIGTERM to the master (a graceful stop), as Kubernetes does on a rolling update."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)

    def stop(self) -> None:
        """Graceful stop; if that fails, kill the process group this instance was started in."""
        self.terminate()
        try:
            self.proc.wait(timeout=GRACEFUL_TIMEOUT + 5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the master's own group: its workers, nothing else
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)


def service_env(kubeconfig: str, port: int, metrics_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of one instance: this test's settings only, none inherited from the caller's shell."""
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith("RUNAI_SUBMIT_")
                 and key not in ("PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY", "KUBERNETES_SERVICE_HOST",
                                 "KUBECONFIG")}
    return {
        **inherited,
        "PYTHONUNBUFFERED": "1",
        "RUNAI_SUBMIT_BACKEND": "kubeconfig",
        "RUNAI_SUBMIT_KUBECONFIG": kubeconfig,
        "RUNAI_SUBMIT_BIND": f"127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "WEB_CONCURRENCY": "2",
        "RUNAI_SUBMIT_THREADS": "2",
        "RUNAI_SUBMIT_CONNECT_TIMEOUT": "1",
        "RUNAI_SUBMIT_REQUEST_TIMEOUT": "5",
        "RUNAI_SUBMIT_GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT),
        **settings,
    }


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    """A fake API server of this test's own: requests a stopped test left in flight cannot reach another."""
    server = FakeApiServer(serve_runai=True)
    server.add_namespace(TEAM_A, {"runai/queue": "team-a"})
    with server:
        yield server


@pytest.fixture
def start_gunicorn(fake: FakeApiServer, tmp_path: Path) -> Iterator[Callable[..., Gunicorn]]:
    """``start_gunicorn(workers=2, **RUNAI_SUBMIT_x)``: a ready instance; every one is stopped at teardown."""
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    started: list[Gunicorn] = []

    def start(workers: int = 2, **settings: str) -> Gunicorn:
        folder = tmp_path / f"instance-{len(started)}"
        metrics_dir = folder / "metrics"
        metrics_dir.mkdir(parents=True)
        port = free_port()
        env = service_env(kubeconfig, port, metrics_dir, WEB_CONCURRENCY=str(workers), **settings)
        instance = Gunicorn(env, port, folder)
        started.append(instance)
        instance.wait_ready(workers)
        return instance

    yield start
    for instance in started:
        instance.stop()


def metric_samples(port: int) -> list[tuple[str, dict[str, str], float]]:
    reply = call(port, "GET", "/metrics")
    assert reply.status == 200, reply.body
    return [(sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(reply.body.decode())
            for sample in family.samples]


def total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float | None:
    """Sum of the samples ``name`` whose labels include ``labels``; None when there is none."""
    values = [value for sample, sample_labels, value in samples
              if sample == name and all(sample_labels.get(k) == v for k, v in labels.items())]
    return sum(values) if values else None


def workers_that_counted(metrics_dir: Path) -> set[int]:
    """Pids of the workers that incremented a counter (prometheus_client writes counter_<pid>.db per process)."""
    return {int(match.group(1)) for path in metrics_dir.iterdir()
            if (match := re.fullmatch(r"counter_(\d+)\.db", path.name))}


def job_objects(server: FakeApiServer, name: str) -> list[tuple[str, str]]:
    return sorted((obj["kind"], obj["metadata"]["name"]) for obj in server.objects()
                  if obj["kind"] != "Namespace" and obj["metadata"]["name"] == name)


def json_lines(text: str) -> list[dict]:
    """Every non-empty line of ``text`` as a JSON object; fails naming the first line that is not one."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"stderr line {number} is not JSON: {line!r}")
        assert isinstance(record, dict), f"stderr line {number} is not a JSON object: {line!r}"
        records.append(record)
    return records


# --- 1. metrics across workers ----------------------------------------------------------------------


@pytest.mark.slow
def test_metrics_are_counted_once_across_workers(start_gunicorn, fake):
    fake.delay(0.02, verb="create", kind="RunaiJob")   # overlapping submits, so both workers take some
    server = start_gunicorn(workers=2, RUNAI_SUBMIT_THREADS="2")
    created = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        for _ in range(6):  # batches until both workers have served submits (nearly always the first)
            replies = list(pool.map(lambda _: post_job(server.port, SEED_JOB), range(24)))
            assert [reply.status for reply in replies] == [200] * len(replies), [r.body for r in replies]
            created += len(replies)
            if len(workers_that_counted(server.metrics_dir)) >= 2:
                break
        rejected = list(pool.map(lambda _: post_job(server.port, INVALID_JOB), range(5)))
    assert [reply.status for reply in rejected] == [422] * 5
    counting = workers_that_counted(server.metrics_dir)
    assert len(counting) >= 2, f"only workers {counting} served submits; the test needs two"
    assert counting <= server.worker_pids()

    for _ in range(8):  # each page from whichever worker accepts it: all must show the merged totals
        samples = metric_samples(server.port)
        assert total(samples, "runai_submit_submits_total", code="200", outcome="created") == created
        assert total(samples, "runai_submit_submits_total", code="422", outcome="rejected") == 5
        assert total(samples, "runai_submit_phase_seconds_count", phase="validate") == created + 5
        assert total(samples, "runai_submit_phase_seconds_count", phase="apply") == created
        assert total(samples, "runai_submit_phase_seconds_count", phase="render") >= created
        assert total(samples, "runai_submit_apiserver_request_seconds_count",
                     verb="create", kind="RunaiJob") == created
        assert total(samples, "runai_submit_apiserver_request_seconds_count",
                     verb="create", kind="RunaiJob", code="201") == created
        assert total(samples, "runai_submit_http_request_seconds_count",
                     method="POST", endpoint="/api/job", code="200") == created
        assert total(samples, "runai_submit_http_request_seconds_count",
                     method="POST", endpoint="/api/job", code="422") == 5
    assert len(fake.objects(kind="RunaiJob")) == created


# --- 2. SIGTERM while a submit is in flight ---------------------------------------------------------


@pytest.mark.slow
def test_sigterm_lets_the_submit_in_flight_finish_whole(start_gunicorn, fake):
    server = start_gunicorn(workers=2)
    fake.delay(2.0, verb="create", kind="Service", times=1)
    services = f"/api/v1/namespaces/{TEAM_A}/services"
    outcome: dict[str, Any] = {}

    def submit_in_flight() -> None:
        try:
            outcome["reply"] = post_job(server.port, {**SERVICE_JOB, "name": "draining"})
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            outcome["error"] = exc

    thread = threading.Thread(target=submit_in_flight)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not any(method == "POST" and path == services for method, path, _ in list(fake.requests)):
            assert time.monotonic() < deadline, "the submit never reached the Service create"
            time.sleep(0.02)
        assert job_objects(fake, "draining") == [("RunaiJob", "draining")]   # mid-submit: workload only
        terminated_at = time.monotonic()
        server.terminate()
    finally:
        thread.join(timeout=GRACEFUL_TIMEOUT + 5)
    assert not thread.is_alive(), "no answer to the submit in flight"
    assert "error" not in outcome, f"the submit in flight got no HTTP answer: {outcome.get('error')!r}"
    reply = outcome["reply"]

    left = job_objects(fake, "draining")
    assert left in ([], [("RunaiJob", "draining"), ("Service", "draining")]), f"partial job left: {left}"
    assert reply.status == 200, reply.body
    assert reply.json()["objects"] == [{"kind": "RunaiJob", "name": "draining"},
                                       {"kind": "Service", "name": "draining"}]
    assert left == [("RunaiJob", "draining"), ("Service", "draining")]

    try:
        code = server.proc.wait(timeout=GRACEFUL_TIMEOUT + 2)
    except subprocess.TimeoutExpired:
        pytest.fail(f"gunicorn still runs {GRACEFUL_TIMEOUT + 2}s after SIGTERM")
    assert time.monotonic() - terminated_at < GRACEFUL_TIMEOUT
    assert code == 0, server.stderr()


# --- 3. two replicas, one cluster -------------------------------------------------------------------


@pytest.mark.slow
def test_two_instances_submit_100_auto_named_jobs_without_collision(start_gunicorn, fake):
    first = start_gunicorn(workers=2, RUNAI_SUBMIT_THREADS="4")
    second = start_gunicorn(workers=2, RUNAI_SUBMIT_THREADS="4")
    ports = [first.port, second.port]
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(lambda i: post_job(ports[i % 2], SEED_JOB), range(100)))
    assert [reply.status for reply in replies] == [200] * 100, [r.body for r in replies if r.status != 200]
    names = [reply.json()["name"] for reply in replies]
    assert len(set(names)) == 100
    stored = [obj["metadata"]["name"] for obj in fake.objects(kind="RunaiJob", namespace=TEAM_A)]
    assert len(stored) == 100
    assert set(stored) == set(names)


# --- 4. logs: JSON lines with request ids -----------------------------------------------------------


@pytest.mark.slow
def test_log_lines_are_json_and_carry_the_request_id(start_gunicorn, fake):
    server = start_gunicorn(workers=2)
    given = post_job(server.port, SEED_JOB, headers={"X-Request-ID": "test-123"})
    assert given.status == 200, given.body
    assert given.headers["X-Request-ID"] == "test-123"
    generated = post_job(server.port, SEED_JOB)
    assert generated.status == 200, generated.body
    generated_id = generated.headers["X-Request-ID"]
    assert GENERATED_ID.match(generated_id), generated_id
    unsafe = call(server.port, "GET", "/healthz", headers={"X-Request-ID": "spaces are not allowed"})
    assert GENERATED_ID.match(unsafe.headers["X-Request-ID"]), unsafe.headers["X-Request-ID"]
    health = call(server.port, "GET", "/healthz")
    assert GENERATED_ID.match(health.headers["X-Request-ID"])
    assert len({generated_id, unsafe.headers["X-Request-ID"], health.headers["X-Request-ID"]}) == 3
    server.stop()  # so that the shutdown lines are checked too

    records = json_lines(server.stderr())
    assert any(r.get("logger") == "gunicorn.error" and "Booting worker" in r.get("message", "") for r in records)
    for record in records:
        assert {"level", "logger", "message", "time"} <= record.keys(), record

    def of(request_id: str, logger: str) -> list[dict]:
        return [r for r in records if r.get("request_id") == request_id and r.get("logger") == logger]

    access = of("test-123", "runai_submit.access")
    assert len(access) == 1, access
    assert access[0] | {"duration_ms": 0} == access[0] | {
        "method": "POST", "path": "/api/job", "status": 200, "user": "john", "duration_ms": 0}
    assert isinstance(access[0]["duration_ms"], (int, float))
    [audited] = of("test-123", "runai_submit.audit")
    assert audited["objects"] == [f"RunaiJob {audited['job']}"] and audited["namespace"] == "runai-team-a"

    assert len(of(generated_id, "runai_submit.access")) == 1
    audit = of(generated_id, "runai_submit.audit")
    assert len(audit) == 1 and audit[0]["job"] == generated.json()["name"]
    assert audit[0]["objects"] == [f"RunaiJob {generated.json()['name']}"]

    for reply in (unsafe, health):
        assert [r["path"] for r in of(reply.headers["X-Request-ID"], "runai_submit.access")] == ["/healthz"]
    assert not [r for r in records if r.get("request_id") == "spaces are not allowed"]
    # Header mode against a cluster: each process says at start that RA-USER is taken on trust (README "Security").
    start_up = [r for r in records if r["logger"] == "runai_submit.app"]
    assert start_up and all(r["level"] == "WARNING" and "AUTH MODE header" in r["message"] for r in start_up)
    # Everything else the service logged here was logged while serving a request: each line names one.
    assert all(r.get("request_id") for r in records if r["logger"].startswith("runai_submit.") and r not in start_up)


@pytest.mark.slow
def test_a_user_name_in_utf8_is_recorded_as_written(start_gunicorn, fake):
    """HTTP carries header bytes, which WSGI hands over as latin-1 text (PEP 3333): the Flask test client
    cannot show what a real server does with "Jöhn 张" (UTF-8 C3 B6 ... E5 BC A0), so this one runs gunicorn."""
    server = start_gunicorn(workers=1)
    user = "Jöhn 张"
    submitted = call(server.port, "POST", "/api/job", {"job": {**SEED_JOB, "name": "utf8"}},
                     {"RA-USER": user.encode("utf-8")})
    assert submitted.status == 200, submitted.body

    (workload,) = fake.objects("RunaiJob")
    assert workload["metadata"]["annotations"]["user"] == user
    assert workload["spec"]["template"]["metadata"]["annotations"]["user"] == user
    listed = call(server.port, "GET", "/api/job?" + urllib.parse.urlencode({"project": "team-a", "user": user}))
    assert [(job["name"], job["user"]) for job in json.loads(listed.body)["data"]] == [("utf8", user)]
    server.stop()
    (access,) = [r for r in json_lines(server.stderr()) if r.get("logger") == "runai_submit.access"
                 and r.get("path") == "/api/job" and r.get("method") == "POST"]
    assert access["user"] == user


# In-process: the audit trail, one record per submit and per deleted item.


def audit_records(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "runai_submit.audit"]


def test_audit_record_of_a_created_job(client, caplog):
    caplog.set_level(logging.INFO)
    response = submit(client, SERVICE_JOB, user="jane")
    assert response.status_code == 200, response.json
    [record] = audit_records(caplog)
    assert (record.event, record.user, record.project, record.job, record.outcome, record.status) == (
        "submit", "jane", "team-a", response.json["name"], "ok", 200)
    assert SHA256.match(record.manifests), record.manifests
    assert record.request_id == response.headers["X-Request-ID"]


def test_audit_hash_is_of_the_manifests_a_dry_run_returns(client, caplog):
    caplog.set_level(logging.INFO)
    response = submit(client, {**SERVICE_JOB, "name": "dry"}, query="?dryRun=true")
    assert response.status_code == 200, response.json
    [record] = audit_records(caplog)
    assert record.manifests == manifests_digest(response.json["manifests"])
    assert (record.job, record.status, record.outcome) == ("dry", 200, "ok")


def test_audit_record_of_a_rejected_submit(client, caplog):
    caplog.set_level(logging.INFO)
    response = submit(client, {**INVALID_JOB, "name": "bad-gpu"})
    assert response.status_code == 422, response.json
    [record] = audit_records(caplog)
    assert (record.event, record.user, record.outcome, record.status) == ("submit", "john", "error", 422)
    # README "Observe": every submit's record names user, project, job, outcome and status.
    assert getattr(record, "project", "<missing>") == "team-a"
    assert getattr(record, "job", "<missing>") == "bad-gpu"


def test_audit_record_of_a_name_conflict(client, caplog):
    assert submit(client, {**SEED_JOB, "name": "taken"}).status_code == 200
    caplog.set_level(logging.INFO)
    caplog.clear()
    response = submit(client, {**SEED_JOB, "name": "taken"})
    assert response.status_code == 409, response.json
    [record] = audit_records(caplog)
    assert (record.event, record.user, record.project, record.job, record.outcome, record.status) == (
        "submit", "john", "team-a", "taken", "error", 409)


def test_audit_records_one_per_deleted_item(client, caplog):
    for name in ("gone-1", "gone-2"):
        assert submit(client, {**SEED_JOB, "name": name}).status_code == 200
    caplog.set_level(logging.INFO)
    caplog.clear()
    items = [{"name": "gone-1", "project": "team-a"}, {"name": "absent", "project": "team-a"},
             {"name": "gone-2", "project": "team-a"}]
    response = client.delete("/api/job", json=items, headers={"RA-USER": "jane"})
    assert response.status_code == 200, response.json
    records = audit_records(caplog)
    assert [(r.event, r.user, r.project, r.job, r.outcome, r.status) for r in records] == [
        ("delete", "jane", "team-a", "gone-1", "ok", 200),
        ("delete", "jane", "team-a", "absent", "error", 404),
        ("delete", "jane", "team-a", "gone-2", "ok", 200),
    ]


# --- 5. health and readiness under gunicorn ---------------------------------------------------------


@pytest.mark.slow
def test_health_and_readiness_follow_the_api_server(start_gunicorn, fake):
    server = start_gunicorn(workers=2, RUNAI_SUBMIT_READY_CACHE_SECONDS="0", RUNAI_SUBMIT_RETRY_AFTER_SECONDS="7")
    health = call(server.port, "GET", "/healthz")
    assert (health.status, health.json()) == (200, {"status": "ok"})
    ready = call(server.port, "GET", "/readyz")
    assert ready.status == 200, ready.body
    assert ready.json()["status"] == "ready"

    fake.refuse_connections(True)
    try:
        for _ in range(4):  # both workers, each asking the API server again (no cache)
            started = time.monotonic()
            unready = call(server.port, "GET", "/readyz")
            assert time.monotonic() - started < 5
            assert unready.status == 503, unready.body
            assert unready.headers["Retry-After"] == "7"
            assert unready.json()["status"] == 503
        assert call(server.port, "GET", "/healthz").status == 200   # liveness does not depend on the cluster
    finally:
        fake.refuse_connections(False)
    for _ in range(4):
        assert call(server.port, "GET", "/readyz").status == 200
