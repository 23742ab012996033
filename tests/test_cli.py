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
from runai_submit.render.pvc import JOB_UID_ANNOTATION
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
        if JOB_UID_ANNOTATION in manifest["metadata"].get("annotations", {}):
            manifest["metadata"]["annotations"][JOB_UID_ANNOTATION] = OWNER_UID
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


def test_a_bare_jobs_problems_point_into_the_file_as_written(tmp_path, capsys):
    code, out, err = render(capsys, ["render", write(tmp_path, {"project": "team-a", "image": "x", "gpu": -1})])
    assert (code, out) == (2, "")
    assert "\n  /gpu: " in err and "/job/" not in err


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


# --- the same checks as a submit: the admin policy and Pod Security -------------------------------------

POLICY = """
defaults:
  cpu: 0.5
  memory: 1Gi
rules:
  gpu: {max: 4}
  hostNetwork: {canEdit: false}
"""


def policy_file(tmp_path, text: str = POLICY) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


def test_the_policy_defaults_are_rendered_as_the_api_dry_run_renders_them(tmp_path, capsys):
    policy = policy_file(tmp_path)
    job = {"name": "defaulted", "project": "team-a", "image": "busybox"}
    code, out, err = render(capsys, ["render", write(tmp_path, {"job": job}), "--policy", policy])

    assert code == 0, err
    (workload,) = yaml.safe_load_all(out)
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"] == {"cpu": "0.5", "memory": "1Gi"}
    assert "defaults of the policy filled in: cpu, memory" in err
    app = create_app({"backend": "offline", "offline_dir": str(tmp_path / "cluster"), "policy_file": policy})
    response = app.test_client().post("/api/job?dryRun=true", json={"job": job}, headers={"RA-USER": "runai-submit"})
    assert response.status_code == 200, response.json
    assert [workload] == response.json["manifests"]


def test_the_policy_file_of_the_settings_is_the_default_and_an_empty_option_turns_it_off(tmp_path, capsys,
                                                                                           monkeypatch):
    monkeypatch.setenv("RUNAI_SUBMIT_POLICY_FILE", policy_file(tmp_path))
    path = write(tmp_path, {"job": {"name": "big", "project": "team-a", "image": "busybox", "gpu": 8}})

    code, out, err = render(capsys, ["render", path])
    assert (code, out) == (2, "")
    assert "  /job/gpu: " in err and "4" in err

    code, out, err = render(capsys, ["render", path, "--policy", ""])
    assert code == 0, err
    (workload,) = yaml.safe_load_all(out)
    assert "cpu" not in workload["spec"]["template"]["spec"]["containers"][0].get("resources", {}).get("requests", {})


def test_every_problem_of_the_policy_and_the_schema_is_named_at_once(tmp_path, capsys):
    job = {"project": "team-a", "image": "busybox", "gpu": 8, "hostNetwork": True, "ports": [{"container": 0}]}
    code, out, err = render(capsys, ["render", write(tmp_path, {"job": job}), "--policy", policy_file(tmp_path)])

    assert (code, out) == (2, "")
    for pointer in ("/job/gpu", "/job/hostNetwork", "/job/ports/0/container"):
        assert f"  {pointer}: " in err, err


def test_a_policy_file_that_cannot_be_used_exits_2_with_every_problem(tmp_path, capsys):
    broken = policy_file(tmp_path, "rules:\n  gpu: {max: -1}\n  nope: {max: 1}\n")
    code, out, err = render(capsys, ["render", write(tmp_path, WEB_JOB), "--policy", broken])
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and "Traceback" not in err
    assert "gpu" in err and "nope" in err

    code, out, err = render(capsys, ["render", write(tmp_path, WEB_JOB), "--policy", str(tmp_path / "none.yaml")])
    assert (code, out) == (2, "")
    assert "none.yaml" in err and "cannot be read" in err


def test_a_restricted_namespace_gets_the_pod_the_level_admits(tmp_path, capsys):
    code, out, err = render(capsys, ["render", write(tmp_path, WEB_JOB), "--pod-security", "restricted"])

    assert code == 0, err
    workload = next(yaml.safe_load_all(out))
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["containers"][0]["securityContext"] == {"allowPrivilegeEscalation": False,
                                                       "capabilities": {"drop": ["ALL"]}}
    code, out, err = render(capsys, ["render", write(tmp_path, WEB_JOB)])
    assert code == 0 and "securityContext" not in next(yaml.safe_load_all(out))["spec"]["template"]["spec"]


@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_what_the_namespaces_level_refuses_exits_2_naming_the_field_and_the_namespace(tmp_path, capsys, level):
    job = {"project": "team-a", "image": "busybox", "hostIpc": True, "volume": {"/data": "/mnt"}}
    code, out, err = render(capsys, ["render", write(tmp_path, {"job": job}), "--pod-security", level,
                                     "--namespace", "science"])
    assert (code, out) == (2, "")
    assert f'  /job/hostIpc: namespace science enforces Pod Security "{level}"' in err
    assert f'  /job/volume/~1data: namespace science enforces Pod Security "{level}"; hostPath volumes' in err


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
    assert "  /image: is required" in result.stderr  # a bare job: pointers into the file as written
