"""One batch beside single submits (issue 12): N seed jobs as one ``POST /api/v1/jobs/batch`` against the same
N seed jobs submitted one at a time (concurrency 1), through the same service, against the same API server.

The batch creates its jobs concurrently inside one request (``RUNAI_SUBMIT_BATCH_CONCURRENCY``, default 8,
on the worker's one connection pool); single submits at concurrency 1 wait for each create in turn. The ratio
is single wall time ÷ batch wall time; target >= 4.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..jobs import job_in
from ..loadgen import Conn, Work, full_request, request_head
from ..submits import SUBMIT_HEADERS
from . import Ratio

if TYPE_CHECKING:
    from ..runner import Bench

SPEEDUP_MIN = 4.0
DEFAULT_JOBS = 200


def batch_work(bench: Bench, project: str, count: int) -> Work:
    """One request: ``count`` seed jobs in one batch; a success only if every item was created."""
    endpoint = bench.service.endpoint
    path = "/api/v1/jobs/batch?dryRun=true" if bench.api.dry_run else "/api/v1/jobs/batch"
    body = json.dumps({"jobs": [job_in("seed", project) for _ in range(count)]}).encode()
    data = full_request(request_head("POST", path, endpoint, SUBMIT_HEADERS), body)

    def post(conn: Conn, i: int) -> str | None:  # noqa: ARG001
        status, answer = conn.request(data)
        if status != 200:
            bench.errors.setdefault(f"batch HTTP {status}", answer[:400].decode(errors="replace"))
            return f"HTTP {status}"
        items = json.loads(answer)["data"]
        failed = [item for item in items if not item.get("ok")]
        if len(items) != count or failed:
            bench.errors.setdefault("batch item", json.dumps(failed[:1])[:400])
            return "batch item failed"
        return None

    return post


class BatchComparison:
    """``count`` single seed submits at concurrency 1 beside the same jobs as one batch."""

    name = "batch"

    def __init__(self, count: int = DEFAULT_JOBS) -> None:
        self.count = count
        self.title = f"{count} seed jobs as one batch beside {count} single submits at concurrency 1"

    def run(self, bench: Bench) -> dict[str, Any]:
        n = self.count
        project = bench.project("batch-singles")
        bench.settle()
        singles = bench.measure(bench.service.endpoint, bench.submits("seed", project), n, 1)
        project = bench.project("batch-one")
        bench.settle()
        batch = bench.measure(bench.service.endpoint, batch_work(bench, project, n), 1, 1)
        bench.release()
        speedup = singles["seconds"] / batch["seconds"] if batch["seconds"] and batch["ok"] == 1 else None
        bench.say(f"  batch    {n} singles {singles['seconds']:6.2f} s ({singles['ok']} ok)"
                  f" | one batch {batch['seconds']:6.2f} s ({'ok' if batch['ok'] == 1 else 'FAILED'})"
                  f" | speed-up {speedup or 0:.1f}x")
        # Singles wall time / batch wall time, written as a ratio of rates so that "service" reads as the batch.
        ratio = Ratio(self.name, "speedup", f"{n} single submits' wall time / one batch's wall time",
                      singles["seconds"] if batch["ok"] == 1 else None, batch["seconds"], "s", ">=",
                      SPEEDUP_MIN, judged=bench.api.real_floor)
        return {"kind": "batch", "title": self.title, "jobs": n, "singles": singles, "batch": batch,
                "speedup": None if speedup is None else round(speedup, 2), "ratios": [ratio.to_dict()]}
