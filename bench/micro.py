"""In-process micro-benchmark: validate (``load_submit_request``) and render (``render_job``) per job, in µs.

No server and no target: a figure for whoever changes the schemas or the builders. Runs first, before any
server exists, so nothing else competes for the interpreter.
"""
from __future__ import annotations

import copy
import gc
import statistics
import time

from .jobs import EXPECTED_KINDS, JOBS


def micro_benchmark(iterations: int, repeats: int) -> dict[str, dict[str, float]]:
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
        if len(manifests) != EXPECTED_KINDS[job_name]:
            raise RuntimeError(f"{job_name} renders {[m['kind'] for m in manifests]}")
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
