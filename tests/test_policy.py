"""Admin policy: defaults and rules per field at cluster and project scope (issue 10).

Tables of policies x jobs -> accepted (with the manifests the defaults shaped) or rejected (every pointer
and message at once); project overrides; imposed values; the policy file's own validation; reloading the
file (changed, broken, swapped like a ConfigMap volume); and the effective-policy endpoint.
Submits go through the whole stack to the fake API server; the store's reload is driven by a fake clock.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from runai_submit.app import create_app
from runai_submit.errors import ConfigError
from runai_submit.schemas.policy import PolicyInvalid, load_policy_text
from runai_submit.service.policy import PolicyStore
from tests.conftest import TEAM_A, TEAM_B, make_app, submit
from tests.kube_kit import wait_until

# The issue's own example policy.
ISSUE_POLICY = """
defaults:
  cpu: 0.5
  memory: 1Gi
rules:
  gpu: {max: 4}
  image: {prefixes: ["nvcr.io/", "registry.example.com/"]}
  nodeType: {options: [a100, h100]}
  hostNetwork: {canEdit: false}
  volume: {canEdit: false}
  ttlAfterFinish: {required: true, max: 7d}
projects:
  team-a:
    rules: {gpu: {max: 8}}
    defaults: {}
"""

# A job that satisfies ISSUE_POLICY in team-b (the namespace "science"); cases change it.
GOOD = {"project": "team-b", "image": "nvcr.io/nvidia/pytorch:24.01-py3", "gpu": 2, "ttlAfterFinish": "2d"}


def policy_app(fake_api, tmp_path: Path, text: str, **settings):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return make_app(fake_api, tmp_path, policy_file=str(path), **settings)


def workloads(fake_api) -> list[dict]:
    return fake_api.objects("RunaiJob")


def container_of(workload: dict) -> dict:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def errors_of(response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.json
    return [(error["field"], error["message"]) for error in response.json["errors"]]


# --- the issue's policy: accepted jobs, with what the defaults filled in -----------------------------

ACCEPTED = [
    pytest.param({}, ["cpu", "memory"], {"requests": {"cpu": "0.5", "memory": "1Gi"},
                                         "limits": {"nvidia.com/gpu": "2"}}, id="defaults-fill-cpu-and-memory"),
    pytest.param({"cpu": 2}, ["memory"], {"requests": {"cpu": "2", "memory": "1Gi"},
                                          "limits": {"nvidia.com/gpu": "2"}}, id="a-given-value-wins"),
    pytest.param({"gpu": 4, "memory": "2GB"}, ["cpu"], {"requests": {"cpu": "0.5", "memory": "2G"},
                                                        "limits": {"nvidia.com/gpu": "4"}}, id="gpu-at-the-max"),
    pytest.param({"project": "team-a", "gpu": 8}, ["cpu", "memory"],
                 {"requests": {"cpu": "0.5", "memory": "1Gi"}, "limits": {"nvidia.com/gpu": "8"}},
                 id="project-rule-replaces-cluster-rule"),
    pytest.param({"image": "registry.example.com/team/train:1", "nodeType": "h100", "ttlAfterFinish": 604800},
                 ["cpu", "memory"], None, id="prefix-option-and-duration-at-the-max"),
    pytest.param({"hostNetwork": False, "volume": {}, "volumes": []}, ["cpu", "memory"], None,
                 id="repeating-the-unset-value-of-a-locked-field-is-fine"),
]


@pytest.mark.parametrize(("change", "defaulted", "resources"), ACCEPTED)
def test_issue_policy_accepts(fake_api, tmp_path, change, defaulted, resources):
    client = policy_app(fake_api, tmp_path, ISSUE_POLICY).test_client()

    response = submit(client, {**GOOD, **change})

    assert response.status_code == 200, response.json
    assert response.json["defaulted"] == defaulted
    (workload,) = workloads(fake_api)
    if resources is not None:
        assert container_of(workload)["resources"] == resources


REJECTED = [
    pytest.param({"gpu": 5}, [("/job/gpu", "at most 4 GPUs per job in project team-b (policy)")], id="gpu-over-max"),
    pytest.param({"project": "team-a", "gpu": 9},
                 [("/job/gpu", "at most 8 GPUs per job in project team-a (project policy)")], id="project-max"),
    pytest.param({"image": "docker.io/library/python:3"},
                 [("/job/image", "must start with one of nvcr.io/, registry.example.com/ in project team-b (policy)")],
                 id="image-prefix"),
    pytest.param({"nodeType": "v100"}, [("/job/nodeType", "must be one of a100, h100 in project team-b (policy)")],
                 id="option"),
    pytest.param({"hostNetwork": True}, [("/job/hostNetwork", "may not be set in project team-b (policy)")],
                 id="cannot-edit"),
    pytest.param({"volume": {"/data": "/data"}}, [("/job/volume", "may not be set in project team-b (policy)")],
                 id="no-host-paths"),
    pytest.param({"volumes": ["/data:/data:ro"]}, [("/job/volumes", "may not be set in project team-b (policy)")],
                 id="volume-rule-covers-volumes"),
    pytest.param({"ttlAfterFinish": None}, [("/job/ttlAfterFinish", "is required in project team-b (policy)")],
                 id="required"),
    pytest.param({"ttlAfterFinish": "7d1s"}, [("/job/ttlAfterFinish", "at most 7d in project team-b (policy)")],
                 id="duration-over-max"),
    pytest.param({"gpu": 5, "image": "docker.io/x", "hostNetwork": True, "ttlAfterFinish": None, "cpu": "one"}, [
        ("/job/cpu", "must be a number"),
        ("/job/hostNetwork", "may not be set in project team-b (policy)"),
        ("/job/ttlAfterFinish", "is required in project team-b (policy)"),
        ("/job/gpu", "at most 4 GPUs per job in project team-b (policy)"),
        ("/job/image", "must start with one of nvcr.io/, registry.example.com/ in project team-b (policy)"),
    ], id="every-problem-at-once-with-the-schemas"),
]


@pytest.mark.parametrize(("change", "expected"), REJECTED)
def test_issue_policy_rejects_with_pointers_and_messages(fake_api, tmp_path, change, expected):
    client = policy_app(fake_api, tmp_path, ISSUE_POLICY).test_client()

    response = submit(client, {key: value for key, value in {**GOOD, **change}.items() if value is not None})

    assert errors_of(response) == expected
    assert response.json["message"].startswith("The job is not valid")
    assert workloads(fake_api) == []  # nothing created


def test_a_rejected_dry_run_creates_nothing_either(fake_api, tmp_path):
    client = policy_app(fake_api, tmp_path, ISSUE_POLICY).test_client()
    response = submit(client, {**GOOD, "gpu": 5}, query="?dryRun=true")
    assert errors_of(response) == [("/job/gpu", "at most 4 GPUs per job in project team-b (policy)")]
    assert not [request for request in fake_api.requests if request[0] == "POST"]


def test_dry_run_shows_the_defaults_in_the_manifests(fake_api, tmp_path):
    client = policy_app(fake_api, tmp_path, ISSUE_POLICY).test_client()

    response = submit(client, GOOD, query="?dryRun=true")

    assert response.status_code == 200, response.json
    assert response.json["defaulted"] == ["cpu", "memory"]
    (manifest,) = response.json["manifests"]
    assert container_of(manifest)["resources"]["requests"] == {"cpu": "0.5", "memory": "1Gi"}
    assert manifest["spec"]["ttlSecondsAfterFinished"] == 2 * 86400
    assert workloads(fake_api) == []


# --- rules of every kind: quantities, nested fields, booleans, numbers --------------------------------

KINDS_POLICY = """
rules:
  memory: {min: 512Mi, max: 8Gi}
  cpu: {min: 0.25, max: 16}
  pvc.size: {max: 100Gi}
  pvc.storageClass: {options: [fast, standard]}
  volume.sourcePath: {prefixes: [/datasets/]}
  ports.container: {min: 1024}
  interactive: {options: [false]}
  imagePullPolicy: {options: [IfNotPresent]}
