"""The real-cluster fixture itself: what a clone without ../shared/kube sees, and a kit that fails to start.

Each case runs the real-cluster smoke test in a pytest of its own, with the kit looked for elsewhere
(``RUNAI_SUBMIT_TEST_KIT``) and no ``RUNAI_SUBMIT_TEST_KUBECONFIG``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import kube_kit

pytestmark = pytest.mark.slow


def run_smoke_test(kit: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, kube_kit.KIT_ENV: str(kit)}
    env.pop(kube_kit.KUBECONFIG_ENV, None)
    return subprocess.run([sys.executable, "-m", "pytest", "-rs", "tests/test_real_smoke.py"], cwd=kube_kit.ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


def test_without_a_cluster_the_real_tests_are_skipped_with_a_way_to_get_one(tmp_path):
    result = run_smoke_test(tmp_path / "no-kit-here")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    # the reason names both ways to get a cluster
    assert kube_kit.KUBECONFIG_ENV in result.stdout and str(tmp_path / "no-kit-here") in result.stdout


def test_a_kit_that_fails_to_start_is_an_error_not_a_skip(tmp_path):
    kit = tmp_path / "broken-kit"
    kit.mkdir()
    (kit / "start").write_text("#!/bin/sh\necho \"etcd: address already in use (try $(ls $1 | wc -l))\" >&2\n"
                               "touch $1/started-$$\nexit 3\n")
    (kit / "stop").write_text("#!/bin/sh\nrm -f \"$2\"/started-*\n")  # stop --purge DIR
    for script in ("start", "stop"):
        (kit / script).chmod(0o755)

    result = run_smoke_test(kit)

    assert result.returncode != 0
    assert "1 error" in result.stdout and "etcd: address already in use" in result.stdout
    # a failed start is purged and tried once more (a loaded machine has made a component exit once)
    assert result.stdout.count("etcd: address already in use (try 0)") == kube_kit.KIT_START_ATTEMPTS


def test_a_kubeconfig_that_is_not_there_is_said_plainly(tmp_path, monkeypatch):
    monkeypatch.setenv(kube_kit.KUBECONFIG_ENV, str(tmp_path / "missing"))
    with pytest.raises(RuntimeError, match="is not a file"):
        kube_kit.connect_env()
