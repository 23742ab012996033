"""deploy/ ships the admin policy as a ConfigMap, mounted so that an update reaches the running pods."""
from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from runai_submit.schemas.policy import load_policy_text
from tests.test_deploy import EXAMPLE, KUSTOMIZATION_IDS, KUSTOMIZATIONS, container_of, only, render


def _environment(container: dict) -> dict[str, str]:
    return {variable["name"]: variable["value"] for variable in container.get("env", []) if "value" in variable}


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_the_policy_file_is_the_mounted_configmap(folder):
    objects = render(folder)
    deployment = only(objects, "Deployment")
    container = container_of(deployment)
    policy_file = PurePosixPath(_environment(container)["RUNAI_SUBMIT_POLICY_FILE"])
    volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
    (mount,) = [m for m in container["volumeMounts"] if policy_file.is_relative_to(m["mountPath"])]

    assert "subPath" not in mount, "a subPath mount never sees a ConfigMap update"
    assert mount.get("readOnly") is True
    config_map = volumes[mount["name"]]["configMap"]["name"]
    (policy,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == config_map]
    key = str(policy_file.relative_to(mount["mountPath"]))
    load_policy_text(policy["data"][key])  # raises PolicyInvalid, with every problem, if it is not valid


def test_the_example_overlay_ships_the_issues_policy():
    (policy,) = [o for o in render(EXAMPLE) if o["kind"] == "ConfigMap"
                 and o["metadata"]["name"] == "runai-submit-policy"]
    loaded = load_policy_text(policy["data"]["policy.yaml"])
    assert loaded.effective("team-a").to_dict()["rules"]["gpu"] == {"max": 8}
    assert loaded.effective("team-b").to_dict()["rules"]["gpu"] == {"max": 4}