"""
BASE = {"project": "team-a", "image": "nvcr.io/x:1"}

KIND_CASES = [
    pytest.param({"memory": "8192Mi"}, [], id="quantities-compare-by-amount"),
    pytest.param({"memory": "9GB"}, [("/job/memory", "at most 8Gi in project team-a (policy)")], id="GB-normalised"),
    pytest.param({"memory": "100Mi"}, [("/job/memory", "at least 512Mi in project team-a (policy)")], id="min"),
    pytest.param({"cpu": 0.1}, [("/job/cpu", "at least 0.25 CPUs in project team-a (policy)")], id="number-min"),
    pytest.param({"pvc": [{"size": "200Gi", "path": "/data", "storageClass": "fast"}, {"claimName": "big",
                                                                                     "path": "/big"}]},
                 [("/job/pvc/0/size", "at most 100Gi in project team-a (policy)")], id="nested-max"),
    pytest.param({"pvc": ["slow:10Gi:/data", "shared:/shared:ro"]},
                 [("/job/pvc/0", "must be one of fast, standard in project team-a (policy)")],
                 id="nested-rule-on-a-string-item-points-at-the-item"),
    pytest.param({"volume": {"/datasets/imagenet": "/data", "/etc": "/host-etc"}},
                 [("/job/volume/~1etc", "must start with one of /datasets/ in project team-a (policy)")],
                 id="volume-map-items"),
    pytest.param({"volumes": [{"sourcePath": "/home/x", "targetPath": "/x"}]},
                 [("/job/volumes/0/sourcePath", "must start with one of /datasets/ in project team-a (policy)")],
                 id="volume-rule-reaches-volumes"),
    pytest.param({"ports": [8080, "80:443", {"container": 22}]},
                 [("/job/ports/1", "at least 1024 in project team-a (policy)"),
                  ("/job/ports/2/container", "at least 1024 in project team-a (policy)")], id="ports"),
    pytest.param({"interactive": True}, [("/job/interactive", "must be one of false in project team-a (policy)")],
                 id="boolean-option"),
    pytest.param({"imagePullPolicy": "ifnotpresent"}, [], id="choices-compare-canonically"),
    pytest.param({"imagePullPolicy": "Always"},
                 [("/job/imagePullPolicy", "must be one of IfNotPresent in project team-a (policy)")], id="choice"),
    pytest.param({"memory": "lots", "cpu": 0.1},
                 [("/job/memory", "must be a quantity such as 512Mi, 4Gi, 3G or 3GB"),
                  ("/job/cpu", "at least 0.25 CPUs in project team-a (policy)")],
                 id="a-value-the-schema-refuses-is-left-to-the-schema"),
]


@pytest.mark.parametrize(("change", "expected"), KIND_CASES)
def test_rules_judge_values_as_the_job_field_means_them(fake_api, tmp_path, change, expected):
    client = policy_app(fake_api, tmp_path, KINDS_POLICY).test_client()

    response = submit(client, {**BASE, **change})

    if expected:
        assert errors_of(response) == expected
        assert workloads(fake_api) == []
    else:
        assert response.status_code == 200, response.json
        assert response.json["defaulted"] == []


# --- imposed values: a default plus canEdit: false -------------------------------------------------------

IMPOSED_POLICY = """
defaults: {imagePullPolicy: IfNotPresent, preventPrivilegeEscalation: true, backoffLimit: 2, cpu: 1, cpuLimit: 2}
rules:
  imagePullPolicy: {canEdit: false}
  preventPrivilegeEscalation: {canEdit: false}
