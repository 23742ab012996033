"""The ``stack`` scenario's moving parts (``make bench``): the two minimal apps of ``bench/stackapp.py``, the
budget line and the report's table. Speed is measured by ``make bench`` only, never here.
"""
from __future__ import annotations

import json
from pathlib import Path

from bench import report
from bench.scenarios.stack import StackFloor
from bench.stackapp import FIXED_NAME, create_app
from tests.test_bench import _tls_server_context, pki, scripted  # noqa: F401 - fixtures used below

SEED_REQUEST = {"job": {"image": "busybox", "project": "team-b"}}


def test_the_stack_app_answers_from_the_json_body_alone():
    client = create_app({"RUNAI_STACK_MODE": "stack"}).test_client()
    answer = client.post("/api/job", json=SEED_REQUEST)
    assert answer.status_code == 200 and answer.get_json() == {"name": FIXED_NAME}
    named = client.post("/api/job", json={"job": {"name": "mine", "project": "p"}})
    assert named.get_json() == {"name": "mine"}
    assert client.post("/api/job", json=["not", "a", "job"]).status_code == 400
    assert client.get("/healthz").status_code == 200


def _created(request: bytes) -> bytes:
    name = json.loads(request.split(b"\r\n\r\n", 1)[1])["metadata"]["name"]
    body = json.dumps({"kind": "RunaiJob", "metadata": {"name": name, "uid": "u"}}).encode()
    return b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def _forward_env(tmp_path: Path, certs: Path, port: int) -> dict[str, str]:
    manifest = {"apiVersion": "run.ai/v1", "kind": "RunaiJob",
                "metadata": {"name": "job-bcdfg", "namespace": "runai-tmpl",
                             "labels": {"release": "job-bcdfg", "project": "tmpl"}},
                "spec": {"name": {"value": "job-bcdfg"}}}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"name": "job-bcdfg", "project": "tmpl", "manifest": manifest}))
    return {"RUNAI_STACK_MODE": "forward", "RUNAI_STACK_MANIFEST": str(path), "RUNAI_STACK_HOST": "127.0.0.1",
            "RUNAI_STACK_PORT": str(port), "RUNAI_STACK_SCHEME": "https", "RUNAI_STACK_CA": str(certs / "ca.crt"),
            "RUNAI_STACK_CERT": str(certs / "client.crt"), "RUNAI_STACK_KEY": str(certs / "client.key")}


def test_the_forward_app_posts_the_manifest_renamed_into_the_requests_project(scripted, pki, tmp_path):  # noqa: F811
    server = scripted(lambda i: (_created(server.requests[i]), False), _tls_server_context(pki))
    client = create_app(_forward_env(tmp_path, pki, server.port)).test_client()
    answers = [client.post("/api/job", json=SEED_REQUEST) for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3
    assert server.connections == 1  # one kept-alive connection for this thread
    assert server.peer_names == ["bench-client"]  # the kubeconfig's client certificate
    names = []
    for request, answer in zip(server.requests, answers):
        head, body = request.split(b"\r\n\r\n", 1)
        assert head.split(b"\r\n")[0] == b"POST /apis/run.ai/v1/namespaces/runai-team-b/runaijobs HTTP/1.1"
        manifest = json.loads(body)
        name = manifest["metadata"]["name"]
        assert "job-bcdfg" not in body.decode() and "tmpl" not in body.decode()
        assert manifest["metadata"]["namespace"] == "runai-team-b" and manifest["metadata"]["labels"] == {
            "release": name, "project": "team-b"}
        assert answer.get_json() == {"name": name}
        names.append(name)
    assert len(set(names)) == 3


def test_a_refused_forward_is_a_502_with_the_api_servers_status(scripted, pki, tmp_path):  # noqa: F811
    refusal = b'{"kind":"Status","code":403}'
    server = scripted(lambda i: (b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n%s" % (len(refusal), refusal),
                                 False), _tls_server_context(pki))
    answer = create_app(_forward_env(tmp_path, pki, server.port)).test_client().post("/api/job", json=SEED_REQUEST)
    assert answer.status_code == 502 and answer.get_json()["status"] == 403


def _side(ok: int, service_s: float, api_s: float, p50: float, per_second: float) -> dict:
    return {"requests": ok, "ok": ok, "errors": {}, "per_second": per_second, "p50_ms": p50, "p99_ms": 2 * p50,
            "service_cpu_ms_per_submit": service_s * 1000 / ok, "apiserver_etcd_cpu_ms_per_submit": api_s * 1000 / ok,
            "other_busy_pct": 1.0, "cpu_s": {"service": service_s}, "apiserver_etcd_cpu_s": api_s}


def test_cpu_ratios_and_the_budget_line():
    rows = {
        "1": {"floor": _side(100, 0.0, 0.40, 3.0, 300), "stack": _side(100, 0.08, 0.0, 1.0, 900),
              "forward": _side(100, 0.12, 0.40, 4.0, 250), "ratio": {"forward_per_second": 0.83, "forward_p50": 1.33}},
        "8": {"floor": _side(300, 0.0, 1.20, 9.0, 500), "stack": _side(300, 0.24, 0.0, 2.0, 1500),
              "forward": _side(300, 0.36, 1.20, 12.0, 400), "ratio": {"forward_per_second": 0.8, "forward_p50": 1.33}},
    }
    scenario = StackFloor()
    cpu = scenario._cpu(rows)
    assert cpu == {"stack": 0.8, "forward": 1.2, "floor": 4.0, "apiserver_etcd_during_forward": 4.0}
    ratios = {r.measure: r for r in scenario._ratios(rows, cpu)}
    assert ratios["stack_cpu"].value == 0.2 and ratios["forward_cpu"].value == 0.3
    assert ratios["forward_p50"].value == 4.0 / 3.0 and ratios["forward_throughput"].value == 0.8
    assert all(r.passed is None for r in ratios.values())  # informational: never PASS/FAIL
    assert scenario._budget(None, cpu) is None  # no seed scenario in the run: no budget line
    budget = scenario._budget({"cpu_ms_per_submit": {"service": 2.0, "floor": 5.0}}, cpu)
    assert budget["allowed_cpu_ms"] == 2.0 and budget["left_after_stack_ms"] == 1.2
    assert budget["service_own_ms"] == 1.2 and budget["left_after_forward_ms"] == 0.8
    assert "leaves 1.20 ms" in budget["text"]

    lines: list[str] = []
    result = {"kind": "stack", "levels": rows, "cpu_ms_per_submit": cpu,
              "informational": [r.to_dict() for r in ratios.values()], "budget": budget, "ratios": []}
    results = {"configs": [{"label": "3w x 2t gthread", "default": True, "scenarios": {"stack": result}}]}
    report.print_stack(results, lines.append)
    report.print_tables(results, lines.append)  # the service-beside-floor table leaves the stack's rows alone
    text = "\n".join(lines)
    assert "forward 1.20 ms" in text and "stack p50 at concurrency 1 (no API call): 1.00 ms" in text
    assert text.count("\ninfo  ") == 5 and "PASS" not in text and "FAIL" not in text
    assert budget["text"] in text
