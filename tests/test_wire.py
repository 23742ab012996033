"""Calls on kept-alive connections (cluster/wire.py, issue 13): every way an HTTP/1.1 answer may arrive.

A scripted server on loopback answers each request with the next scripted bytes (or closes, or stays silent),
and counts connections, so reuse, framing and failures are checked on the wire through ``KubeCluster``.
"""
from __future__ import annotations

import json
import socket
import threading
from collections import deque

import kubernetes.client
import pytest

from runai_submit.cluster.kinds import RUNAI_JOB
from runai_submit.cluster.kube import KubeCluster
from runai_submit.config import Settings
from runai_submit.errors import ClusterUnavailable

OBJECT = json.dumps({"kind": "RunaiJob", "metadata": {"name": "job-1", "uid": "u-1"}}).encode()


def http(status: str, body: bytes = OBJECT, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json", *extra]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in extra):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Scripted:
    """Answers request i with script[i]: bytes to send, ("then close", bytes), "close" (hang up at once), or
    "silent" (never answer)."""

    def __init__(self) -> None:
        self.script: deque = deque()
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(buf) < length:
                    buf += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + buf[:length])
                buf = buf[length:]
                action = self.script.popleft()
                if action == "close":
                    return
                if action == "silent":
                    self._stop.wait(5)
                    return
                if isinstance(action, tuple):
                    conn.sendall(action[1])
                    return
                conn.sendall(action)

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


@pytest.fixture
def server():
    scripted = Scripted()
    yield scripted
    scripted.close()


def cluster_at(port: int, **settings) -> KubeCluster:
    configuration = kubernetes.client.Configuration(host=f"http://127.0.0.1:{port}")
    configuration.api_key = {"BearerToken": "t0"}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    config = Settings.load({"backend": "kubeconfig", "connect_timeout": 1.0, "request_timeout": 2.0,
                            "throttle_retries": 0, **settings}, environ={})
    return KubeCluster(kubernetes.client.ApiClient(configuration), config, "kubeconfig")


MANIFEST = {"apiVersion": "run.ai/v1", "kind": "RunaiJob", "metadata": {"name": "job-1"}, "spec": {}}


def test_calls_share_one_connection_and_send_what_http_client_sent(server) -> None:
    server.script.extend([http("201 Created"), http("200 OK"), http("200 OK")])
    cluster = cluster_at(server.port)
    assert cluster.create("ns", MANIFEST).uid == "u-1"          # opens the connection (urllib3)
    assert cluster.get("ns", RUNAI_JOB, "job-1")["metadata"]["uid"] == "u-1"   # kept alive: wire.py
    assert cluster.delete("ns", RUNAI_JOB, "job-1") is True
    assert server.connections == 1
    first, second = server.requests[0], server.requests[1]
    for request in (first, second):
        lines = request.split(b"\r\n\r\n")[0].lower().split(b"\r\n")  # header names are case-insensitive
        assert b"host: 127.0.0.1:%d" % server.port in lines
        assert b"accept-encoding: identity" in lines and b"authorization: bearer t0" in lines
    assert second.startswith(b"GET /apis/run.ai/v1/namespaces/ns/runaijobs/job-1 HTTP/1.1\r\n")
    assert server.requests[2].startswith(b"DELETE /apis/run.ai/v1/namespaces/ns/runaijobs/job-1"
                                         b"?propagationPolicy=Background HTTP/1.1\r\n")


def test_a_create_on_a_kept_alive_connection_sends_its_body_with_its_length(server) -> None:
    server.script.extend([http("200 OK"), http("201 Created")])
    cluster = cluster_at(server.port)
    cluster.version()
    cluster.create("ns", {**MANIFEST, "metadata": {"name": "job-1", "annotations": {"user": "jürgen"}}})
    head, _, body = server.requests[1].partition(b"\r\n\r\n")
    assert b"Content-Length: %d" % len(body) in head.split(b"\r\n")
    assert json.loads(body)["metadata"]["annotations"]["user"] == "jürgen"


def test_chunked_answers_with_extensions_and_trailers(server) -> None:
    items = json.dumps({"items": [{"metadata": {"name": f"j{i}"}} for i in range(300)]}).encode()
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(items[i:i + 1000]), items[i:i + 1000])
                      for i in range(0, len(items), 1000))
    server.script.extend([http("200 OK"), http("200 OK", chunks + b"0\r\nX-Trailer: 1\r\n\r\n",
                                               "Transfer-Encoding: chunked"), http("200 OK")])
    cluster = cluster_at(server.port)
    cluster.version()
    assert len(cluster.list(RUNAI_JOB, "ns")) == 300
    cluster.version()  # the connection stayed in step
    assert server.connections == 1


