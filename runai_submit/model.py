"""Frozen dataclasses the request schemas load into; everything after the schema works with these."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PortSpec:
    """A container port, optionally exposed by the job's Service on ``external``."""

    container: int
    external: int | None = None
    auto_generate: bool = False


@dataclass(frozen=True)
class PvcSpec:
    """A mounted claim: a new one (``size`` set) or an existing one (``claim_name`` set)."""

    path: str
    read_only: bool = False
    size: str | None = None
    storage_class: str | None = None
    claim_name: str | None = None

    @property
    def is_new(self) -> bool:
        return self.claim_name is None


@dataclass(frozen=True)
class VolumeSpec:
    """A host path mounted into the container."""

    source_path: str
    target_path: str
    read_only: bool = False


@dataclass(frozen=True)
class EnvVar:
    """An environment variable: a literal value, or a key of a secret."""

    name: str
    value: str | None = None
    secret_name: str | None = None
    secret_key: str | None = None


@dataclass(frozen=True)
class JobSpec:
    """A validated job request. Defaults are the service's defaults, not Kubernetes'."""

    project: str
    image: str
    name: str | None = None
    job_name_prefix: str | None = None
    interactive: bool = False
    command: tuple[str, ...] = ()
    arguments: tuple[str, ...] = ()
    environment: tuple[EnvVar, ...] = ()
    image_pull_policy: str = "Always"
    stdin: bool = False
    tty: bool = False
    working_dir: str | None = None
    create_home_dir: bool = False
    gpu: float = 0
    cpu: float | None = None
    cpu_limit: float | None = None
    memory: str | None = None
    memory_limit: str | None = None
    large_shm: bool = False
    pvcs: tuple[PvcSpec, ...] = ()
    volumes: tuple[VolumeSpec, ...] = ()
    host_ipc: bool = False
    host_network: bool = False
    ports: tuple[PortSpec, ...] = ()
    service_type: str | None = None
    backoff_limit: int | None = None
    completions: int | None = None
    parallelism: int | None = None
    elastic: bool = False
    preemptible: bool = False
    ttl_after_finish: int | None = None
    prevent_privilege_escalation: bool = False
    node_type: str | None = None


@dataclass(frozen=True)
class SubmitContext:
    """Everything besides the job that shapes the rendered objects."""

    name: str
    namespace: str
    user: str
    workload_api_version: str
    workload_kind: str
    scheduler_name: str = "runai-scheduler"
    ingress_class: str = ""
    # The Pod Security level the namespace enforces (policy); "restricted" renders a pod it admits.
    pod_security: str = "privileged"
    # Extra annotations of the workload, e.g. the Idempotency-Key's digests (service/idempotency.py).
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class OwnerRef:
    """The created workload, which owns the Service and Ingress."""

    api_version: str
    kind: str
    name: str
    uid: str


@dataclass(frozen=True)
class CreatedObject:
    """What the cluster answered for one created object: only what callers need."""

    api_version: str
    kind: str
    name: str
    uid: str
    manifest: dict = field(default_factory=dict, compare=False, repr=False)
    # The API server's Warning headers for this create (e.g. Pod Security "would violate ..."), as text.
    warnings: tuple[str, ...] = ()

    def as_owner(self) -> OwnerRef:
        """This object as the owner of others (their ownerReferences), once the cluster gave it a uid."""
        return OwnerRef(self.api_version, self.kind, self.name, self.uid)


def warnings_of(objects: Iterable[CreatedObject]) -> list[str]:
    """The API server's warnings for ``objects``, in order, each once (kubectl prints them the same way)."""
    return list(dict.fromkeys(text for obj in objects for text in obj.warnings))
