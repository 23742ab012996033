"""The service's gunicorn worker (runai_submit/gunicorn_worker.py): a worker whose threads are all busy leaves a
new connection to a worker that can serve it.

gunicorn runs a tiny WSGI app (written to a temporary folder) with 2 workers x 1 thread: ``/slow`` holds its
thread until the test releases it, ``/pid`` answers the worker's pid at once. With one worker's only thread
held, every new connection must be served by the other worker. Plain gthread would accept some of them in the
busy worker and queue them there behind the held request (each new connection goes to either worker), so the
assertion fails for it about 7 times in 8 with three connections.
"""
from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_production import free_port

pytestmark = pytest.mark.slow

GUNICORN = Path(sys.executable).with_name("gunicorn")
WORKER = "runai_submit.gunicorn_worker.BalancedThreadWorker"
HANG_BOUND = 30.0  # seconds: catches a hang, times nothing

APP = '''
import os, time
from pathlib import Path

RELEASE = Path(os.environ["TEST_RELEASE_FILE"])


def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        deadline = time.monotonic() + 30
        while not RELEASE.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


@pytest.fixture
def two_single_thread_workers(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    (tmp_path / "holdapp.py").write_text(APP)
    release = tmp_path / "release"
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "wb")
    proc = subprocess.Popen(
        [str(GUNICORN), "--chdir", str(tmp_path), "-k", WORKER, "-w", "2", "--threads", "1",
         "-b", f"127.0.0.1:{port}", "--graceful-timeout", "2", "holdapp:app"],
        env={"TEST_RELEASE_FILE": str(release), "PATH": "/usr/bin:/bin"}, stdout=log, stderr=log,
        stdin=subprocess.DEVNULL)
    try:
        _wait_for_two_workers(port, proc, tmp_path / "gunicorn.log")
        yield port, release
    finally:
        release.touch()
        proc.terminate()
        try:
            proc.wait(HANG_BOUND)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _wait_for_two_workers(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + HANG_BOUND
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited at start:\n{log.read_text(errors='replace')}")
        if log.read_text(errors="replace").count("Booting worker") >= 2:
            try:
                _get(port, "/pid")
                return
            except OSError:
                pass
        time.sleep(0.05)
    pytest.fail(f"gunicorn did not start:\n{log.read_text(errors='replace')}")


def _get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_BOUND)
    try:
        conn.request("GET", path)
        return int(conn.getresponse().read())
    finally:
        conn.close()


def test_a_busy_worker_leaves_new_connections_to_a_free_one(two_single_thread_workers):
    port, release = two_single_thread_workers
    held = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_BOUND)
    held.request("GET", "/slow")  # one worker's only thread is now held until `release` exists
    time.sleep(0.3)  # let that worker accept it (an order of events, not a speed)
    try:
        # Each answers at once from the free worker; one accepted by the busy worker would wait for the release
        # (or for the hang bound) and then answer with the busy worker's pid.
        free_pids = {_get(port, "/pid") for _ in range(3)}
    finally:
        release.touch()
    held_pid = int(held.getresponse().read())
    held.close()
    assert len(free_pids) == 1 and held_pid not in free_pids, (held_pid, free_pids)


def test_the_held_worker_takes_connections_again_once_its_thread_is_free(two_single_thread_workers):
    port, release = two_single_thread_workers
    release.touch()  # nothing is held: both workers accept, so over many new connections both serve some
    pids = {_get(port, "/pid") for _ in range(60)}
    assert len(pids) == 2, pids
