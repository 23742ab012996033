"""Soak: 10,000 seed submits at concurrency 8 through one service, RSS of every worker after each chunk.

Growth is measured from the sample after warm-up (1,000 submits) to the end; a worker replaced meanwhile
is reported. Every chunk goes into a fresh project (the previous one deleted), so the API server does not
slow down as the soak goes on.
"""
from __future__ import annotations

from typing import Any

from .loadgen import drive
from .probes import Probe
from .runner import Bench


def _fmt_rss(rss: dict[int, int]) -> str:
    return ", ".join(f"{pid}: {r / 2**20:.1f} MiB" for pid, r in sorted(rss.items()))


def soak(bench: Bench) -> dict[str, Any]:
    plan, say, probe = bench.plan, bench.say, bench.probe
    say(f"\n--- soak: {plan.soak_total} seed submits at concurrency {plan.soak_concurrency}, "
        f"gunicorn {bench.config.label} ---")
    chunk = max(1, plan.soak_total // 10)
    done, samples, chunks = 0, [], []
    rss0 = probe.rss()
    samples.append({"submits": 0, "rss": rss0})
    say(f"  start: RSS {_fmt_rss(rss0)}")
    while done < plan.soak_total:
        n = min(chunk, plan.soak_total - done)
        work = bench.submits("seed", bench.project(f"soak-{done}"))
        before = probe.snapshot()
        res = drive(bench.service.endpoint, work, n, plan.soak_concurrency, bench.errors)
        cpu = Probe.delta(before, probe.snapshot())
        done += n
        rss = probe.rss()
        samples.append({"submits": done, "rss": rss})
        chunks.append({"submits": done, **{k: v for k, v in res.summary().items()},
                       "service_cpu_ms_per_submit": round(cpu["service"] * 1000 / max(1, res.ok), 3)})
        say(f"  {done:6d} submits: {res.rate:7.1f}/s p50 {res.pct(.5):6.2f} ms p99 {res.pct(.99):6.2f} ms"
            f"  errors {sum(res.errors.values())}  RSS {_fmt_rss(rss)}")
    bench.release()
    warm = next(s for s in samples if s["submits"] >= plan.soak_warmup)
    final = samples[-1]
    growth = {}
    for pid, start_rss in warm["rss"].items():
        if pid in final["rss"]:
            growth[str(pid)] = round(100.0 * (final["rss"][pid] - start_rss) / start_rss, 2)
    replaced = sorted(set(warm["rss"]) ^ set(final["rss"]))
    return {
        "config": bench.config.key, "label": bench.config.label, "total": plan.soak_total,
        "warmup": plan.soak_warmup, "concurrency": plan.soak_concurrency,
        "errors": sum(sum(c["errors"].values()) for c in chunks), "sample_errors": bench.errors,
        "rss_samples": [{"submits": s["submits"], "rss_mib": {str(p): round(r / 2**20, 2) for p, r in s["rss"].items()}}
                        for s in samples],
        "rss_growth_pct": growth, "workers_replaced": replaced,
        "max_growth_pct": max(growth.values()) if growth else None,
        "chunks": chunks,
    }
