"""Settings: defaults < environment (``RUNAI_SUBMIT_*``) < an explicit mapping; validated once at start."""
from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

ENV_PREFIX = "RUNAI_SUBMIT_"

BACKENDS = ("auto", "incluster", "kubeconfig", "offline")
WORKLOAD_KINDS = ("auto", "RunaiJob", "Job")
AUTH_MODES = ("header", "impersonate", "token")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Settings:
    """Everything an operator can configure. Field names map to ``RUNAI_SUBMIT_<NAME>`` variables."""

    # How to reach the cluster: auto picks in-cluster, then a kubeconfig, then the offline folder.
    backend: str = "auto"
    kubeconfig: str = ""
    kube_context: str = ""
    offline_dir: str = "offline-cluster"

    # How jobs are laid out in the cluster.
    namespace_template: str = "runai-{project}"
    workload_kind: str = "auto"
    scheduler_name: str = "runai-scheduler"
    ingress_class: str = ""

    # Bounds: every call to the API server ends within connect + request timeout.
    connect_timeout: float = 2.0
    request_timeout: float = 10.0
    retry_after_seconds: int = 5
    throttle_retries: int = 2
    max_throttle_wait: float = 2.0
    name_retries: int = 5
    namespace_cache_seconds: float = 30.0
    ready_timeout: float = 1.0
    ready_cache_seconds: float = 2.0
    max_body_bytes: int = 1024 * 1024

    log_level: str = "INFO"
    log_format: str = "json"

    # Who may do what: header (RA-USER on trust), impersonate (RA-USER acts), token (the caller's bearer token).
    auth_mode: str = "header"
    auth_cache_seconds: float = 60.0

    # Admin policy: a YAML file of defaults and rules, re-read when it changes.
    policy_file: str = ""
    policy_reload_seconds: float = 5.0

    # Job insight: the longest a followed log holds a worker.
    log_follow_max_seconds: float = 300.0

    # Batch submits: jobs per call, and how many of them are created at once.
    max_batch: int = 1000
    batch_concurrency: int = 8

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the environment, apply ``overrides`` (field name -> value), validate, or raise ConfigError."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        known = {f.name: f for f in fields(cls)}
        for name, spec in known.items():
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            try:
                values[name] = _convert(raw, spec.type)
            except ValueError:
                problems.append(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {spec.type}")
        for name, value in (overrides or {}).items():
            if name not in known:
                problems.append(f"unknown setting {name!r}")
                continue
            values[name] = value
        if problems:
            raise ConfigError(problems)
        settings = cls(**values)
        settings.validate()
        return settings

    def replace(self, **changes: Any) -> Settings:
        settings = dataclasses.replace(self, **changes)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Collect every problem at once, so an operator fixes them in one go."""
        problems: list[str] = []
        if self.backend not in BACKENDS:
            problems.append(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.workload_kind not in WORKLOAD_KINDS:
            problems.append(f"workload_kind must be one of {', '.join(WORKLOAD_KINDS)}, not {self.workload_kind!r}")
        if "{project}" not in self.namespace_template:
            problems.append("namespace_template must contain {project}")
        elif not re.fullmatch(r"[a-z0-9-]*\{project\}[a-z0-9-]*", self.namespace_template):
            problems.append("namespace_template may hold only lowercase letters, digits and '-' around {project}")
        if self.backend == "kubeconfig" and self.kubeconfig and not Path(self.kubeconfig).is_file():
            problems.append(f"kubeconfig {self.kubeconfig!r} is not a file")
        for name in ("connect_timeout", "request_timeout", "max_throttle_wait", "ready_timeout"):
            if not 0 < getattr(self, name) <= 300:
                problems.append(f"{name} must be > 0 and <= 300 seconds")
        for name in ("namespace_cache_seconds", "ready_cache_seconds"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        if not 1 <= self.retry_after_seconds <= 3600:
            problems.append("retry_after_seconds must be between 1 and 3600")
        if not 0 <= self.throttle_retries <= 10:
            problems.append("throttle_retries must be between 0 and 10")
        if not 1 <= self.name_retries <= 50:
            problems.append("name_retries must be between 1 and 50")
        if self.max_body_bytes < 1024:
            problems.append("max_body_bytes must be at least 1024")
        if not self.scheduler_name:
            problems.append("scheduler_name must not be empty")
        if self.log_format not in ("json", "text"):
            problems.append("log_format must be json or text")
        if self.log_level.upper() not in _LOG_LEVELS:
            problems.append(f"log_level must be one of {', '.join(_LOG_LEVELS)}")
        if self.auth_mode not in AUTH_MODES:
            problems.append(f"auth_mode must be one of {', '.join(AUTH_MODES)}, not {self.auth_mode!r}")
        if not 0 <= self.auth_cache_seconds <= 3600:
            problems.append("auth_cache_seconds must be between 0 and 3600")
        # policy_file is read (and every problem in it listed) by service.policy.PolicyStore in create_app.
        if not 0 < self.policy_reload_seconds <= 3600:
            problems.append("policy_reload_seconds must be > 0 and <= 3600")
        if not 0 < self.log_follow_max_seconds <= 86400:
            problems.append("log_follow_max_seconds must be > 0 and <= 86400")
        if not 1 <= self.max_batch <= 100_000:
            problems.append("max_batch must be between 1 and 100000")
        if not 1 <= self.batch_concurrency <= 64:
            problems.append("batch_concurrency must be between 1 and 64")
        if problems:
            raise ConfigError(problems)

    def namespace_for(self, project: str) -> str:
        """The conventional namespace of a project (used when no namespace is labelled for it)."""
        return self.namespace_template.format(project=project)


def _convert(raw: str, type_name: str) -> Any:
    if type_name == "int":
        return int(raw)
    if type_name == "float":
        return float(raw)
    if type_name == "bool":
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(raw)
    return raw
