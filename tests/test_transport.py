"""The cluster's one HTTP path (cluster/transport.py, issue 13) keeps what the kubernetes client did per call.

A small recording server on loopback stands in for the API server: it keeps every request's headers and body,
so what goes over the wire is checked, not how the code is written.
"""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import kubernetes.client
import pytest
import yaml

from runai_submit.api.observability import manifests_digest
from runai_submit.cluster.kinds import RUNAI_JOB
from runai_submit.cluster.kube import KubeCluster
from runai_submit.config import Settings
from runai_submit.errors import ClusterUnavailable
from runai_submit.identity import Caller
from tests.conftest import GOLDEN


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append({"method": self.command, "path": self.path, "headers": self.headers,
                                 "body": body})
        sent = json.loads(body) if body else {}
        answer = json.dumps({**sent, "metadata": {**sent.get("metadata", {}), "uid": "uid-1"}}).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_DELETE = _answer


@pytest.fixture
def recorder():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def cluster_for(url: str, *, token: str = "t0", hook=None, **settings) -> KubeCluster:
    configuration = kubernetes.client.Configuration(host=url)
    configuration.api_key = {"BearerToken": token}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    configuration.refresh_api_key_hook = hook
    config = Settings.load({"backend": "kubeconfig", "connect_timeout": 1.0, "request_timeout": 3.0, **settings},
                           environ={})
    return KubeCluster(kubernetes.client.ApiClient(configuration), config, "kubeconfig")


WORKLOAD = {"apiVersion": "run.ai/v1", "kind": "RunaiJob", "metadata": {"name": "job-1", "namespace": "ns",
                                                                         "annotations": {"user": "jürgen"}},
            "spec": {"template": {"spec": {"containers": [{"name": "job-1", "image": "busybox"}]}}}}


def test_a_create_sends_the_clients_headers_and_the_body_once(recorder) -> None:
    cluster = cluster_for(f"http://127.0.0.1:{recorder.server_port}")
    created = cluster.create("ns", WORKLOAD)
    assert (created.name, created.uid) == ("job-1", "uid-1")
    [seen] = recorder.seen
    assert (seen["method"], seen["path"]) == ("POST", "/apis/run.ai/v1/namespaces/ns/runaijobs")
    headers = seen["headers"]
    assert headers["Authorization"] == "Bearer t0"
    assert headers["User-Agent"] == cluster.api.default_headers["User-Agent"]  # the client's own
    assert headers["Content-Type"] == "application/json" and headers["Accept"] == "application/json"
    assert headers.get("Transfer-Encoding") is None and int(headers["Content-Length"]) == len(seen["body"])
    assert json.loads(seen["body"].decode("utf-8")) == WORKLOAD  # UTF-8 JSON, non-ASCII intact


def test_the_refresh_hook_runs_before_every_call(recorder) -> None:
    """The loaders' hook re-reads a rotated ServiceAccount token (or an exec plugin's) before each request."""
    calls = []

    def rotate(configuration) -> None:
        calls.append(1)
        configuration.api_key["BearerToken"] = f"t{len(calls)}"

    cluster = cluster_for(f"http://127.0.0.1:{recorder.server_port}", hook=rotate)
    cluster.create("ns", WORKLOAD)
    cluster.get("ns", RUNAI_JOB, "job-1")
    cluster.delete("ns", RUNAI_JOB, "job-1")
    assert [s["headers"]["Authorization"] for s in recorder.seen] == ["Bearer t1", "Bearer t2", "Bearer t3"]


def test_a_callers_token_replaces_the_services(recorder) -> None:
    cluster = cluster_for(f"http://127.0.0.1:{recorder.server_port}", auth_mode="token")
    caller = Caller(user="jane", groups=(), mode="token", credentials=(("Authorization", "Bearer caller"),))
    cluster.acting_as(caller).create("ns", WORKLOAD)
    [seen] = recorder.seen
    assert seen["headers"].get_all("Authorization") == ["Bearer caller"]


def test_impersonation_headers_repeat_per_group(recorder) -> None:
    cluster = cluster_for(f"http://127.0.0.1:{recorder.server_port}", auth_mode="impersonate")
    caller = Caller(user="jane", groups=("a", "b"), mode="impersonate",
                    credentials=(("Impersonate-User", "jane"), ("Impersonate-Group", "a"), ("Impersonate-Group", "b")))
    cluster.acting_as(caller).get("ns", RUNAI_JOB, "job-1")
    [seen] = recorder.seen
    assert seen["headers"]["Authorization"] == "Bearer t0"  # the service's own credentials, plus:
    assert seen["headers"]["Impersonate-User"] == "jane"
    assert seen["headers"].get_all("Impersonate-Group") == ["a", "b"]


def test_a_tls_failure_is_the_cluster_being_unavailable(recorder) -> None:
    """TLS to a server that speaks plain HTTP fails in the handshake: 503 with Retry-After, never a 500."""
    cluster = cluster_for(f"https://127.0.0.1:{recorder.server_port}")
    with pytest.raises(ClusterUnavailable) as failed:
        cluster.version()
    assert failed.value.status == 503


def test_connect_failures_are_retried_then_unavailable(tmp_path, caplog) -> None:
    """Through the configuration the service loads (its connect-only retries): a 503, the cause named."""
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t0"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    settings = Settings.load({"backend": "kubeconfig", "kubeconfig": str(kubeconfig), "connect_timeout": 1.0},
                             environ={})
    cluster = KubeCluster.from_settings(settings, "kubeconfig")
    assert cluster.api.configuration.retries.connect == 2
    with pytest.raises(ClusterUnavailable) as failed:
        cluster.version()
    assert failed.value.status == 503
    assert "MaxRetryError" in failed.value.details and "Connection refused" in failed.value.details
    retried = [r for r in caplog.records if r.name == "urllib3.connectionpool" and r.getMessage().startswith("Retrying")]
    assert len(retried) == 2  # connect=2: the request never left, so trying again is safe


def test_the_audit_digest_is_the_hash_of_the_sorted_compact_json() -> None:
    """orjson for the digest (issue 13) must give the digest json.dumps gave, ASCII or not."""
    import hashlib

    manifests = [doc for doc in yaml.safe_load_all((GOLDEN / "maximal-job.yaml").read_text()) if doc]
    manifests.append(WORKLOAD)  # non-ASCII annotation
    for chosen in ([manifests[0]], manifests[:-1], manifests):
        canonical = json.dumps(chosen, sort_keys=True, separators=(",", ":")).encode()
        assert manifests_digest(chosen) == "sha256:" + hashlib.sha256(canonical).hexdigest()


def test_a_server_url_with_a_path_keeps_it(recorder) -> None:
    """A cluster behind a gateway (server: https://gateway/k8s/clusters/c-1): every call goes under that path."""
    cluster = cluster_for(f"http://127.0.0.1:{recorder.server_port}/k8s/clusters/c-1/")
    cluster.get("ns", RUNAI_JOB, "job-1")
    cluster.list(RUNAI_JOB, "ns", label_selector="a=b")
    assert [s["path"] for s in recorder.seen] == ["/k8s/clusters/c-1/apis/run.ai/v1/namespaces/ns/runaijobs/job-1",
                                                  "/k8s/clusters/c-1/apis/run.ai/v1/namespaces/ns/runaijobs"
                                                  "?labelSelector=a%3Db"]
