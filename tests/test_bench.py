"""The benchmark's own moving parts that decide whether its numbers mean anything: the keep-alive client
(plain and TLS with a client certificate), the load driver, the floor's requests and the ratio verdicts.

``make bench`` itself is not run here (it measures speed, which tests never assert).
"""
from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.loadgen import Conn, Endpoint, call, drive, full_request, request_head, tls_context
from bench.scenarios import Ratio
from bench.submits import FloorRequests


def _read_request(sock: socket.socket, buf: bytearray) -> bytes | None:
    """One HTTP/1.1 request (head + Content-Length body) from ``sock``; None at EOF."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    end = buf.index(b"\r\n\r\n") + 4
    length = 0
    for line in bytes(buf[:end]).split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(buf) < end + length:
        buf += sock.recv(65536)
    request = bytes(buf[:end + length])
    del buf[:end + length]
    return request


class ScriptedServer:
    """A loopback server answering each request with the next scripted reply: (bytes, then close?)."""

    def __init__(self, replies: list[tuple[bytes, bool]] | Callable[[int], tuple[bytes, bool]],
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.replies = replies
        self.ssl_context = ssl_context
        self.requests: list[bytes] = []
        self.connections = 0
        self.peer_names: list[str] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _reply(self, index: int) -> tuple[bytes, bool]:
        if callable(self.replies):
            return self.replies(index)
        return self.replies[index]

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
                subject = dict(item[0] for item in sock.getpeercert()["subject"])
                self.peer_names.append(subject["commonName"])
            buf = bytearray()
            while (request := _read_request(sock, buf)) is not None:
                with self.lock:
                    index = len(self.requests)
                    self.requests.append(request)
                reply, close = self._reply(index)
                sock.sendall(reply)
                if close:
                    break
        except (OSError, ssl.SSLError):
            pass
        finally:
            sock.close()

    def close(self) -> None:
        self.listener.close()


def ok(body: bytes, extra: str = "") -> bytes:
    return b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (extra.encode(), len(body), body)


@pytest.fixture
def scripted():
    servers: list[ScriptedServer] = []

    def make(replies, ssl_context=None) -> ScriptedServer:
        servers.append(ScriptedServer(replies, ssl_context))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_one_connection_carries_length_and_chunked_answers_until_the_server_closes(scripted):
    server = scripted([
        (ok(b"hello"), False),
        (b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", False),
        (ok(b"bye", "Connection: close\r\n"), False),
    ])
    ep = Endpoint("127.0.0.1", server.port)
    conn = Conn(ep)
    conn.connect()
    head = request_head("POST", "/x", ep, {"Content-Type": "application/json"})
    assert conn.request(full_request(head, b"{}")) == (200, b"hello")
    assert conn.request(full_request(head, b"{}")) == (201, b"abcde")
    assert conn.request(full_request(head, b"{}")) == (200, b"bye")
    assert conn.sock is None  # "Connection: close" was honoured
    assert server.connections == 1
    assert [r.split(b"\r\n")[0] for r in server.requests] == [b"POST /x HTTP/1.1"] * 3


def test_a_connection_closed_while_idle_is_reopened_and_the_request_sent_once(scripted):
    # The server closes after its first answer without saying so (an idle keep-alive timeout).
    server = scripted([(ok(b"first"), True), (ok(b"second"), False)])
    conn = Conn(Endpoint("127.0.0.1", server.port))
    conn.connect()
    data = full_request(request_head("POST", "/x", conn.ep, {}), b"{}")
    assert conn.request(data) == (200, b"first")
    assert conn.request(data) == (200, b"second")
    assert conn.reconnects == 1
    assert len(server.requests) == 2 and server.connections == 2


def test_a_cut_answer_is_an_error_and_the_request_is_not_repeated(scripted):
    server = scripted([(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part", True)] * 3)
    conn = Conn(Endpoint("127.0.0.1", server.port))
    conn.connect()
    with pytest.raises(ConnectionError):
        conn.request(full_request(request_head("POST", "/x", conn.ep, {}), b"{}"))
    assert len(server.requests) == 1  # a POST that may have been processed is never sent twice


def test_the_driver_runs_every_request_once_and_counts_failures(scripted):
    server = scripted(lambda i: (ok(b"x"), False))
    ep = Endpoint("127.0.0.1", server.port)
    data = full_request(request_head("GET", "/y", ep, {}), b"")

    def work(conn: Conn, i: int) -> str | None:
        status, _ = conn.request(data)
        return "odd" if i % 2 else None if status == 200 else f"HTTP {status}"

    result = drive(ep, work, 41, 4, {})
    assert len(server.requests) == 41
    assert server.connections == 4  # one keep-alive connection per client thread
    assert result.ok == 21 and result.errors == {"odd": 20} and len(result.latencies) == 21
    assert result.pct(0.5) <= result.pct(1.0)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as the kit makes them."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")
    d = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,digitalSignature")
    for name, ext in (("server", "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (d / f"{name}.ext").write_text(f"basicConstraints=CA:FALSE\n{ext}\n")
        run("req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=bench-{name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt")
    return d


def _tls_server_context(pki: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    context.load_verify_locations(pki / "ca.crt")
    context.verify_mode = ssl.CERT_REQUIRED  # as kube-apiserver with --client-ca-file
    return context


def test_tls_with_a_client_certificate(scripted, pki):
    server = scripted(lambda i: (ok(b'{"kind":"Status"}'), False), _tls_server_context(pki))
    ep = Endpoint("127.0.0.1", server.port,
                  tls_context(str(pki / "ca.crt"), str(pki / "client.crt"), str(pki / "client.key")))
    assert call(ep, "GET", "/version", {}) == (200, b'{"kind":"Status"}')
    assert server.peer_names == ["bench-client"]
    without_certificate = Endpoint("127.0.0.1", server.port, tls_context(str(pki / "ca.crt")))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        call(without_certificate, "GET", "/version", {})
    assert len(server.requests) == 1


class RecordingConn:
    """Answers every POST with ``status`` and a created object carrying a uid; remembers what was sent."""

    def __init__(self, status: int = 201) -> None:
        self.status = status
        self.sent: list[bytes] = []

    def request(self, data: bytes) -> tuple[int, bytes]:
        self.sent.append(data)
        return self.status, b'{"metadata": {"name": "n", "uid": "uid-%d"}}' % len(self.sent)


def _dry_answer() -> dict:
    labels = {"release": "job-bcdfg", "runai/user": "runai-submit-bench"}
    return {
        "name": "job-bcdfg", "namespace": "runai-team-a",
        "manifests": [
            {"apiVersion": "run.ai/v1", "kind": "RunaiJob", "metadata": {"name": "job-bcdfg", "labels": labels}},
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "job-bcdfg", "labels": labels,
                          "ownerReferences": [{"kind": "RunaiJob", "name": "job-bcdfg", "uid": ""}]},
             "spec": {"selector": {"release": "job-bcdfg"}}},
        ],
    }


def _bodies(sent: list[bytes]) -> list[dict]:
    return [json.loads(data.split(b"\r\n\r\n", 1)[1]) for data in sent]


def test_the_floor_renames_each_job_and_gives_dependents_the_workloads_uid():
    class Api:
        endpoint = Endpoint("127.0.0.1", 1)
        auth = {"Authorization": "Bearer t"}
        dry_run = False

    floor = FloorRequests(Api(), _dry_answer(), 2, {})
    conn = RecordingConn()
    work = floor.work()
    assert work(conn, 0) is None and work(conn, 1) is None
    lines = [data.split(b"\r\n")[0] for data in conn.sent]
    assert lines == [b"POST /apis/run.ai/v1/namespaces/runai-team-a/runaijobs HTTP/1.1",
                     b"POST /api/v1/namespaces/runai-team-a/services HTTP/1.1"] * 2
    assert all(b"Authorization: Bearer t" in data for data in conn.sent)
    job0, service0, job1, service1 = _bodies(conn.sent)
    assert job0["metadata"]["name"] != job1["metadata"]["name"]
    for job, service in ((job0, service0), (job1, service1)):
        name = job["metadata"]["name"]
        assert "job-bcdfg" not in json.dumps([job, service])
        assert job["metadata"]["labels"]["release"] == service["spec"]["selector"]["release"] == name
        assert service["metadata"]["ownerReferences"][0]["name"] == name
    # The uid is the one the API server gave the workload just before.
    assert service0["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert service1["metadata"]["ownerReferences"][0]["uid"] == "uid-3"


def test_a_refused_floor_create_stops_the_job_and_is_reported():
    class Api:
        endpoint = Endpoint("127.0.0.1", 1)
        auth: dict = {}
        dry_run = True

    errors: dict[str, str] = {}
    conn = RecordingConn(status=409)
    assert FloorRequests(Api(), _dry_answer(), 1, errors).work()(conn, 0) == "HTTP 409"
    assert len(conn.sent) == 1 and b"?dryRun=All " in conn.sent[0]
    assert "floor HTTP 409" in errors


@pytest.mark.parametrize("op, service, reference, judged, value, passed", [
    ("<=", 2.0, 5.0, True, 0.4, True),
    ("<=", 2.1, 5.0, True, 0.42, False),
    (">=", 70.0, 100.0, True, 0.7, True),
    (">=", 69.0, 100.0, True, 0.69, False),
    ("<=", 1.0, 5.0, False, 0.2, None),   # no real floor: a value, but no verdict
    ("<=", 1.0, 0.0, True, None, None),   # nothing to divide by
])
def test_ratio_verdicts(op, service, reference, judged, value, passed):
    ratio = Ratio("seed", "cpu", "text", service, reference, "ms", op, 0.4 if op == "<=" else 0.7, judged)
    assert ratio.passed is passed
    assert ratio.to_dict()["value"] == (None if value is None else pytest.approx(value))
    assert ratio.to_dict()["pass"] is passed


def test_the_modules_make_test_imports_need_no_bench_extras():
    """make test installs requirements-dev.txt only; psutil and matplotlib come with requirements-bench.txt.
    A developer's venv that ran make bench has them, a fresh clone's has not: import as the fresh one would."""
    modules = ["bench.loadgen", "bench.submits", "bench.scenarios", "bench.scenarios.floor", "bench.scenarios.stack",
               "bench.stackapp", "bench.report"]
    script = ("import sys\nsys.modules['psutil'] = sys.modules['matplotlib'] = None\n"
              + "".join(f"import {name}\n" for name in modules))
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
