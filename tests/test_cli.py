"""``runai-submit render``: a job file -> the YAML manifests the API would create, without any cluster."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runai_submit.app import create_app
from runai_submit.cli import main
from tests.conftest import MAXIMAL_JOB

SCRIPT = Path(sys.executable).with_name("runai-submit")
OWNER_UID = "<uid of the workload>"

WEB_JOB = {
    "name": "web",
    "project": "team-a",
    "image": "nginx:1.25",
    "ports": [{"container": 8080, "external": 80}],
    "serviceType": "ingress",
    "pvc": [{"size": "1Gi", "path": "/data"}, "shared:/shared:ro"],
}


@pytest.fixture(autouse=True)
def _default_settings(monkeypatch):
    """The command reads RUNAI_SUBMIT_* like the service; these tests want the defaults."""
    for name in list(os.environ):
        if name.startswith("RUNAI_SUBMIT_"):
            monkeypatch.delenv(name)


def write(tmp_path, payload, name="job.json") -> str:
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return str(path)


def render(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_render_prints_every_object_in_creation_order(tmp_path, capsys):
    code, out, err = render(capsys, ["render", write(tmp_path, {"job": WEB_JOB})])

    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    assert [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("run.ai/v1", "RunaiJob", "web"),
        ("v1", "PersistentVolumeClaim", "pvc-web-0"),
        ("v1", "Service", "web"),
        ("networking.k8s.io/v1", "Ingress", "web"),
    ]
    workload, pvc, service, ingress = docs
    assert all(d["metadata"]["namespace"] == "runai-team-a" for d in docs)
    assert all(d["metadata"]["labels"]["release"] == "web" for d in docs)
    container = workload["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.25"
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in workload["spec"]["template"]["spec"]["volumes"]]
    assert claims == ["pvc-web-0", "shared"]  # a new claim and an existing one; only the new one is rendered
    mounts = {m["mountPath"]: m.get("readOnly", False) for m in container["volumeMounts"]}
    assert mounts == {"/data": False, "/shared": True}
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "ownerReferences" not in pvc["metadata"]
    for dependent in (service, ingress):
        assert dependent["metadata"]["ownerReferences"] == [
            {"apiVersion": "run.ai/v1", "kind": "RunaiJob", "name": "web", "uid": OWNER_UID}]
    assert service["spec"]["type"] == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(80, 8080)]
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/team-a-web"
    assert path["backend"]["service"] == {"name": "web", "port": {"number": 80}}
    assert out.count("\n---\n") == 3


def test_render_prints_what_the_api_dry_run_returns(tmp_path, capsys):
    """The command and ``POST /api/job?dryRun=true`` render the same manifests."""
    code, out, err = render(capsys, ["render", write(tmp_path, {"job": MAXIMAL_JOB}), "--user", "jane"])
    assert code == 0, err

    client = create_app({"backend": "offline", "offline_dir": str(tmp_path / "cluster")}).test_client()
    response = client.post("/api/job?dryRun=true", json={"job": MAXIMAL_JOB}, headers={"RA-USER": "jane"})
    assert response.status_code == 200, response.json
    expected = copy.deepcopy(response.json["manifests"])
    for manifest in expected:
        for ref in manifest["metadata"].get("ownerReferences", []):
            ref["uid"] = OWNER_UID
    assert list(yaml.safe_load_all(out)) == expected


def test_a_bare_job_object_is_accepted(tmp_path, capsys):
    code, out, err = render(capsys, ["render", write(tmp_path, WEB_JOB)])
    assert code == 0, err
    assert [d["kind"] for d in yaml.safe_load_all(out)] == ["RunaiJob", "PersistentVolumeClaim", "Service", "Ingress"]


def test_options_choose_kind_user_namespace_scheduler_and_ingress_class(tmp_path, capsys):
    code, out, err = render(capsys, [
        "render", write(tmp_path, WEB_JOB), "--kind", "Job", "--user", "Jane Doe", "--namespace", "science",
        "--scheduler", "default-scheduler", "--ingress-class", "nginx"])

    assert code == 0, err
    workload, pvc, service, ingress = yaml.safe_load_all(out)
    assert (workload["apiVersion"], workload["kind"]) == ("batch/v1", "Job")
    assert workload["metadata"]["annotations"]["user"] == "Jane Doe"
    assert workload["metadata"]["labels"]["runai/user"] == "Jane-Doe"
    assert workload["spec"]["template"]["spec"]["schedulerName"] == "default-scheduler"
    assert {d["metadata"]["namespace"] for d in (workload, pvc, service, ingress)} == {"science"}
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert service["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert service["metadata"]["ownerReferences"][0]["apiVersion"] == "batch/v1"


def test_a_job_without_a_name_gets_a_generated_one(tmp_path, capsys):
    code, out, err = render(capsys, ["render", write(tmp_path, {"project": "team-a", "image": "busybox",
                                                                 "jobNamePrefix": "exp"})])
    assert code == 0, err
    (workload,) = yaml.safe_load_all(out)
    name = workload["metadata"]["name"]
    assert name.startswith("exp-") and len(name) == len("exp-") + 5


def test_an_invalid_job_exits_2_naming_every_field(tmp_path, capsys):
    job = {"project": "Team A", "image": "x", "gpu": -1, "gpus": 2, "ports": [{"container": 0}]}
    code, out, err = render(capsys, ["render", write(tmp_path, {"job": job})])

    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    for pointer in ("/job/project", "/job/gpu", "/job/gpus", "/job/ports/0/container"):
        assert f"  {pointer}: " in err, err
    assert "Traceback" not in err


def test_an_unknown_top_level_field_exits_2(tmp_path, capsys):
    code, out, err = render(capsys, ["render", write(tmp_path, {"job": WEB_JOB, "extra": 1})])
    assert code == 2 and out == ""
    assert "  /extra: " in err


@pytest.mark.parametrize("text", ["not json", "", "{\"job\": ", "[1, 2]", "\"a string\"", "null"])
def test_input_that_is_not_a_json_job_exits_2(tmp_path, capsys, text):
    code, out, err = render(capsys, ["render", write(tmp_path, text)])
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and "Traceback" not in err


def test_a_missing_file_exits_2_with_a_message(tmp_path, capsys):
    missing = str(tmp_path / "missing.json")
    try:
        code = main(["render", missing])
    except (OSError, SystemExit) as exc:  # a traceback (OSError) is the bug this test is about
        pytest.fail(f"render of a missing file raised {exc!r} instead of answering exit code 2")
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "missing.json" in err


def test_a_file_that_is_not_utf8_text_is_not_json_and_exits_2(tmp_path, capsys):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00{")
    try:
        code = main(["render", str(path)])
    except ValueError as exc:
        pytest.fail(f"render of a binary file raised {exc!r} instead of answering exit code 2")
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("error: ")


def test_render_needs_a_job_argument(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["render"])
    assert exited.value.code == 2
    assert "job" in capsys.readouterr().err


# --- the installed console script ---------------------------------------------------------------------


def run_script(*args, stdin: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RUNAI_SUBMIT_")}
    return subprocess.run([str(SCRIPT), *args], input=stdin, capture_output=True, text=True, timeout=60, env=env)


def test_console_script_renders_from_stdin():
    assert SCRIPT.is_file() and os.access(SCRIPT, os.X_OK), SCRIPT

    result = run_script("render", "-", stdin=json.dumps({"job": WEB_JOB}))

    assert result.returncode == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in docs] == ["RunaiJob", "PersistentVolumeClaim", "Service", "Ingress"]
    assert docs[0]["metadata"]["annotations"]["user"] == "runai-submit"


def test_console_script_rejects_an_invalid_job_from_stdin():
    result = run_script("render", "-", stdin=json.dumps({"project": "team-a"}))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "/job/image: is required" in result.stderr
