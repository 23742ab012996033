"""A followed log under gunicorn as deployed (gunicorn.conf.py, one sync worker): it may outlive the worker
timeout without the worker being killed as hung, and it ends at RUNAI_SUBMIT_LOG_FOLLOW_MAX_SECONDS.

Without the heartbeat (gunicorn.conf.py ``post_worker_init``), the master kills a sync worker that has been
busy with one request for longer than its timeout, which cuts the stream off mid-way.
"""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.conftest import SEED_JOB, TEAM_A
from tests.fake_apiserver import FakeApiServer
from tests.test_production import Gunicorn, call, free_port, metric_samples, post_job, service_env, total

WORKER_TIMEOUT = 2        # seconds; the follow below lasts longer
FOLLOW_MAX = 5


@pytest.mark.slow
def test_a_followed_log_outlives_the_worker_timeout_and_ends_at_its_limit(tmp_path: Path):
    fake = FakeApiServer(serve_runai=False)
    fake.add_namespace(TEAM_A, {"runai/queue": "team-a"})
    fake.job_controller = True
    with fake:
        folder = tmp_path / "instance"
        (folder / "metrics").mkdir(parents=True)
        port = free_port()
        env = service_env(fake.write_kubeconfig(tmp_path / "kubeconfig"), port, folder / "metrics",
                          WEB_CONCURRENCY="1", RUNAI_SUBMIT_THREADS="1", RUNAI_SUBMIT_WORKER_CLASS="sync",
                          RUNAI_SUBMIT_WORKER_TIMEOUT=str(WORKER_TIMEOUT),
                          RUNAI_SUBMIT_LOG_FOLLOW_MAX_SECONDS=str(FOLLOW_MAX),
                          RUNAI_SUBMIT_SCHEDULER_NAME="default-scheduler")
        server = Gunicorn(env, port, folder)
        try:
            server.wait_ready(1)
            workers = server.worker_pids()
            assert post_job(server.port, {**SEED_JOB, "name": "train"}).status == 200
            (pod,) = [p["metadata"]["name"] for p in fake.objects("Pod", TEAM_A)]
            fake.bind_pod(TEAM_A, pod, "gpu-1")
            fake.set_status("Pod", TEAM_A, pod, {"phase": "Running", "containerStatuses": [
                {"name": "train", "image": "x", "imageID": "", "ready": True, "restartCount": 0,
                 "state": {"running": {"startedAt": "2026-01-01T10:00:00Z"}}}]})
            fake.set_pod_log(TEAM_A, pod, "before\n")
            # printed after the worker timeout has passed: only a worker still alive can pass it on
            later = threading.Timer(WORKER_TIMEOUT + 1.5, fake.append_pod_log, (TEAM_A, pod, "after\n"))
            later.start()

            reply = call(server.port, "GET", "/api/v1/job/team-a/train/logs?follow=true", timeout=FOLLOW_MAX + 30)
            later.join()

            assert reply.status == 200
            assert reply.body == b"before\nafter\n"
            assert reply.headers["X-Log-Max-Seconds"] == str(FOLLOW_MAX)
            assert "WORKER TIMEOUT" not in server.stderr()
            assert server.worker_pids() == workers, "the worker was replaced"
            samples = metric_samples(server.port)
            assert total(samples, "runai_submit_log_streams_total", end="deadline") == 1
            assert total(samples, "runai_submit_log_streams_active") == 0
        finally:
            server.stop()
