"""What the benchmark submits: the same two jobs as the tests (``tests/golden/*-request.json``).

- **seed**: the seed page's example (one workload);
- **maximal**: every parameter family at once minus ``name`` (a workload, a new PVC, a ClusterIP Service
  and an Ingress per submit; ``serviceType: ingress`` has no node ports, so thousands never collide).
Neither has a ``name``: the service generates one per submit, so nothing collides.
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"

SEED_JOB = json.loads((GOLDEN / "seed-request.json").read_text())["job"]
MAXIMAL_JOB = {key: value for key, value in json.loads((GOLDEN / "maximal-request.json").read_text())["job"].items()
               if key != "name"}

JOBS = {"seed": SEED_JOB, "maximal": MAXIMAL_JOB}
EXPECTED_KINDS = {"seed": 1, "maximal": 4}

BENCH_USER = "runai-submit-bench"   # RA-USER; becomes label runai/user=runai-submit-bench on every object
BENCH_SELECTOR = f"runai/user={BENCH_USER},app.kubernetes.io/managed-by=runai-submit"
MANAGED_SELECTOR = "app.kubernetes.io/managed-by=runai-submit"  # every object the service made, whoever's

#: REST collection of each kind the service creates.
PLURALS = {
    "RunaiJob": "runaijobs",
    "Job": "jobs",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Service": "services",
    "Ingress": "ingresses",
}
#: What a clean-up by label deletes, dependents first.
CLEANUP_KINDS = (("networking.k8s.io/v1", "Ingress"), ("v1", "Service"), ("v1", "PersistentVolumeClaim"),
                 ("run.ai/v1", "RunaiJob"), ("batch/v1", "Job"))


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    root = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    return f"{root}/namespaces/{namespace}/{PLURALS[kind]}"


def job_in(job: str, project: str) -> dict:
    """A copy of job ``job`` submitted into ``project``."""
    return {**JOBS[job], "project": project}