projects:
  team-a:
    defaults: {imagePullPolicy: Never}
"""


def test_a_default_the_job_may_not_change_is_imposed(fake_api, tmp_path):
    client = policy_app(fake_api, tmp_path, IMPOSED_POLICY).test_client()

    response = submit(client, {"project": "team-b", "image": "x"})

    assert response.status_code == 200, response.json
    assert response.json["defaulted"] == ["imagePullPolicy", "preventPrivilegeEscalation", "backoffLimit", "cpu",
                                          "cpuLimit"]
    (workload,) = workloads(fake_api)
    container = container_of(workload)
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["securityContext"] == {"allowPrivilegeEscalation": False}
    assert workload["spec"]["backoffLimit"] == 2


def test_repeating_the_imposed_value_is_accepted_and_is_not_a_default(fake_api, tmp_path):
    client = policy_app(fake_api, tmp_path, IMPOSED_POLICY).test_client()
    response = submit(client, {"project": "team-b", "image": "x", "imagePullPolicy": "ifNotPresent"})
    assert response.status_code == 200, response.json
    assert "imagePullPolicy" not in response.json["defaulted"]


def test_another_value_than_the_imposed_one_is_refused_naming_it(fake_api, tmp_path):
    client = policy_app(fake_api, tmp_path, IMPOSED_POLICY).test_client()

    response = submit(client, {"project": "team-a", "image": "x", "imagePullPolicy": "Always",
                               "preventPrivilegeEscalation": False})

    assert errors_of(response) == [
        ("/job/imagePullPolicy", "may not be set in project team-a: the policy sets it to Never (policy)"),
        ("/job/preventPrivilegeEscalation", "may not be set in project team-a: the policy sets it to true (policy)"),
    ]


def test_defaults_apply_only_where_the_field_means_something(fake_api, tmp_path):
    """backoffLimit is for training jobs: an interactive job is never retried (contract §3)."""
    client = policy_app(fake_api, tmp_path, IMPOSED_POLICY).test_client()

    response = submit(client, {"project": "team-b", "image": "x", "interactive": True})

    assert response.status_code == 200, response.json
    assert "backoffLimit" not in response.json["defaulted"]
    (workload,) = workloads(fake_api)
    assert workload["spec"]["backoffLimit"] == 0


def test_defaults_judge_where_they_apply_whatever_their_order(fake_api, tmp_path):
    text = "defaults: {backoffLimit: 3, serviceType: ingress, preemptible: true, interactive: true, ports: [8888]}"
    client = policy_app(fake_api, tmp_path, text).test_client()

    response = submit(client, {"project": "team-a", "image": "x"}, query="?dryRun=true")

    assert response.status_code == 200, response.json
    assert response.json["defaulted"] == ["serviceType", "preemptible", "interactive", "ports"]
    workload = response.json["manifests"][0]
    assert workload["spec"]["backoffLimit"] == 0
    assert workload["metadata"]["labels"]["priorityClassName"] == "interactive-preemptible"
    assert [m["kind"] for m in response.json["manifests"]] == ["RunaiJob", "Service", "Ingress"]


def test_a_default_that_clashes_with_the_job_says_it_is_a_default(fake_api, tmp_path):
    client = policy_app(fake_api, tmp_path, IMPOSED_POLICY).test_client()

    response = submit(client, {"project": "team-b", "image": "x", "cpu": 4})

    assert errors_of(response) == [("/job/cpuLimit", "must be at least cpu (4) (the value is the policy's default)")]
    assert "defaults of the policy filled in: imagePullPolicy, preventPrivilegeEscalation, backoffLimit, cpuLimit" \
        in response.json["details"]


def test_project_defaults_override_the_clusters_and_project_rules_replace_them(fake_api, tmp_path):
    text = """
