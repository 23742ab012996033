"""Prometheus metrics. Under gunicorn they are shared across workers through prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set up by gunicorn.conf.py before any worker starts).

Metric objects are module-level, as prometheus_client expects: defining one does no I/O; the
per-process value files are created on first use, after the fork.
"""
from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector

_FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SUBMITS = Counter("runai_submit_submits", "Job submits answered, by outcome and HTTP status code",
                  ["outcome", "code"])
DELETES = Counter("runai_submit_deletes", "Job deletes, by outcome", ["outcome"])
PHASE_SECONDS = Histogram("runai_submit_phase_seconds", "Time spent per submit phase", ["phase"],
                          buckets=_FAST_BUCKETS)
APISERVER_SECONDS = Histogram("runai_submit_apiserver_request_seconds",
                              "Kubernetes API server call latency, by verb, kind and status code",
                              ["verb", "kind", "code"], buckets=_FAST_BUCKETS)
ROLLBACKS = Counter("runai_submit_rollbacks", "Rollbacks of failed submits, by result (complete or partial)",
                    ["result"])
HTTP_SECONDS = Histogram("runai_submit_http_request_seconds", "HTTP request latency by endpoint and code",
                         ["method", "endpoint", "code"], buckets=_FAST_BUCKETS)

# --- idempotency and batch submits (issue 12) ---
IDEMPOTENT_SUBMITS = Counter("runai_submit_idempotent_submits",
                             "Submits with an Idempotency-Key, by what the key decided", ["decision"])
BATCH_JOBS = Histogram("runai_submit_batch_jobs", "Jobs per batch submit",
                       buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000))
BATCHES = Counter("runai_submit_batches", "Batch submits answered, by mode (atomic or independent) and outcome",
                  ["mode", "outcome"])
BATCH_ITEMS = Counter("runai_submit_batch_items", "Jobs of batch submits, by outcome", ["outcome"])


_children: dict[tuple[Any, tuple[str, ...]], Any] = {}


def child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, looked up once per process and label values (issue 13).

    prometheus_client's ``labels()`` re-validates the values and takes a lock on every call; the label values
    of this service come from small fixed sets (methods, route rules, status codes, verbs, kinds, phases).
    """
    key = (metric, values)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*values)
    return found


class timed:  # noqa: N801 - used as ``with timed("validate"):``, like the context manager it replaces
    """Observe the block's duration in the phase histogram (validate, render, apply)."""

    __slots__ = ("_phase", "_start")

    def __init__(self, phase: str) -> None:
        self._phase = child(PHASE_SECONDS, phase)

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        self._phase.observe(time.perf_counter() - self._start)


def submit_outcome(code: int, dry_run: bool) -> str:
    if code < 300:
        return "dry_run" if dry_run else "created"
    if code == 409:
        return "conflict"
    if code < 500:
        return "rejected"
    return "failed"


def exposition() -> tuple[bytes, str]:
    """The metrics page: merged across workers in multiprocess mode, else this process's registry."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = DEFAULT_REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


# --- admin policy ---------------------------------------------------------------------------------------
POLICY_RELOADS = Counter("runai_submit_policy_reloads",
                         "Re-reads of a changed policy file, by result (ok, or error: the last good policy stays)",
                         ["result"])


# --- job insight ---------------------------------------------------------------------------------------

LOG_STREAMS = Counter("runai_submit_log_streams",
                      "Job logs streamed, by how they ended: eof, deadline (log_follow_max_seconds), client_gone, error",
                      ["end"])
# Each open log holds a worker (a sync one entirely): this says how many are held right now, across workers.
LOG_STREAMS_ACTIVE = Gauge("runai_submit_log_streams_active", "Job logs being streamed right now",
                           multiprocess_mode="livesum")