def test_an_answer_that_closes_the_connection_is_read_and_the_next_call_reconnects(server) -> None:
    server.script.extend([http("200 OK"), http("200 OK", OBJECT, "Connection: close"), http("200 OK")])
    cluster = cluster_at(server.port)
    cluster.version()
    cluster.get("ns", RUNAI_JOB, "job-1")
    cluster.get("ns", RUNAI_JOB, "job-1")
    assert server.connections == 2


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])  # 1.1 too: no length, so the end is the close
def test_a_body_delimited_by_the_end_of_the_connection(server, version) -> None:
    server.script.extend([http("200 OK"),
                          ("then close", f"{version} 200 OK\r\nContent-Type: application/json\r\n\r\n".encode()
                           + OBJECT),
                          http("200 OK")])
    cluster = cluster_at(server.port)
    cluster.version()
    assert cluster.get("ns", RUNAI_JOB, "job-1")["metadata"]["name"] == "job-1"
    cluster.version()  # on a new connection
    assert server.connections == 2


def test_interim_answers_are_skipped(server) -> None:
    server.script.extend([http("200 OK"), b"HTTP/1.1 100 Continue\r\n\r\n" + http("201 Created")])
    cluster = cluster_at(server.port)
    cluster.version()
    assert cluster.create("ns", MANIFEST).name == "job-1"


def test_errors_keep_their_status_body_and_headers(server) -> None:
    status = json.dumps({"kind": "Status", "status": "Failure", "reason": "AlreadyExists", "code": 409,
                         "message": 'runaijobs "job-1" already exists',
                         "details": {"name": "job-1", "kind": "runaijobs"}}).encode()
    server.script.extend([http("200 OK"), http("409 Conflict", status),
                          http("201 Created", OBJECT, 'Warning: 299 - "would violate PodSecurity \\"restricted\\""')])
    cluster = cluster_at(server.port)
    cluster.version()
    with pytest.raises(Exception) as conflict:
        cluster.create("ns", MANIFEST)
    assert conflict.value.status == 409 and "already exists" in conflict.value.message
    created = cluster.create("ns", MANIFEST)
    assert created.warnings == ('would violate PodSecurity "restricted"',)


def test_a_silent_api_server_is_a_timeout_that_may_have_applied(server) -> None:
    server.script.extend([http("200 OK"), "silent"])
    cluster = cluster_at(server.port, request_timeout=0.3)
    cluster.version()
    with pytest.raises(ClusterUnavailable) as failed:
        cluster.create("ns", MANIFEST)
    assert failed.value.maybe_applied and "ReadTimeoutError" in failed.value.details


def test_a_connection_cut_mid_answer_may_have_applied(server) -> None:
    server.script.extend([http("200 OK"), ("then close", http("201 Created")[:-10])])
    cluster = cluster_at(server.port)
    cluster.version()
    with pytest.raises(ClusterUnavailable) as failed:
        cluster.create("ns", MANIFEST)
    assert failed.value.maybe_applied and "ProtocolError" in failed.value.details


def test_a_connection_the_server_closed_while_idle_is_replaced(server) -> None:
    server.script.extend([http("200 OK", OBJECT), "close", http("200 OK")])
    cluster = cluster_at(server.port)
    cluster.version()
    with pytest.raises(ClusterUnavailable):  # the server hung up on this request: nothing to read
        cluster.get("ns", RUNAI_JOB, "job-1")
    assert cluster.get("ns", RUNAI_JOB, "job-1") is not None  # a new connection
    assert server.connections == 2


def test_a_header_value_with_a_line_break_is_refused_before_sending(server) -> None:
    from runai_submit.cluster.wire import exchange

    class Conn:
        sock = None

    with pytest.raises(ValueError, match="Invalid header value"):
        exchange(Conn(), "GET", "/x", "h", {"Impersonate-User": "a\r\nAuthorization: Bearer stolen"}, None, 1.0,
                 None)


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
def test_an_answer_ended_by_the_close_says_not_to_keep_the_connection(version) -> None:
    """Not kept even when the pool's own check for a dropped connection would catch it later."""
    from runai_submit.cluster.wire import exchange

    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(f"{version} 200 OK\r\nContent-Type: application/json\r\n\r\n".encode() + OBJECT)
        theirs.shutdown(socket.SHUT_WR)  # the end of the body; the request can still be written

        class Conn:
            sock = ours

        answer, keep = exchange(Conn(), "GET", "/x", "h", {}, None, 2.0, None)
    assert (answer.status, answer.data, keep) == (200, OBJECT, False)