defaults: {cpu: 1, memory: 1Gi, volume: {/datasets: /datasets}}
rules: {gpu: {max: 2, required: true}, memory: {max: 4Gi}}
projects:
  team-a:
    defaults: {cpu: 4, volumes: ["/scratch:/scratch"]}
    rules: {gpu: {}, memory: {max: 64Gi}}
"""
    client = policy_app(fake_api, tmp_path, text).test_client()

    in_a = submit(client, {"project": "team-a", "image": "x", "memory": "32Gi"})
    in_b = submit(client, {"project": "team-b", "image": "x", "memory": "32Gi"})

    assert in_a.status_code == 200, in_a.json  # gpu: {} lifts both the max and the requirement
    assert in_a.json["defaulted"] == ["cpu", "volumes"]
    (workload,) = workloads(fake_api)
    assert container_of(workload)["resources"]["requests"] == {"cpu": "4", "memory": "32Gi"}
    assert [v["hostPath"]["path"] for v in workload["spec"]["template"]["spec"]["volumes"]] == ["/scratch"]
    assert errors_of(in_b) == [("/job/gpu", "is required in project team-b (policy)"),
                               ("/job/memory", "at most 4Gi in project team-b (policy)")]


def test_required_fields_the_schema_requires_anyway_are_reported_once(fake_api, tmp_path):
    client = policy_app(fake_api, tmp_path, "rules: {image: {required: true}}").test_client()
    response = submit(client, {"project": "team-a"})
    assert errors_of(response) == [("/job/image", "is required")]


def test_an_invalid_project_is_judged_by_the_cluster_wide_policy(fake_api, tmp_path):
    client = policy_app(fake_api, tmp_path, ISSUE_POLICY).test_client()
    response = submit(client, {**GOOD, "project": "Team_B", "gpu": 5})
    assert errors_of(response) == [
        ("/job/project", "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a "
                         "letter or digit"),
        ("/job/gpu", "at most 4 GPUs per job cluster-wide (policy)"),
    ]


def test_no_policy_file_means_no_policy(fake_api, tmp_path):
    client = make_app(fake_api, tmp_path).test_client()
    response = submit(client, {"project": "team-a", "image": "docker.io/x", "gpu": 64, "hostNetwork": True})
    assert response.status_code == 200, response.json
    assert response.json["defaulted"] == []
    assert client.get("/api/v1/policy?project=team-a").json == {"project": "team-a", "defaults": {}, "rules": {}}


def test_the_offline_backend_applies_the_policy_too(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(ISSUE_POLICY)
    client = create_app({"backend": "offline", "offline_dir": str(tmp_path / "offline"),
                         "policy_file": str(path)}).test_client()

    refused = submit(client, {**GOOD, "gpu": 5})
    accepted = submit(client, GOOD)

    assert errors_of(refused) == [("/job/gpu", "at most 4 GPUs per job in project team-b (policy)")]
    assert accepted.status_code == 200, accepted.json
    assert accepted.json["defaulted"] == ["cpu", "memory"]
    (written,) = (tmp_path / "offline" / "runai-team-b" / "runaijobs").glob("*.yaml")
    assert "memory: 1Gi" in written.read_text()


# --- the effective policy ------------------------------------------------------------------------------


def test_effective_policy_merges_project_over_cluster(fake_api, tmp_path):
    text = ISSUE_POLICY + "  team-c:\n    defaults: {cpu: 2, gpu: 1}\n"
    client = policy_app(fake_api, tmp_path, text).test_client()

    team_a = client.get("/api/v1/policy?project=team-a")
    team_c = client.get("/api/v1/policy?project=team-c")
    cluster = client.get("/api/v1/policy")

    assert team_a.status_code == 200
    assert team_a.json == {
        "project": "team-a",
        "defaults": {"cpu": 0.5, "memory": "1Gi"},
        "rules": {"gpu": {"max": 8}, "image": {"prefixes": ["nvcr.io/", "registry.example.com/"]},
                  "nodeType": {"options": ["a100", "h100"]}, "hostNetwork": {"canEdit": False},
                  "volume": {"canEdit": False}, "ttlAfterFinish": {"required": True, "max": "7d"}},
    }
    assert team_c.json["defaults"] == {"cpu": 2, "memory": "1Gi", "gpu": 1}
    assert team_c.json["rules"]["gpu"] == {"max": 4}
    assert cluster.json["project"] is None
    assert cluster.json["rules"]["gpu"] == {"max": 4}


def test_effective_policy_refuses_a_bad_project_name(fake_api, tmp_path):
    client = policy_app(fake_api, tmp_path, ISSUE_POLICY).test_client()
    response = client.get("/api/v1/policy?project=Not_A_Project")
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "/project"


# --- the policy file is validated like a job: every problem, each with a pointer -----------------------

BAD_FILES = [
    pytest.param("rules: [gpu]", ["/rules: must be a map of job field names"], id="rules-not-a-map"),
    pytest.param("rule: {gpu: {max: 4}}", ["/rule: is not a policy key (the file has defaults, rules and projects)"],
                 id="unknown-top-level-key"),
    pytest.param("- gpu", ["/: the policy must be a map with defaults, rules and projects"], id="not-a-map"),
    pytest.param("rules: {gpu: {max: 4}\n", ["line 2, column 1: not valid YAML: expected ',' or '}', but got "
                                             "'<stream end>'"], id="yaml-syntax"),
    pytest.param("rules:\n  gpu: {max: 4}\n  gpu: {max: 8}\n",
                 ["line 3, column 3: not valid YAML: the key 'gpu' is given twice"], id="duplicate-keys"),
    pytest.param("""
