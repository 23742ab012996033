"""The stack's own floor: the least a service on the design card's stack (gunicorn + Flask + werkzeug) can cost.

Served by ``make bench``'s ``stack`` scenario (``bench/scenarios/stack.py``) with the service's own
``gunicorn.conf.py`` and layout, as ``python -m gunicorn -c gunicorn.conf.py bench.stackapp:app``. One Flask app
with one Blueprint and ``POST /api/job``, in one of two modes (``RUNAI_STACK_MODE``):

- ``stack``: read the JSON body, answer ``{"name": ...}`` with 200. No logging, no metrics, no cluster: what
  gunicorn + Flask + werkzeug cost per request on their own.
- ``forward``: the same, and in addition POST the seed job's exact manifest (the floor's) to the API server over
  one kept-alive TLS connection per worker thread (``bench.loadgen.Conn``, the floor's own client, with the
  kubeconfig's CA and client certificate), renamed per request, and answer the created name: a service that
  does nothing but forward.

What ``forward`` needs comes through the environment (``RUNAI_STACK_*``, set by the scenario): the API server's
host, port, CA and client certificate files, an ``Authorization`` header if the kubeconfig has a token, the
manifest as a JSON file (with the name and project of the dry run it came from, replaced per request by a unique
name and the request's own project, so every measured run creates in a project of its own) and a query string
(``?dryRun=All`` against someone's cluster).
"""
from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Mapping

from flask import Blueprint, Flask, abort, jsonify, request

from .jobs import collection_path
from .loadgen import Conn, Endpoint, full_request, request_head, tls_context

FIXED_NAME = "stack-job"


class Forwarder:
    """The seed manifest, renamed per request, POSTed to the API server on this thread's kept-alive connection."""

    def __init__(self, env: Mapping[str, str]) -> None:
        with open(env["RUNAI_STACK_MANIFEST"], encoding="utf-8") as file:
            template = json.load(file)
        self.text = json.dumps(template["manifest"])  # as the kubernetes client's rest.py encodes a dict body
        self.name = template["name"]
        self.project = template["project"]
        self.kind, self.api_version = template["manifest"]["kind"], template["manifest"]["apiVersion"]
        self.query = env.get("RUNAI_STACK_QUERY", "")
        context = None
        if env.get("RUNAI_STACK_SCHEME", "https") == "https":
            context = tls_context(env.get("RUNAI_STACK_CA") or None, env.get("RUNAI_STACK_CERT") or None,
                                  env.get("RUNAI_STACK_KEY") or None, verify=env.get("RUNAI_STACK_VERIFY", "1") == "1")
        self.endpoint = Endpoint(env.get("RUNAI_STACK_HOST", "127.0.0.1"), int(env.get("RUNAI_STACK_PORT", "443")),
                                 context)
        self.headers = {"Accept": "application/json", "Content-Type": "application/json",
                        "User-Agent": "runai-submit-bench-forward"}
        if env.get("RUNAI_STACK_AUTHORIZATION"):
            self.headers["Authorization"] = env["RUNAI_STACK_AUTHORIZATION"]
        self.heads: dict[str, bytes] = {}  # the request line and headers, per namespace
        self.local = threading.local()
        # Unique names across workers and runs: fw<pid>x<sequence>, never a generated name of the service.
        self.prefix = f"fw{os.getpid()}x"
        self.sequence = itertools.count(1)

    def _head(self, namespace: str) -> bytes:
        head = self.heads.get(namespace)
        if head is None:
            path = collection_path(self.api_version, self.kind, namespace) + self.query
            head = self.heads[namespace] = request_head("POST", path, self.endpoint, self.headers)
        return head

    def create(self, project: str) -> tuple[int, str]:
        """POST the manifest into ``project`` under a new name: (HTTP status, the created name or an error)."""
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = Conn(self.endpoint)
        new = f"{self.prefix}{next(self.sequence)}"
        text = self.text.replace(self.name, new)
        if project != self.project:  # the namespace runai-<project> and the project's labels
            text = text.replace(self.project, project)
        status, answer = conn.request(full_request(self._head(f"runai-{project}"), text.encode()))
        if status not in (200, 201, 202):
            return status, answer[:400].decode(errors="replace")
        return status, json.loads(answer)["metadata"]["name"]


def healthz():
    return "ok"


def create_app(env: Mapping[str, str] = os.environ) -> Flask:
    """The app of ``env["RUNAI_STACK_MODE"]`` (``stack``, the default, or ``forward``), built in each worker
    (gunicorn imports the app after the fork, so every worker has its own connections and name prefix)."""
    forwarder = Forwarder(env) if env.get("RUNAI_STACK_MODE") == "forward" else None
    blueprint = Blueprint("stack", __name__)

    @blueprint.post("/api/job")
    def submit():
        body = request.get_json()
        job = body.get("job") if isinstance(body, dict) else None
        if not isinstance(job, dict):
            abort(400)
        if forwarder is None:
            return jsonify(name=job.get("name") or FIXED_NAME)
        status, name = forwarder.create(str(job.get("project") or ""))
        if status not in (200, 201, 202):
            return jsonify(status=status, message=name), 502
        return jsonify(name=name)

    flask_app = Flask(__name__)
    flask_app.register_blueprint(blueprint)
    flask_app.add_url_rule("/healthz", view_func=healthz)  # what servers.Gunicorn.wait_ready asks
    return flask_app


app = create_app()
