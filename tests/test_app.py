"""The factory, the settings, and the offline backend that `make run` uses without a cluster."""
from __future__ import annotations

import pytest
import yaml

from runai_submit.app import create_app
from runai_submit.cluster import choose_backend
from runai_submit.config import Settings
from runai_submit.errors import ConfigError
from tests.conftest import SEED_JOB, submit


def test_settings_come_from_the_environment_and_overrides_win():
    environ = {"RUNAI_SUBMIT_SCHEDULER_NAME": "default-scheduler", "RUNAI_SUBMIT_REQUEST_TIMEOUT": "4.5",
               "RUNAI_SUBMIT_NAME_RETRIES": "7"}
    settings = Settings.load({"name_retries": 2}, environ=environ)
    assert (settings.scheduler_name, settings.request_timeout, settings.name_retries) == ("default-scheduler", 4.5, 2)


def test_every_bad_setting_is_reported_at_once():
    environ = {"RUNAI_SUBMIT_REQUEST_TIMEOUT": "soon", "RUNAI_SUBMIT_NAME_RETRIES": "many"}
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ=environ)
    assert len(caught.value.problems) == 2
    assert "RUNAI_SUBMIT_REQUEST_TIMEOUT='soon'" in str(caught.value)


@pytest.mark.parametrize(
    "overrides, problem",
    [
        ({"backend": "cloud"}, "backend must be one of"),
        ({"workload_kind": "Pod"}, "workload_kind must be one of"),
        ({"namespace_template": "runai"}, "must contain {project}"),
        ({"namespace_template": "Runai_{project}"}, "lowercase"),
        ({"request_timeout": 0}, "request_timeout"),
        ({"max_body_bytes": 10}, "max_body_bytes"),
        ({"nonsense": 1}, "unknown setting"),
    ],
)
def test_bad_settings_stop_the_factory(overrides, problem):
    with pytest.raises(ConfigError, match=problem.replace("{", r"\{").replace("}", r"\}")):
        create_app(overrides)


def test_auto_backend_prefers_in_cluster_then_kubeconfig_then_offline(tmp_path):
    settings = Settings.load({"kubeconfig": ""}, environ={})
    assert choose_backend(settings, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) == "incluster"
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\n")
    assert choose_backend(settings, {"KUBECONFIG": str(config), "HOME": str(tmp_path)}) == "kubeconfig"
    assert choose_backend(settings.replace(kubeconfig=str(tmp_path / "missing")), {"HOME": str(tmp_path)}) in (
        "offline",
        "kubeconfig",  # only when the machine running the tests has ~/.kube/config
    )


def test_offline_backend_writes_the_manifests_as_yaml(tmp_path):
    client = create_app({"backend": "offline", "offline_dir": str(tmp_path)}).test_client()

    response = submit(client, {**SEED_JOB, "ports": [8888], "serviceType": "nodeport"})

    assert response.status_code == 200, response.json
    name = response.json["name"]
    workload = yaml.safe_load((tmp_path / "runai-team-a" / "runaijobs" / f"{name}.yaml").read_text())
    service = yaml.safe_load((tmp_path / "runai-team-a" / "services" / f"{name}.yaml").read_text())
    assert workload["spec"]["template"]["spec"]["containers"][0]["image"] == SEED_JOB["image"]
    assert service["metadata"]["ownerReferences"][0]["uid"] == workload["metadata"]["uid"]


def test_offline_backend_refuses_a_taken_name(tmp_path):
    client = create_app({"backend": "offline", "offline_dir": str(tmp_path)}).test_client()
    assert submit(client, {**SEED_JOB, "name": "once"}).status_code == 200
    response = submit(client, {**SEED_JOB, "name": "once"})
    assert response.status_code == 409
    assert len(list(tmp_path.rglob("*.yaml"))) == 1


def test_unknown_route_and_wrong_method_answer_in_the_envelope(tmp_path):
    client = create_app({"backend": "offline", "offline_dir": str(tmp_path)}).test_client()
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.json["status"] == 404
    wrong = client.put("/api/job")
    assert wrong.status_code == 405 and wrong.json["status"] == 405 and "POST" in wrong.headers["Allow"]


def test_an_unreadable_kubeconfig_stops_the_factory(tmp_path):
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nclusters: []\ncontexts: []\ncurrent-context: nowhere\n")
    with pytest.raises(ConfigError, match="cannot load the kubeconfig cluster configuration"):
        create_app({"backend": "kubeconfig", "kubeconfig": str(broken)})


def test_every_setting_is_documented_in_the_readme():
    from dataclasses import fields
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    undocumented = [f.name for f in fields(Settings) if f"RUNAI_SUBMIT_{f.name.upper()}" not in readme]
    assert undocumented == []


def test_every_variable_gunicorn_conf_reads_is_documented_in_the_readme():
    import re
    from pathlib import Path

    root = Path(__file__).parent.parent
    readme = root.joinpath("README.md").read_text()
    read = set(re.findall(r"""_env\(\s*["']([A-Z_]+)["']""", root.joinpath("gunicorn.conf.py").read_text()))
    assert {"WEB_CONCURRENCY", "RUNAI_SUBMIT_KEEPALIVE", "PROMETHEUS_MULTIPROC_DIR"} <= read  # the pattern finds them
    assert sorted(name for name in read if f"`{name}`" not in readme) == []
