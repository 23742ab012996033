"""The fuzzing gate's machinery: schemathesis with every check, positive and negative data, over the served document.

Used by ``tests/test_openapi_fuzz.py`` (the gate in ``make test``: a few examples per operation) and by
``make fuzz`` (the same test with ``RUNAI_SUBMIT_FUZZ_EXAMPLES`` examples per operation, against the fake API
server and the real control plane, with a report of the counts).

Besides schemathesis' own checks, every generated request is followed by *steered* variants (`steer`): the same
generated job reduced to a few of its fields in a project that exists, reads and deletes of jobs that exist. A
generated job seldom names an existing project, so without them the fuzzing would rarely get past a 404 to the
code that creates, reads and deletes objects in the cluster.
"""
from __future__ import annotations

import collections
import json
import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import schemathesis
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from runai_submit.app import create_app

SEED = 20_240_617
GATE_EXAMPLES = 15  # per operation and mode, in make test
EXAMPLES = int(os.environ.get("RUNAI_SUBMIT_FUZZ_EXAMPLES", GATE_EXAMPLES))
REPORT = os.environ.get("RUNAI_SUBMIT_FUZZ_REPORT", "")
PROJECT = "fuzz"              # the project the steered requests use; each backend creates it
EXISTING_JOBS = ("alpha", "beta")
IMAGE = "busybox:1.36"
SUBMIT_PATHS = ("/api/job", "/api/v1/job", "/api/v1/jobs")
BATCH_PATH = "/api/v1/jobs/batch"


def served_document() -> dict:
    """The document exactly as ``GET /api/openapi.json`` serves it (the route needs no cluster)."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"backend": "offline", "offline_dir": folder, "log_level": "warning"})
        response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200
    return response.json


def load_schema(document: dict, examples: int = EXAMPLES) -> Any:
    """Schemathesis over ``document``: every check, positive and negative data, seeded and bounded."""
    config = schemathesis.Config.from_dict({
        "seed": SEED,
        "suppress-health-check": ["all"],  # slow generation of the big Job schema is expected, not a problem
        "generation": {"mode": "all", "max-examples": examples, "database": "none", "deterministic": False},
    })
    return schemathesis.openapi.from_dict(document, config=config)


def word_rules(document: dict) -> set[str]:
    """Every rule the document states only in words (``x-rules``, see schemas/fields.py)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            found.update(node.get("x-rules", ()))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return found


def refused_only_for_word_rules(body: Any, rules: set[str]) -> bool:
    """True when a 422 names at least one problem and each starts with a rule the document states in words."""
    errors = body.get("errors") if isinstance(body, dict) else None
    return bool(errors) and all(any(error.get("message", "").startswith(rule) for rule in rules) for error in errors)


def make_acceptance_check(rules: set[str]) -> Any:
    """schemathesis' positive_data_acceptance, except that schema-valid data may be refused with a 422 for a rule
    the document states in words (a rule across fields, a rule on object keys: OpenAPI 3.0 has no keyword for
    them). Any other refusal of schema-valid data still fails."""

    def positive_data_acceptance_but_word_rules(ctx: Any, response: Any, case: Any) -> bool | None:
        if response.status_code == 422 and refused_only_for_word_rules(_json(response), rules):
            return None
        return positive_data_acceptance(ctx, response, case)

    return positive_data_acceptance_but_word_rules


def make_rejection_check(document: dict) -> Any:
    """schemathesis' negative_data_rejection, except for a batch that is not atomic: by design (README "Idempotency
    and batch submit") each job is validated on its own and answered in its item, so a batch with a job that breaks
    the schema may be a 200, as long as some item is refused (4xx) and the rest of the request was valid.

    "The rest was valid" is judged on the values sent, not on schemathesis' per-location mode flags: a query or
    header marked negative only for an added unknown parameter is valid (the service ignores unknown query
    parameters, ``schemas/params.py``, as schemathesis' own check allows for a request without a body)."""

    def negative_data_rejection_but_batch_items(ctx: Any, response: Any, case: Any) -> bool | None:
        if (case.operation.path == BATCH_PATH and case.method.upper() == "POST" and response.status_code == 200
                and case.meta is not None):
            parameters = document["paths"][BATCH_PATH]["post"].get("parameters", [])
            items = (_json(response) or {}).get("data", [])
            if (_declared_parameters_valid(parameters, case)
                    and any(not item["ok"] and 400 <= item["error"]["status"] < 500 for item in items)):
                return None
        return negative_data_rejection(ctx, response, case)

    return negative_data_rejection_but_batch_items


def _declared_parameters_valid(parameters: list[dict], case: Any) -> bool:
    """Whether every declared query and header parameter of ``case`` is present when required and matches its
    schema as the service reads it off the wire (a boolean is exactly ``true`` or ``false``)."""
    sent = {"query": case.query or {}, "header": {name.lower(): value for name, value in (case.headers or {}).items()}}
    for parameter in parameters:
        values = sent.get(parameter["in"])
        if values is None:
            continue
        key = parameter["name"].lower() if parameter["in"] == "header" else parameter["name"]
        if key not in values:
            if parameter.get("required"):
                return False
            continue
        value, schema = values[key], parameter["schema"]
        if schema.get("type") == "boolean":
            if value not in ("true", "false", True, False):
                return False
        elif not isinstance(value, str) or not jsonschema.Draft4Validator(schema).is_valid(value):
            return False
    return True


def _json(response: Any) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


# --- counts for the report ------------------------------------------------------------------------