defaults: {gpus: 1, name: x, cpu: -1, memory: 3XB, volume: {/a: /b}, volumes: [], cpuLimit: null}
rules:
  gpu: {max: four, min: 2}
  hostNetwork: {max: 1, prefixes: [x]}
  nodeType: {options: [a100, "no spaces"], min: 1}
  image: {prefixes: [], canEdit: false, required: true}
  pvc.size: {min: 10Gi, max: 1Gi}
  pvc.sizes: {}
  volumes.sourcePath: {prefixes: [/data]}
  volume.sourcePath: {prefixes: [/x]}
  environment: {options: [{A: b}]}
  memory: {max: 1Gi, maximum: 2Gi}
  cpu: 4
projects:
  Team_A: {}
  team-b: {rule: {}, defaults: {ttlAfterFinish: 1x}}
""", [
        "/rules/memory/maximum: is not a rule key (required, canEdit, min, max, options, prefixes)",
        "/rules/cpu: must be a map of rule keys: required, canEdit, min, max, options, prefixes",
        "/projects/team-b/rule: is not a key of a project's policy (it has defaults and rules)",
        "/defaults/gpus: is not a job field (check its spelling; nested fields take no default)",
        "/defaults/name: a default cannot give the job's name",
        "/defaults/cpu: must be > 0",
        "/defaults/memory: must be a quantity such as 512Mi, 4Gi, 3G or 3GB",
        "/defaults/volumes: volume and volumes are the same field: give one",
        "/defaults/cpuLimit: may not be null (leave the default out instead)",
        "/rules/gpu/max: must be a number",
        "/rules/hostNetwork/max: applies to numbers, quantities and durations; hostNetwork is a boolean",
        "/rules/hostNetwork/prefixes: applies to strings; hostNetwork is a boolean",
        "/rules/nodeType/min: applies to numbers, quantities and durations; nodeType is a string",
        "/rules/nodeType/options/1: must be a label value: letters, digits, '-', '_' and '.', starting and ending "
        "with a letter or digit",
        "/rules/image/prefixes: must list at least one prefix",
        "/rules/image/canEdit: a required field the job may not set could never be given",
        "/rules/pvc.size/max: must be at least min (10Gi)",
        "/rules/pvc.sizes: is not a job field (check its spelling; nested fields read pvc.size)",
        "/rules/volume.sourcePath: volumes.sourcePath and volume.sourcePath are the same field: give one rule",
        "/rules/environment/options: applies to single values; environment is a list or map",
        "/projects/Team_A: a project name must be a DNS-1123 label: lowercase letters, digits and '-', starting "
        "and ending with a letter or digit",
        "/projects/team-b/defaults/ttlAfterFinish: must be a duration such as 90s, 1h30m or 2d, or whole seconds",
    ], id="every-problem-at-once"),
    pytest.param("""
