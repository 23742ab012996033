"""Validate rendered manifests against the official Kubernetes 1.37 JSON schemas (strict: no unknown fields).

``run.ai/v1 RunaiJob`` has no published schema; the CRD has the shape of a ``batch/v1 Job``, so a RunaiJob is
validated as a copy of itself with the Job's apiVersion and kind.

The slow part of ``kubernetes_validate.validate`` is re-reading and parsing the schema files (the 1.8 MB
``_definitions.json``) on every call; they are read once here. Results are cached per manifest as well, since
parametrised tests render many identical objects.
"""
from __future__ import annotations

import copy
import functools
import json

import kubernetes_validate
import kubernetes_validate.utils as _kv_utils

K8S_VERSION = "1.37.0"
RUNAI_JOB = ("run.ai/v1", "RunaiJob")
JOB = ("batch/v1", "Job")

if not getattr(_kv_utils.schema_contents, "_runai_cached", False):
    # Schema files are immutable package data and jsonschema only reads them: memoising is safe.
    _cached_schema_contents = functools.lru_cache(maxsize=None)(_kv_utils.schema_contents)
    _cached_schema_contents._runai_cached = True  # type: ignore[attr-defined]
    _kv_utils.schema_contents = _cached_schema_contents


def _as_validatable(manifest: dict) -> dict:
    if (manifest.get("apiVersion"), manifest.get("kind")) == RUNAI_JOB:
        manifest = copy.deepcopy(manifest)
        manifest["apiVersion"], manifest["kind"] = JOB
    return manifest


@functools.lru_cache(maxsize=4096)
def _validate_json(text: str) -> str | None:
    """None when valid, else the schema's complaint (cached on the manifest's canonical JSON)."""
    obj = _as_validatable(json.loads(text))
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(part) for part in exc.path) or "<root>"
        return f"{obj.get('apiVersion')} {obj.get('kind')} does not validate against Kubernetes {exc.version} at {where}: {exc.message}"
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
        return f"no usable Kubernetes {K8S_VERSION} schema for {obj.get('apiVersion')} {obj.get('kind')}: {exc.message}"
    return None


def assert_valid_manifest(manifest: dict) -> None:
    """Raise AssertionError with the schema's message unless ``manifest`` is a valid Kubernetes 1.37 object."""
    assert isinstance(manifest, dict), f"a manifest must be a dict, not {type(manifest).__name__}"
    try:
        text = json.dumps(manifest, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"manifest is not plain JSON data: {exc}") from None
    problem = _validate_json(text)
    if problem is not None:
        raise AssertionError(problem)