@dataclass
class Tally:
    """Cases sent per operation, by status and generation mode; failures with their first line."""

    backend: str
    started: float = field(default_factory=time.monotonic)
    statuses: dict[str, collections.Counter] = field(default_factory=lambda: collections.defaultdict(collections.Counter))
    modes: collections.Counter = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)

    def record(self, label: str, status: int, mode: str) -> None:
        self.statuses[label][status] += 1
        self.modes[mode] += 1

    @property
    def cases(self) -> int:
        return sum(sum(counter.values()) for counter in self.statuses.values())

    def server_errors(self) -> int:
        return sum(count for counter in self.statuses.values() for status, count in counter.items() if status >= 500)

    def report(self) -> dict:
        return {
            "backend": self.backend,
            "examples_per_operation": EXAMPLES,
            "seed": SEED,
            "cases": self.cases,
            "by_mode": dict(self.modes),
            "server_errors": self.server_errors(),
            "failures": len(set(self.failures)),  # hypothesis replays a failing case while it shrinks it
            "failure_lines": sorted(set(self.failures)),
            "seconds": round(time.monotonic() - self.started, 1),
            "operations": {label: dict(sorted(counter.items())) for label, counter in sorted(self.statuses.items())},
        }


# --- steering: the generated data, aimed at things that exist --------------------------------------


def steer(case: Any, existing_jobs: tuple[str, ...] = EXISTING_JOBS) -> list[dict]:
    """Variants of ``case`` aimed at the project and jobs that exist: keyword arguments of ``operation.Case``.

    Deterministic: the fields kept are chosen by a generator seeded from the case's own data.
    """
    if case.meta is None or any(component.mode.is_negative for component in case.meta.components.values()):
        return []  # only schema-valid data is worth aiming: negative data is refused before it gets anywhere
    method, path = case.method.upper(), case.operation.path
    if method != case.operation.method.upper():
        return []  # a method the operation does not have (checked for its 405): nothing to aim
    user = str((case.headers or {}).get("RA-USER") or "").strip()
    headers = {"RA-USER": user or "fuzzer"}  # a blank RA-USER (the security scheme allows it) is a 401: aim past it
    if method == "POST" and path in SUBMIT_PATHS and isinstance(case.body, dict) \
            and isinstance(case.body.get("job"), dict):
        job = case.body["job"]
        chooser = random.Random(json.dumps(job, sort_keys=True, default=str))
        query = {"dryRun": "true"} if chooser.random() < 0.25 else {}
        return [{"body": {"job": _steer_job(job)}, "headers": headers, "query": query}]
    if method == "POST" and path == BATCH_PATH and isinstance(case.body, dict) and isinstance(case.body.get("jobs"), list):
        jobs = [job for job in case.body["jobs"] if isinstance(job, dict)][:5]
        steered_jobs = [_steer_job(job) for job in jobs] or [{"project": PROJECT, "image": IMAGE}]
        chooser = random.Random(json.dumps(steered_jobs, sort_keys=True, default=str))
        query = {"atomic": "true"} if chooser.random() < 0.5 else {}
        return [{"body": {"jobs": steered_jobs}, "headers": headers, "query": query}]
    if path.startswith("/api/v1/job/{project}/{name}"):  # the job, its log, suspend and resume
        query = {key: value for key, value in (case.query or {}).items() if key not in ("pod", "container")}
        steered = {"path_parameters": {"project": PROJECT, "name": existing_jobs[0]}, "query": query}
        return [{**steered, "headers": headers} if method == "POST" else steered]
    if method == "GET" and path == "/api/v1/policy":
        return [{"query": {"project": PROJECT}}]
    if method == "GET" and path == "/api/v1/job/{project}":
        return [{"path_parameters": {"project": PROJECT}, "query": _user_filter(case)}]
    if method == "GET" and path in ("/api/job", "/api/v1/jobs"):
        return [{"query": {"project": PROJECT, **_user_filter(case)}}]
    return []


def _steer_job(job: dict) -> dict:
    """A generated job reduced to a few of its fields (chosen from its own data), in the project that exists."""
    chooser = random.Random(json.dumps(job, sort_keys=True, default=str))
    optional = sorted(set(job) - {"project", "image", "name"})
    kept = chooser.sample(optional, k=min(len(optional), chooser.randint(0, 4)))
    return {"project": PROJECT, "image": IMAGE, **{key: job[key] for key in kept}}


def _user_filter(case: Any) -> dict:
    user = (case.query or {}).get("user")
    return {"user": user} if isinstance(user, str) else {}


def summarize(paths: list[str]) -> str:
    """The reports of one ``make fuzz`` as a few lines: per backend and in all."""
    lines, total_cases, total_5xx, total_failures, total_seconds = [], 0, 0, 0, 0.0
    for path in sorted(paths):
        with open(path) as source:
            report = json.load(source)
        statuses: collections.Counter = collections.Counter()
        for counts in report["operations"].values():
            statuses.update({int(status): count for status, count in counts.items()})
        lines.append(f"{report['backend']:>5}: {report['cases']:>6} cases ({report['examples_per_operation']} examples per "
                     f"operation, seed {report['seed']}) in {report['seconds']:.0f} s; by mode {report['by_mode']}")
        lines.append(f"       statuses {dict(sorted(statuses.items()))}")
        lines.append(f"       {report['server_errors']} 5xx, {report['failures']} failures"
                     + "".join(f"\n         {line}" for line in report["failure_lines"]))
        total_cases += report["cases"]
        total_5xx += report["server_errors"]
        total_failures += report["failures"]
        total_seconds += report["seconds"]
    lines.append(f"total: {total_cases} cases in {total_seconds:.0f} s, {total_5xx} 5xx, {total_failures} failures")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(summarize(sys.argv[1:]) if sys.argv[1:] else "no fuzz reports (did the run start?)")