defaults: {gpu: 8, nodeType: v100, pvc: [{size: 1Ti, path: /data}]}
rules: {gpu: {max: 4}, pvc.size: {max: 100Gi}}
projects:
  team-a: {rules: {gpu: {max: 8}, nodeType: {options: [a100]}}}
  team-b: {defaults: {gpu: 6}, rules: {gpu: {max: 5}}}
""", [
        "/defaults/gpu: the default breaks a rule: at most 4 GPUs per job cluster-wide (policy)",
        "/defaults/pvc/0/size: the default breaks a rule: at most 100Gi cluster-wide (policy)",
        "/defaults/nodeType: the default breaks a rule: must be one of a100 in project team-a (project policy)",
        "/projects/team-b/defaults/gpu: the default breaks a rule: at most 5 GPUs per job in project team-b "
        "(project policy)",
    ], id="defaults-must-satisfy-the-rules-of-every-scope"),
]


@pytest.mark.parametrize(("text", "problems"), BAD_FILES)
def test_a_bad_policy_file_lists_every_problem(text, problems):
    with pytest.raises(PolicyInvalid) as caught:
        load_policy_text(text)
    assert caught.value.problems == problems


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "{}", "defaults:\nrules:\nprojects:\n"])
def test_an_empty_policy_file_is_no_policy(text):
    assert load_policy_text(text).empty


def test_a_bad_policy_file_stops_the_service_with_its_problems(fake_api, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("rules: {gpu: {max: four}, hostNetwork: {min: 1}}")
    with pytest.raises(ConfigError) as caught:
        make_app(fake_api, tmp_path, policy_file=str(path))
    assert caught.value.problems == [
        f"policy_file {str(path)!r}: /rules/gpu/max: must be a number",
        f"policy_file {str(path)!r}: /rules/hostNetwork/min: applies to numbers, quantities and durations; "
        "hostNetwork is a boolean",
    ]


def test_a_missing_policy_file_stops_the_service(fake_api, tmp_path):
    with pytest.raises(ConfigError, match="cannot be read: No such file or directory"):
        make_app(fake_api, tmp_path, policy_file=str(tmp_path / "absent.yaml"))


# --- reloading ---------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reloads(result: str) -> float:
    return REGISTRY.get_sample_value("runai_submit_policy_reloads_total", {"result": result}) or 0.0


def gpu_max(store: PolicyStore) -> object:
    rule = store.current().effective("team-a").rules.get("gpu")
    return rule.source.get("max") if rule else None


@pytest.fixture
def watched(tmp_path):
    """A policy file (gpu at most 4), its store checking every 5 s, and the store's clock."""
    path = tmp_path / "policy.yaml"
    path.write_text("rules: {gpu: {max: 4}}")
    clock = Clock()
    return path, clock, PolicyStore(str(path), 5.0, clock=clock)


