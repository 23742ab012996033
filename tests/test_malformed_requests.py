"""Malformed submit requests through the real Flask app (offline backend: a folder stands in for the cluster).

Every one must be answered 4xx with the contract's error envelope (§6) — never 5xx, never a traceback — and
must leave nothing behind in the offline folder.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import pytest

from runai_submit.app import create_app

USER_HEADER = "RA-USER"
USER = {USER_HEADER: "john"}
GOOD_JOB = {"project": "team-a", "image": "gcr.io/run-ai-demo/quickstart", "gpu": 1}
MIB = 1024 * 1024


def body(job: dict | None = None, **outer) -> str:
    return json.dumps({"job": {**GOOD_JOB, **(job or {})}, **outer})


@dataclass
class Case:
    """One malformed request and the status (and field pointers) it must be answered with."""

    data: bytes | str | None
    status: int
    headers: dict = field(default_factory=lambda: dict(USER))
    content_type: str | None = "application/json"
    path: str = "/api/job"
    query: str = ""
    pointers: tuple[str, ...] = ()
    chunked: bool = False


def nested(depth: int, opener: str = "[", closer: str = "]", inner: str = "") -> str:
    return opener * depth + inner + closer * depth


CASES = {
    # --- not JSON at all, or not the JSON we can read: 400 ---
    "empty-body": Case("", 400),
    "plain-words": Case("submit my job please", 400),
    "truncated-object": Case('{"job": {"project": "team-a", "image": "busybox"', 400),
    "truncated-in-string": Case('{"job": {"proj', 400),
    "truncated-after-colon": Case('{"job":', 400),
    "trailing-garbage": Case(body() + " trailing", 400),
    "two-documents": Case(body() + body(), 400),
    "single-quotes": Case("{'job': {'project': 'team-a', 'image': 'busybox'}}", 400),
    "trailing-comma": Case('{"job": {"project": "team-a", "image": "busybox",}}', 400),
    "js-comment": Case('{"job": {"project": "team-a", "image": "busybox"} /* c */}', 400),
    "nan": Case('{"job": {"project": "team-a", "image": "busybox", "gpu": NaN}}', 400),
    "infinity": Case('{"job": {"project": "team-a", "image": "busybox", "cpu": Infinity}}', 400),
    "minus-infinity": Case('{"job": {"project": "team-a", "image": "busybox", "cpu": -Infinity}}', 400),
    "invalid-utf8": Case(b'{"job": {"project": "team-a", "image": "busy\xff\xfebox"}}', 400),
    "latin1-bytes": Case('{"job": {"project": "team-a", "image": "b", "environment": {"N": "José"}}}'
                         .encode("latin-1"), 400),
    "lone-continuation-byte": Case(b'{"job": {"project": "\x80"}}', 400),
    "deeply-nested-arrays": Case(nested(100_000), 400),
    "deeply-nested-objects": Case(nested(100_000, '{"a":', "}", "1"), 400),
    "deeply-nested-inside-job": Case('{"job": {"project": "team-a", "image": "b", "environment": '
                                     + nested(50_000) + "}}", 400),
    "int-too-long-to-parse": Case('{"job": {"project": "team-a", "image": "b", "gpu": ' + "9" * 5000 + "}}", 400),
    # --- JSON, but not an object holding a "job" object: 400 ---
    "top-level-array": Case(json.dumps([{"job": GOOD_JOB}]), 400),
    "top-level-string": Case('"job"', 400),
    "top-level-number": Case("42", 400),
    "top-level-null": Case("null", 400),
    "top-level-true": Case("true", 400),
    "empty-object": Case("{}", 400),
    "job-misspelt": Case(json.dumps({"Job": GOOD_JOB}), 400),
    "job-under-spec": Case(json.dumps({"spec": GOOD_JOB}), 400),
    "job-array": Case('{"job": []}', 400),
    "job-null": Case('{"job": null}', 400),
    "job-string": Case('{"job": "project=team-a"}', 400),
    "job-number": Case('{"job": 1}', 400),
    "job-list-of-jobs": Case(json.dumps({"job": [GOOD_JOB]}), 400),
    # --- wrong content types (bodies that are not JSON) ---
    "form-urlencoded": Case("job=project%3Dteam-a%26image%3Dbusybox", 400,
                            content_type="application/x-www-form-urlencoded"),
    "multipart-form": Case(
        b'--XyZ\r\nContent-Disposition: form-data; name="job"\r\n\r\nproject=team-a\r\n--XyZ--\r\n', 400,
        content_type="multipart/form-data; boundary=XyZ"),
    "text-plain-words": Case("project: team-a\nimage: busybox\n", 400, content_type="text/plain"),
    "yaml-body": Case("job:\n  project: team-a\n  image: busybox\n", 400, content_type="application/yaml"),
    "xml-body": Case("<job><project>team-a</project><image>busybox</image></job>", 400,
                     content_type="application/xml"),
    "no-content-type-not-json": Case("project=team-a", 400, content_type=None),
    # --- query ---
    "dry-run-not-a-boolean": Case(body(), 400, query="dryRun=maybe"),
    # --- RA-USER: 401 (checked before the body is looked at) ---
    "user-missing": Case(body(), 401, headers={}),
    "user-empty": Case(body(), 401, headers={USER_HEADER: ""}),
    "user-blank": Case(body(), 401, headers={USER_HEADER: "   "}),
    "user-missing-and-bad-body": Case("{not json", 401, headers={}),
    "user-misspelt-header": Case(body(), 401, headers={"RA-USERS": "john"}),
    "user-missing-v1-alias": Case(body(), 401, headers={}, path="/api/v1/jobs"),
    # --- too large: 413 ---
    "body-over-1mib-padding": Case(body() + " " * MIB, 413),
    "body-over-1mib-environment": Case(
        body({"environment": {f"V{i}": "x" * 1000 for i in range(1100)}}), 413),
    "body-over-1mib-junk": Case(b"x" * (MIB + 1), 413),
    "body-over-1mib-chunked-padding": Case(body() + " " * (2 * MIB), 413, chunked=True),
    "body-over-1mib-chunked-environment": Case(
        body({"environment": {f"V{i}": "x" * 1000 for i in range(1100)}}), 413, chunked=True),
    # --- well-formed JSON, invalid job: 422 with pointers ---
    "job-empty": Case('{"job": {}}', 422, pointers=("/job/project", "/job/image")),
    "unknown-field": Case(body({"gpus": 2}), 422, pointers=("/job/gpus",)),
    "unknown-fields-each-named": Case(body({"gpus": 2, "namespace": "x", "nodetype": "a"}), 422,
                                      pointers=("/job/gpus", "/job/namespace", "/job/nodetype")),
    "unknown-field-beside-job": Case(body(dryRun=True), 422, pointers=("/dryRun",)),
    "unknown-nested-field": Case(body({"ports": [{"container": 80, "extrenal": 30080}]}), 422,
                                 pointers=("/job/ports/0/extrenal",)),
    "bool-as-string": Case(body({"interactive": "true"}), 422, pointers=("/job/interactive",)),
    "bool-as-number": Case(body({"largeShm": 1}), 422, pointers=("/job/largeShm",)),
    "number-as-string": Case(body({"gpu": "1"}), 422, pointers=("/job/gpu",)),
    "number-as-bool": Case(body({"cpu": True}), 422, pointers=("/job/cpu",)),
    "int-as-string": Case(body({"backoffLimit": "1"}), 422, pointers=("/job/backoffLimit",)),
    "int-as-fraction": Case(body({"completions": 1.5}), 422, pointers=("/job/completions",)),
    "string-as-number": Case(body({"image": 42}), 422, pointers=("/job/image",)),
    "string-as-object": Case(body({"project": {"name": "team-a"}}), 422, pointers=("/job/project",)),
    "array-as-string": Case(body({"arguments": "--epochs 3"}), 422, pointers=("/job/arguments",)),
    "map-as-array": Case(body({"environment": ["A=1"]}), 422, pointers=("/job/environment",)),
    "project-null": Case(body({"project": None}), 422, pointers=("/job/project",)),
    "image-null": Case(body({"image": None}), 422, pointers=("/job/image",)),
    "null-port-item": Case(body({"ports": [None]}), 422, pointers=("/job/ports/0",)),
    "null-pvc-item": Case(body({"pvc": [None]}), 422, pointers=("/job/pvc/0",)),
    "null-volumes-item": Case(body({"volumes": [None]}), 422, pointers=("/job/volumes/0",)),
    "null-env-value": Case(body({"environment": {"A": None}}), 422, pointers=("/job/environment/A",)),
    "null-command-item": Case(body({"command": ["python", None]}), 422, pointers=("/job/command/1",)),
    "overflowing-float": Case('{"job": {"project": "team-a", "image": "b", "gpu": 1e400}}', 422,
                              pointers=("/job/gpu",)),
    "operator-object-as-port": Case(body({"ports": [{"container": {"$gt": 0}}]}), 422,
                                    pointers=("/job/ports/0/container",)),
    "moderately-nested-junk": Case(body({"environment": {"A": json.loads(nested(200))}}), 422,
                                   pointers=("/job/environment/A",)),
    "nested-junk-in-list-field": Case(body({"arguments": [[["x"]]]}), 422, pointers=("/job/arguments/0",)),
    "int32-overflow-backoff": Case(body({"backoffLimit": 2**31}), 422, pointers=("/job/backoffLimit",)),
    "many-errors-at-once": Case(body({"name": "Bad Name", "gpu": -1, "tty": True, "gpus": 1, "ports": [0]}), 422,
                                pointers=("/job/name", "/job/gpu", "/job/tty", "/job/gpus")),
    "v1-alias-unknown-field": Case(body({"gpus": 2}), 422, path="/api/v1/job", pointers=("/job/gpus",)),
}


@pytest.fixture
def offline_dir(tmp_path):
    return tmp_path / "offline-cluster"


@pytest.fixture
def client(offline_dir):
    app = create_app({"backend": "offline", "offline_dir": str(offline_dir)})
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app.test_client()


def written_files(offline_dir) -> list[str]:
    if not offline_dir.exists():
        return []
    return sorted(str(p.relative_to(offline_dir)) for p in offline_dir.rglob("*") if p.is_file())


def send(client, case: Case):
    url = case.path + (f"?{case.query}" if case.query else "")
    data = case.data.encode() if isinstance(case.data, str) else case.data
    kwargs: dict = {"headers": case.headers}
    if case.content_type is not None:
        kwargs["content_type"] = case.content_type
    if case.chunked:
        # No Content-Length: the limit must hold for a streamed body too.
        kwargs["input_stream"] = io.BytesIO(data)
        kwargs["headers"] = {**case.headers, "Transfer-Encoding": "chunked"}
        kwargs["environ_overrides"] = {"wsgi.input_terminated": True}
    else:
        kwargs["data"] = data if data is not None else b""
    return client.post(url, **kwargs)


def assert_envelope(response, status: int) -> dict:
    text = response.get_data(as_text=True)
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {text[:500]}"
    assert "Traceback" not in text and 'File "' not in text, f"traceback in the body: {text[:500]}"
    assert response.mimetype == "application/json", f"not JSON: {response.mimetype} {text[:200]}"
    envelope = response.get_json()
    assert isinstance(envelope, dict), envelope
    assert {"status", "message", "details", "errors"} <= set(envelope), f"not the error envelope: {envelope}"
    assert envelope["status"] == status
    assert isinstance(envelope["message"], str) and envelope["message"].strip()
    assert isinstance(envelope["details"], str)
    assert isinstance(envelope["errors"], list)
    for error in envelope["errors"]:
        assert set(error) >= {"field", "message"}, error
        assert isinstance(error["field"], str) and error["field"].startswith("/"), error
        assert isinstance(error["message"], str) and error["message"].strip(), error
    return envelope


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_malformed_submit_is_refused_cleanly(client, offline_dir, case):
    response = send(client, case)
    envelope = assert_envelope(response, case.status)
    got = {error["field"] for error in envelope["errors"]}
    missing = [pointer for pointer in case.pointers if pointer not in got]
    assert not missing, f"errors do not name {missing}; got {envelope['errors']}"
    assert written_files(offline_dir) == [], "a refused request wrote objects"


def test_there_are_enough_malformed_cases():
    assert len(CASES) >= 35
    assert {c.status for c in CASES.values()} == {400, 401, 413, 422}


def test_a_valid_request_is_written(client, offline_dir):
    """Control: the same client and folder do accept a good job, so 'nothing written' above means something."""
    response = client.post("/api/job", data=body(), headers=USER, content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)
    name = response.get_json()["name"]
    assert any(name in path for path in written_files(offline_dir))


def test_a_valid_dry_run_writes_nothing(client, offline_dir):
    response = client.post("/api/job?dryRun=true", data=body(), headers=USER, content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["manifests"]
    assert written_files(offline_dir) == []


def test_body_exactly_at_the_limit_is_not_too_large(client):
    text = body()
    padded = text + " " * (MIB - len(text.encode()))
    assert len(padded.encode()) == MIB
    response = client.post("/api/job?dryRun=true", data=padded, headers=USER, content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/nope"), ("post", "/api/jobz"), ("post", "/api/v2/job"), ("get", "/"), ("post", "/api/job/x/y/z")],
)
def test_unknown_path_is_a_json_404(client, offline_dir, method, path):
    response = getattr(client, method)(path, data=body(), headers=USER, content_type="application/json")
    assert_envelope(response, 404)
    assert written_files(offline_dir) == []


@pytest.mark.parametrize(("method", "path"), [("put", "/api/job"), ("patch", "/api/job"), ("put", "/api/v1/jobs")])
def test_wrong_method_is_a_json_405(client, offline_dir, method, path):
    response = getattr(client, method)(path, data=body(), headers=USER, content_type="application/json")
    assert_envelope(response, 405)
    assert "POST" in response.headers.get("Allow", "")
    assert written_files(offline_dir) == []
