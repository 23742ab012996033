"""The application factory: settings, the cluster backend, blueprints and error handlers."""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask

from .api import register_blueprints, register_error_handlers
from .api.jsonprovider import FastJSONProvider
from .api.observability import RequestIdFilter, register_observability
from .api.openapi import docs
from .cluster import Cluster, check_connection_settings, connect
from .config import Settings
from .errors import ServiceError
from .identity import Authenticator, Caller, Identity
from .jsonlog import FastJsonFormatter
from .service import JobService, PolicyStore

log = logging.getLogger(__name__)


class AppState:
    """Per-process collaborators, kept in ``app.extensions``.

    The cluster connection (an HTTP pool) is opened on first use in each process, so gunicorn workers
    never share a pool inherited across ``fork``.
    """

    def __init__(self, settings: Settings, cluster_factory: Callable[[Settings], Cluster],
                 policy_store: PolicyStore | None = None) -> None:
        self.settings = settings
        self._factory = cluster_factory
        # Read (and validated) in create_app, so a bad policy file stops the start; after a fork each
        # worker keeps its own copy and checks the file for changes on its own.
        self.policy_store = policy_store
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._service: JobService | None = None
        self._readiness: tuple[float, ServiceError | None] = (float("-inf"), None)
        self.openapi: dict | None = None  # built on first request of /api/openapi.json
        self.authenticator = Authenticator(settings.auth_mode, self._review, ttl=settings.auth_cache_seconds)

    @property
    def service(self) -> JobService:
        if self._service is None or self._pid != os.getpid():
            with self._lock:
                if self._service is None or self._pid != os.getpid():
                    self._service = JobService(self._factory(self.settings), self.settings,
                                               policy_store=self.policy_store)
                    self._pid = os.getpid()
        return self._service

    @property
    def cluster(self) -> Cluster:
        """This process's cluster connection, acting with the service's own credentials."""
        return self.service.cluster

    def service_for(self, caller: Caller) -> JobService:
        """The use cases bound to ``caller``: same pool and caches, the caller's identity on every call."""
        base = self.service
        if not caller.acts_as_itself:
            return base
        return JobService(base.cluster.acting_as(caller), self.settings, name_factory=base.name_factory,
                          policy_store=self.policy_store)

    def _review(self, caller: Caller) -> Identity:
        """Whose credentials these are, as the API server sees them (a SelfSubjectReview made with them)."""
        seen = self.cluster.acting_as(caller).whoami()
        return Identity(seen["user"], tuple(seen["groups"]))

    def readiness(self) -> dict:
        """Ping the cluster at most once per ``ready_cache_seconds``; raise ClusterUnavailable when it fails."""
        now = time.monotonic()
        checked_at, error = self._readiness
        if now - checked_at > self.settings.ready_cache_seconds:
            try:
                self.cluster.ping(self.settings.ready_timeout)
                error = None
            except ServiceError as exc:
                error = exc
            self._readiness = (now, error)
        if error is not None:
            raise error
        return {"status": "ready", "backend": self.cluster.backend}


def configure_logging(settings: Settings) -> None:
    """One JSON object per line on stderr (or plain text with log_format=text), each with the request id."""
    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    for handler in [h for h in root.handlers if getattr(h, "runai_submit", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.runai_submit = True
    if settings.log_format == "json":
        handler.setFormatter(FastJsonFormatter(
            "{levelname}{name}{message}", style="{", timestamp="time",
            rename_fields={"levelname": "level", "name": "logger"},
        ))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)


def warn_about_auth_mode(settings: Settings, backend: str) -> None:
    """Header mode against a real cluster trusts RA-USER from anyone who can reach the port: say so once."""
    if settings.auth_mode == "header" and backend != "offline":
        log.warning(
            "AUTH MODE header: RA-USER is taken on trust and every call to the cluster is made with the "
            "service's own rights, so anyone who can reach this port acts with them. Run it only behind a "
            "proxy that authenticates users and sets RA-USER, or set RUNAI_SUBMIT_AUTH_MODE=token "
            "(or impersonate); see README 'Security'."
        )


def create_app(config: Mapping[str, Any] | None = None, *, cluster: Cluster | None = None) -> Flask:
    """Build the app. ``config`` overrides settings by field name; ``cluster`` injects a backend (tests)."""
    settings = Settings.load(config)
    configure_logging(settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = FastJSONProvider(app)  # issue 13: Flask's answers, encoded by orjson
    app.json.sort_keys = False
    policy_store = PolicyStore(settings.policy_file, settings.policy_reload_seconds)
    if cluster is not None:
        state = AppState(settings, lambda _settings: cluster, policy_store)
    else:
        backend = check_connection_settings(settings)
        if backend == "offline":
            log.warning(
                "NO CLUSTER CONFIGURED: serving with the OFFLINE backend; jobs are written as YAML under %s "
                "and nothing reaches Kubernetes. Set RUNAI_SUBMIT_BACKEND/RUNAI_SUBMIT_KUBECONFIG to use a cluster.",
                os.path.abspath(settings.offline_dir),
            )
        state = AppState(settings, connect, policy_store)
    app.extensions["runai_submit"] = state
    warn_about_auth_mode(settings, cluster.backend if cluster is not None else backend)
    register_observability(app)
    register_blueprints(app)
    app.register_blueprint(docs)
    register_error_handlers(app)
    return app