def test_a_changed_file_is_read_once_the_check_is_due(watched):
    path, clock, store = watched
    ok_before = reloads("ok")

    path.write_text("rules: {gpu: {max: 6}}")
    clock.now += 4.9
    assert gpu_max(store) == 4  # not due yet: the file is not even looked at
    clock.now += 0.2
    assert gpu_max(store) == 6
    assert reloads("ok") == ok_before + 1
    clock.now += 5.1
    assert gpu_max(store) == 6  # unchanged file: nothing reloaded
    assert reloads("ok") == ok_before + 1


def test_a_broken_file_keeps_the_last_good_policy_logs_an_error_and_counts_it(watched, caplog):
    path, clock, store = watched
    errors_before = reloads("error")

    path.write_text("rules: {gpu: {max: four}, cpu: {options: []}}")
    clock.now += 5
    with caplog.at_level(logging.ERROR, logger="runai_submit.service.policy"):
        assert gpu_max(store) == 4
        clock.now += 5
        assert gpu_max(store) == 4  # the same bad version is not judged (or reported) again

    assert reloads("error") == errors_before + 1
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "keeping the last good policy" in record.getMessage()
    assert "/rules/gpu/max: must be a number" in record.getMessage()
    assert "/rules/cpu/options: must list at least one value" in record.getMessage()

    path.write_text("rules: {gpu: {max: 2}}")  # fixed
    clock.now += 5
    assert gpu_max(store) == 2


def test_a_vanished_file_keeps_the_last_good_policy_and_is_reported_once(watched, caplog):
    path, clock, store = watched
    errors_before = reloads("error")

    path.unlink()
    with caplog.at_level(logging.ERROR, logger="runai_submit.service.policy"):
        for _ in range(3):
            clock.now += 5
            assert gpu_max(store) == 4
    assert reloads("error") == errors_before + 1
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1

    path.write_text("rules: {gpu: {max: 3}}")
    clock.now += 5
    assert gpu_max(store) == 3


def test_a_file_that_vanishes_again_after_coming_back_unchanged_is_reported_again(watched, caplog):
    path, clock, store = watched
    errors_before = reloads("error")
    good = path.read_text()

    with caplog.at_level(logging.ERROR, logger="runai_submit.service.policy"):
        for _ in range(2):
            path.unlink()
            clock.now += 5
            assert gpu_max(store) == 4
            path.write_text(good)  # back, the same as the last good version
            clock.now += 5
            assert gpu_max(store) == 4

    assert reloads("error") == errors_before + 2
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2


