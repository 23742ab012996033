"""The report: tables, ratios with PASS/FAIL against their targets, the results JSON and a plot."""
from __future__ import annotations

import json
import math
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import ROOT  # not from .servers, which needs psutil (requirements-bench.txt): make test imports this

Say = Callable[[str], None]


def _floor_scenarios(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The service-beside-floor scenarios (``levels`` of service, floor and ratio); ``stack`` has its own table."""
    return {name: s for name, s in cfg["scenarios"].items() if s.get("levels") and s.get("kind", "floor") == "floor"}


def print_tables(results: dict[str, Any], say: Say) -> None:
    header = (f"{'job':<8} {'conc':>4} | {'service/s':>9} {'p50':>7} {'p95':>7} {'p99':>7} | {'floor/s':>9} {'p50':>7}"
              f" {'p95':>7} {'p99':>7} | {'thr s/f':>7} {'p50 s/f':>7} | {'svc CPU':>7} {'api+etcd':>8}"
              f" {'ctrl':>5} | {'busy':>4} {'other':>5}")
    for cfg in results["configs"]:
        floors = _floor_scenarios(cfg)
        if not floors:
            continue
        say(f"\n== gunicorn {cfg['label']}{' (default)' if cfg['default'] else ''}: latencies in ms; CPU in ms per "
            "submit: svc = gunicorn workers, api+etcd = the floor's API server + etcd (idle baseline removed), "
            "ctrl = controller-manager + scheduler reacting to the floor's objects; busy = % of all cores in use, "
            "other = % used by processes outside the benchmark ==")
        say(header)
        say("-" * len(header))
        for name, scenario in floors.items():
            for level, row in scenario["levels"].items():
                s, f, r = row["service"], row["floor"], row["ratio"]
                err = ""
                if s["ok"] != s["requests"] or f["ok"] != f["requests"]:
                    err = f"  errors: service {s['errors']} floor {f['errors']}"
                say(f"{name:<8} {level:>4} | {s['per_second']:9.1f} {s['p50_ms']:7.2f} {s['p95_ms']:7.2f}"
                    f" {s['p99_ms']:7.2f} | {f['per_second']:9.1f} {f['p50_ms']:7.2f} {f['p95_ms']:7.2f}"
                    f" {f['p99_ms']:7.2f} | {_num(r['per_second'], 7)} {_num(r['p50'], 7)}"
                    f" | {s['service_cpu_ms_per_submit']:7.2f} {f['apiserver_etcd_cpu_ms_per_submit']:8.2f}"
                    f" {f['controllers_cpu_ms_per_submit']:5.2f}"
                    f" | {max(s['machine_busy_pct'], f['machine_busy_pct']):4.0f}"
                    f" {max(s['other_busy_pct'], f['other_busy_pct']):5.0f}{err}")
        for name, scenario in floors.items():
            cpu = scenario["cpu_ms_per_submit"]
            say(f"{name}: CPU per submit over all levels: service {_num(cpu['service'])} ms, floor (API server + "
                f"etcd) {_num(cpu['floor'])} ms; API server + etcd while the service submitted "
                f"{_num(cpu['apiserver_etcd_during_service'])} ms; controllers reacting to the floor "
                f"{_num(cpu['controllers_during_floor'])} ms")


def print_stack(results: dict[str, Any], say: Say) -> None:
    """The stack's own floor (``scenarios/stack.py``): the two minimal apps beside the floor, their ratios
    (informational, no PASS/FAIL) and, when the seed scenario ran too, what issue 13's CPU budget leaves."""
    header = (f"{'conc':>4} | {'floor/s':>8} {'p50':>6} {'p99':>6} | {'stack/s':>8} {'p50':>6} {'p99':>6}"
              f" | {'fwd/s':>8} {'p50':>6} {'p99':>6} | {'thr f/fl':>8} {'p50 f/fl':>8} | {'stack':>5} {'fwd':>5}"
              f" {'api+etcd':>8} | {'other':>5}")
    for cfg in results.get("configs", []):
        stack = cfg["scenarios"].get("stack")
        if not stack or not stack.get("levels"):
            continue
        say(f"\n== the stack's own floor, gunicorn {cfg['label']}{' (default)' if cfg['default'] else ''}, seed "
            "job: stack = a bare Flask blueprint on the service's gunicorn.conf.py, forward = the same POSTing the "
            "seed manifest to the API server (one kept-alive connection per worker thread, TLS as the kubeconfig "
            "says), floor = that manifest POSTed straight to the API server; latencies in ms, CPU in ms per request "
            "(stack, fwd = their gunicorn workers; api+etcd = the floor's) ==")
        say(header)
        say("-" * len(header))
        for level, row in stack["levels"].items():
            f, s, w, r = row["floor"], row["stack"], row["forward"], row["ratio"]
            err = "".join(f"  errors: {side} {row[side]['errors']}" for side in ("floor", "stack", "forward")
                          if row[side]["ok"] != row[side]["requests"])
            say(f"{level:>4} | {f['per_second']:8.1f} {f['p50_ms']:6.2f} {f['p99_ms']:6.2f}"
                f" | {s['per_second']:8.1f} {s['p50_ms']:6.2f} {s['p99_ms']:6.2f}"
                f" | {w['per_second']:8.1f} {w['p50_ms']:6.2f} {w['p99_ms']:6.2f}"
                f" | {_num(r['forward_per_second'], 8)} {_num(r['forward_p50'], 8)}"
                f" | {s['service_cpu_ms_per_submit']:5.2f} {w['service_cpu_ms_per_submit']:5.2f}"
                f" {f['apiserver_etcd_cpu_ms_per_submit']:8.2f}"
                f" | {max(f['other_busy_pct'], s['other_busy_pct'], w['other_busy_pct']):5.0f}{err}")
        cpu = stack["cpu_ms_per_submit"]
        say(f"CPU per request over all levels: stack {_num(cpu['stack'])} ms, forward {_num(cpu['forward'])} ms, "
            f"floor (API server + etcd) {_num(cpu['floor'])} ms; API server + etcd while the forward app created "
            f"{_num(cpu['apiserver_etcd_during_forward'])} ms")
        for r in stack.get("informational", []):
            say(f"info  {r['text']}: {_num(r['service'])} {r['unit']} / {_num(r['reference'])} {r['unit']} = "
                f"{_num(r['value'], digits=3)} (the service's target: {r['target']})")
        p50 = stack["levels"].get("1")
        if p50:
            say(f"info  stack p50 at concurrency 1 (no API call): {_num(p50['stack']['p50_ms'])} ms")
        if stack.get("budget"):
            say(f"budget  {stack['budget']['text']}")
        else:
            say("budget  (run the seed scenario before stack in the same run for the budget line)")


def _num(value: float | None, width: int = 0, digits: int = 2) -> str:
    text = "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"
    return text.rjust(width)


def _verdict(ratio: dict[str, Any]) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a "}[ratio["pass"]]


def print_ratios(results: dict[str, Any], say: Say) -> None:
    """Every ratio of every configuration, the default configuration first and in full."""
    configs = sorted(results.get("configs", []), key=lambda c: not c["default"])
    for cfg in configs:
        ratios = [r for s in cfg["scenarios"].values() for r in s.get("ratios", [])]
        if not ratios:
            continue
        say(f"\n== ratios, gunicorn {cfg['label']}{' (default)' if cfg['default'] else ''}: service / floor, "
            f"measured in this one run against {results['meta']['api_kind_text']} ==")
        for r in ratios:
            say(f"{_verdict(r)}  {r['scenario']:<8} {r['text']}: {_num(r['service'])} {r['unit']} / "
                f"{_num(r['reference'])} {r['unit']} = {_num(r['value'], digits=3)} (target {r['target']})")
    if any(r["pass"] is None and r["value"] is not None for r in results.get("ratios", [])):
        say("(n/a: the floor here is not a real API server storing in etcd, so the targets do not apply)")


def soak_target(soak: dict[str, Any]) -> dict[str, Any] | None:
    if soak.get("max_growth_pct") is None:
        return None
    value = soak["max_growth_pct"]
    return {"id": "soak.rss", "scenario": "soak", "measure": "rss",
            "text": f"RSS growth per worker from {soak['warmup']} to {soak['total']} submits (worst worker)",
            "value": value, "unit": "%", "target": "< 10", "pass": value < 10.0 and not soak["errors"]}


def plot(results: dict[str, Any], path: Path) -> bool:
    """Throughput and p99 against concurrency, service (per configuration) beside the floor, per job."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = [c for c in results["configs"] if _floor_scenarios(c)]
    if not configs:
        return False
    jobs = list(_floor_scenarios(configs[0]))
    fig, axes = plt.subplots(len(jobs), 2, figsize=(12, 4.2 * len(jobs)), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, job in enumerate(jobs):
        ax_t, ax_p = axes[row]
        levels = [int(x) for x in configs[0]["scenarios"][job]["levels"]]
        for i, cfg in enumerate(configs):
            runs = cfg["scenarios"][job]["levels"]
            color = colors[i % len(colors)]
            label = cfg["label"] + (" (default)" if cfg["default"] else "")
            ax_t.plot(levels, [runs[str(c)]["service"]["per_second"] for c in levels], "o-", color=color,
                      label=f"service {label}")
            ax_p.plot(levels, [runs[str(c)]["service"]["p99_ms"] for c in levels], "o-", color=color,
                      label=f"service {label}")
        # The floor was measured beside every configuration; plot the mean and the spread.
        for ax, key in ((ax_t, "per_second"), (ax_p, "p99_ms")):
            vals = [[cfg["scenarios"][job]["levels"][str(c)]["floor"][key] for cfg in configs] for c in levels]
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
                 f"{meta['started']}\n{meta['api_server']}\n{meta['cpus']} cores shared by the control plane, "
                 "gunicorn and the load generator", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def strip_latencies(obj: Any, keep: bool) -> Any:
    if isinstance(obj, dict):
        return {k: strip_latencies(v, keep) for k, v in obj.items() if keep or k != "_latencies_ms"}
    if isinstance(obj, list):
        return [strip_latencies(v, keep) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # a level without a single success: no latency (JSON has no NaN)
    return obj


def write_json(results: dict[str, Any], path: Path, keep_latencies: bool) -> None:
    path.write_text(json.dumps(strip_latencies(results, keep_latencies), indent=1) + "\n")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
