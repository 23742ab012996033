"""The offline backend: a folder stands in for the cluster, one YAML file per object.

Used by ``make run`` where no cluster is configured, so the API can be tried and its manifests read.
Layout: ``<dir>/<namespace>/<plural>/<name>.yaml``. Creating a file with O_EXCL reserves a name exactly
as the API server's AlreadyExists does, across threads and processes.
"""
from __future__ import annotations

import logging
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ..config import Settings
from ..errors import ClusterUnavailable, NotFound
from ..identity import Caller
from ..model import CreatedObject
from .errors import AlreadyExists
from .kinds import KINDS, RUNAI_JOB, WORKLOAD_KINDS, Kind, kind_of

if TYPE_CHECKING:
    from . import LogStream

log = logging.getLogger(__name__)


class OfflineCluster:
    """Writes manifests under a folder instead of sending them to an API server."""

    backend = "offline"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.offline_dir).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        pass

    def acting_as(self, caller: Caller) -> OfflineCluster:
        """A folder has no access control: every caller writes with the service's rights."""
        return self

    def whoami(self) -> dict:
        """No cluster, no identities: the folder knows nobody."""
        return {"user": "", "groups": []}

    def allowed(self, verb: str, kind: Kind, namespace: str | None) -> bool:
        return True

    def workload_kind(self) -> Kind:
        if self.settings.workload_kind == "auto":
            return RUNAI_JOB
        return WORKLOAD_KINDS[self.settings.workload_kind]

    def namespace_for(self, project: str) -> str:
        return self.settings.namespace_for(project)

    def forget_namespaces(self) -> None:
        pass

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """A folder has no labels: no Pod Security level (the admin policy still applies)."""
        return {}

    def projects(self) -> dict[str, str]:
        """Every namespace folder that matches the naming convention is a project."""
        prefix, _, suffix = self.settings.namespace_template.partition("{project}")
        projects = {}
        for folder in sorted(p.name for p in self.root.iterdir() if p.is_dir()):
            if folder.startswith(prefix) and folder.endswith(suffix) and len(folder) > len(prefix) + len(suffix):
                projects[folder[len(prefix) : len(folder) - len(suffix)]] = folder
        return projects

    def _path(self, namespace: str, kind: Kind, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise NotFound(f"{kind.kind} {name!r} is not an object name.")
        return self.root / namespace / kind.plural / f"{name}.yaml"

    def create(self, namespace: str, manifest: dict, *, dry_run: bool = False) -> CreatedObject:
        kind = kind_of(manifest)
        name = manifest["metadata"]["name"]
        path = self._path(namespace, kind, name)
        stored = {**manifest, "metadata": {**manifest["metadata"], "namespace": namespace,
                                           "uid": str(uuid.uuid4()),
                                           "creationTimestamp": _now()}}
        taken = AlreadyExists(f"create {kind.kind} {namespace}/{name}: already exists", name)
        if dry_run:
            if path.exists():
                raise taken
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise taken from None
            with os.fdopen(fd, "w") as handle:
                yaml.safe_dump(stored, handle, sort_keys=False)
            log.debug("wrote %s %s/%s to %s", kind.kind, namespace, name, path)
        return CreatedObject(kind.api_version, kind.kind, name, stored["metadata"]["uid"], stored)

    def delete(
        self, namespace: str, kind: Kind, name: str, *, propagation: str = "Background", uid: str | None = None
    ) -> bool:
        obj = self.get(namespace, kind, name)
        if obj is None or (uid and obj["metadata"].get("uid") != uid):
            return False
        self._path(namespace, kind, name).unlink(missing_ok=True)
        log.info("deleted %s %s/%s", kind.kind, namespace, name)
        if propagation != "Orphan":
            uid = obj["metadata"].get("uid")
            for other_kind in KINDS.values():
                if not other_kind.namespaced:
                    continue
                for item in self.list(other_kind, namespace):
                    owners = item["metadata"].get("ownerReferences") or []
                    if any(owner.get("uid") == uid for owner in owners):
                        self.delete(namespace, other_kind, item["metadata"]["name"], propagation=propagation)
        return True

    def get(self, namespace: str, kind: Kind, name: str) -> dict | None:
        try:
            return _read(self._path(namespace, kind, name))
        except FileNotFoundError:
            return None

    def list(self, kind: Kind, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict]:
        folders = [self.root / namespace] if namespace else [p for p in sorted(self.root.iterdir()) if p.is_dir()]
        items = []
        for folder in folders:
            for path in sorted((folder / kind.plural).glob("*.yaml")):
                try:
                    item = _read(path)
                except FileNotFoundError:
                    continue  # deleted while listing
                if item and _matches(item, label_selector) and _fields_match(item, field_selector):
                    items.append(item)
        return items

    def namespace_exists(self, namespace: str) -> bool:
        return (self.root / namespace).is_dir()

    def version(self) -> dict:
        return {"gitVersion": "offline", "platform": f"folder {self.root}"}

    def ping(self, timeout: float) -> None:
        if not os.access(self.root, os.W_OK):
            raise ClusterUnavailable(f"The offline folder {self.root} is not writable.")

    # --- job insight: no controller runs here, so a job never has pods, events or logs ---------------

    def patch(self, namespace: str, kind: Kind, name: str, patch: dict) -> dict | None:
        """A JSON merge patch (RFC 7386) of the object's file."""
        obj = self.get(namespace, kind, name)
        if obj is None:
            return None
        patched = _merge_patch(obj, patch)
        path = self._path(namespace, kind, name)
        staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        with staging.open("w") as handle:
            yaml.safe_dump(patched, handle, sort_keys=False)
        os.replace(staging, path)   # readers see the old file or the new one, never half of one
        log.info("patched %s %s/%s", kind.kind, namespace, name)
        return patched

    def open_log(self, namespace: str, pod: str, *, container: str | None = None, follow: bool = False,
                 tail_lines: int | None = None, previous: bool = False, read_timeout: float) -> LogStream:
        raise NotFound(f"Pod {pod!r} does not exist: the offline backend runs no pods.")


def _read(path: Path) -> dict:
    with path.open() as handle:
        return yaml.safe_load(handle) or {}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge_patch(target: object, patch: object) -> object:
    """RFC 7386: objects merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge_patch(merged.get(key), value)
    return merged


def _fields_match(item: dict, selector: str | None) -> bool:
    """Equality field selectors on dotted paths (``involvedObject.uid=x``), as the API server reads them."""
    for term in filter(None, (selector or "").split(",")):
        path, _, expected = term.partition("=")
        value: object = item
        for key in path.strip().split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if str(value if value is not None else "") != expected.lstrip("=").strip():
            return False
    return True


def _matches(item: dict, selector: str | None) -> bool:
    """Equality and existence selectors (``a=b,c``): what the service itself uses."""
    if not selector:
        return True
    labels = item.get("metadata", {}).get("labels") or {}
    for term in selector.split(","):
        key, sep, value = term.partition("=")
        if sep:
            if labels.get(key.strip()) != value.lstrip("=").strip():
                return False
        elif term.strip() not in labels:
            return False
    return True