def test_a_configmap_volume_update_is_seen(tmp_path):
    """The kubelet's atomic writer: policy.yaml -> ..data/policy.yaml, ..data -> a timestamped folder,
    and an update swaps ..data (rename over it), never touching the path the service opens."""
    mount = tmp_path / "policy"
    mount.mkdir()

    def publish(version: str, text: str) -> None:
        folder = mount / f"..2026_01_01_00_00_0{version}.1"
        folder.mkdir()
        (folder / "policy.yaml").write_text(text)
        link = mount / "..data_tmp"
        link.symlink_to(folder.name)
        os.replace(link, mount / "..data")

    publish("1", "rules: {gpu: {max: 4}}")
    (mount / "policy.yaml").symlink_to("..data/policy.yaml")
    clock = Clock()
    store = PolicyStore(str(mount / "policy.yaml"), 5.0, clock=clock)
    before = os.lstat(mount / "policy.yaml")

    publish("2", "rules: {gpu: {max: 7}}")
    clock.now += 5

    assert gpu_max(store) == 7
    assert os.lstat(mount / "policy.yaml").st_mtime_ns == before.st_mtime_ns  # the path itself never changed


def test_the_service_applies_a_changed_policy_without_a_restart(fake_api, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("rules: {gpu: {max: 4}}")
    client = make_app(fake_api, tmp_path, policy_file=str(path), policy_reload_seconds=0.05).test_client()
    job = {"project": "team-a", "image": "x", "gpu": 6}
    assert errors_of(submit(client, job)) == [("/job/gpu", "at most 4 GPUs per job in project team-a (policy)")]

    path.write_text("rules: {gpu: {max: 8}}")
    response = wait_until(lambda: (r := submit(client, job)).status_code == 200 and r, "the new policy to apply",
                          timeout=30, interval=0.05)
    assert response.json["name"]

    errors_before = reloads("error")
    path.write_text("rules: {gpu: {max: one}}")  # broken: the last good policy (max 8) stays
    wait_until(lambda: submit(client, job) and reloads("error") > errors_before, "the broken file to be seen",
               timeout=30, interval=0.05)
    response = submit(client, {**job, "gpu": 9})
    assert errors_of(response) == [("/job/gpu", "at most 8 GPUs per job in project team-a (policy)")]


@pytest.mark.parametrize("namespace", [TEAM_A, TEAM_B])
def test_the_policy_names_projects_not_namespaces(fake_api, tmp_path, namespace):
    """team-a lives in runai-team-a and team-b in "science": the scope is the project either way."""
    project = "team-a" if namespace == TEAM_A else "team-b"
    client = policy_app(fake_api, tmp_path, f"projects: {{{project}: {{rules: {{gpu: {{max: 1}}}}}}}}").test_client()
    response = submit(client, {"project": project, "image": "x", "gpu": 2})
    assert errors_of(response) == [("/job/gpu", f"at most 1 GPU per job in project {project} (project policy)")]


def test_the_readme_example_answers_as_documented(fake_api, tmp_path):
    client = policy_app(fake_api, tmp_path, ISSUE_POLICY).test_client()

    refused = submit(client, {"project": "team-b", "image": "docker.io/me/train", "gpu": 6, "hostNetwork": True})
    accepted = submit(client, {"project": "team-b", "image": "nvcr.io/nvidia/pytorch:24.01-py3", "gpu": 2,
                               "ttlAfterFinish": "2d"})

    assert refused.json["message"] == "The job is not valid (4 problems)."
    assert errors_of(refused) == [
        ("/job/hostNetwork", "may not be set in project team-b (policy)"),
        ("/job/ttlAfterFinish", "is required in project team-b (policy)"),
        ("/job/gpu", "at most 4 GPUs per job in project team-b (policy)"),
        ("/job/image", "must start with one of nvcr.io/, registry.example.com/ in project team-b (policy)"),
    ]
    assert (accepted.json["defaulted"], accepted.json["warnings"]) == (["cpu", "memory"], [])
