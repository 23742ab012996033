"""Load generation: a minimal keep-alive HTTP/1.1 client on a raw socket (plain or TLS with a client
certificate), and the driver that runs N requests on C threads, one connection per thread.

The service and the floor are driven by this same client, so whatever the client costs is the same on
both sides. Requests are pre-encoded bytes; only the status line, ``Content-Length``,
``Transfer-Encoding`` and ``Connection`` of an answer are parsed.
"""
from __future__ import annotations

import itertools
import math
import socket
import ssl
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Endpoint:
    """Where to connect; ``ssl_context`` (server CA, client certificate) makes it HTTPS."""

    host: str
    port: int
    ssl_context: ssl.SSLContext | None = None
    timeout: float = 30.0

    @property
    def host_header(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host_header}"


def tls_context(ca_file: str | None, cert_file: str | None = None, key_file: str | None = None,
                verify: bool = True) -> ssl.SSLContext:
    """A client TLS context as kubectl would use it: the cluster's CA, and the user's certificate if any.

    No ALPN is offered, so the API server speaks HTTP/1.1 (as it does to the ``kubernetes`` client's urllib3).
    """
    if verify:
        context = ssl.create_default_context(cafile=ca_file)
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    return context


class HttpError(Exception):
    """An answer this client cannot parse."""


class _Eof(ConnectionError):
    def __init__(self, partial: bool) -> None:
        super().__init__("connection closed" + (" mid-response" if partial else ""))
        self.partial = partial


class Conn:
    """One keep-alive connection. ``request`` sends pre-encoded bytes and returns (status, body)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.ep = endpoint
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.fresh = False
        self.received = False
        self.reconnects = 0

    def connect(self) -> None:
        sock = socket.create_connection((self.ep.host, self.ep.port), timeout=self.ep.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ep.ssl_context is not None:
            sock = self.ep.ssl_context.wrap_socket(sock, server_hostname=self.ep.host)
        self.sock = sock
        self.buf.clear()
        self.fresh = True

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf.clear()

    def request(self, data: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            if self.sock is None:
                self.connect()
                self.reconnects += 1
            fresh, self.fresh = self.fresh, False
            self.received = False
            try:
                self.sock.sendall(data)
                return self._read()
            except (_Eof, ConnectionResetError, BrokenPipeError):
                self.close()
                # A kept-alive connection the server had closed while idle (no byte of an answer came back):
                # the request was not processed, so send it once more on a new connection.
                if fresh or self.received or attempt:
                    raise
            except OSError:
                self.close()
                raise
        raise ConnectionError("connection closed twice")  # pragma: no cover - the loop returns or raises

    def _recv(self, partial: bool) -> None:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise _Eof(partial)
        self.received = True
        self.buf += chunk

    def _read(self) -> tuple[int, bytes]:
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            self._recv(bool(buf))
        head = bytes(buf[:end])
        del buf[:end + 4]
        try:
            status = int(head[9:12])
        except ValueError:
            raise HttpError(f"bad status line {head[:40]!r}") from None
        length, chunked, close = -1, False, head.startswith(b"HTTP/1.0")
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                value = value.lower()
                close = b"close" in value or (close and b"keep-alive" not in value)
        if chunked:
            body = self._read_chunked()
        elif length >= 0:
            while len(buf) < length:
                self._recv(True)
            body = bytes(buf[:length])
            del buf[:length]
        else:  # no length: the body runs to the end of the connection
            try:
                while True:
                    self._recv(True)
            except _Eof:
                pass
            body, close = bytes(buf), True
            buf.clear()
        if close:
            self.close()
        return status, body

    def _read_chunked(self) -> bytes:
        buf, out = self.buf, bytearray()
        while True:
            while (nl := buf.find(b"\r\n")) < 0:
                self._recv(True)
            size = int(bytes(buf[:nl]).split(b";")[0].strip() or b"0", 16)
            del buf[:nl + 2]
            if size == 0:
                while (end := buf.find(b"\r\n")) != 0:  # trailers up to the empty line
                    if end < 0:
                        self._recv(True)
                    else:
                        del buf[:end + 2]
                del buf[:2]
                return bytes(out)
            while len(buf) < size + 2:
                self._recv(True)
            out += buf[:size]
            del buf[:size + 2]


def request_head(method: str, path: str, ep: Endpoint, headers: dict[str, str]) -> bytes:
    """Request line and headers up to ``Content-Length: `` (the caller appends the length and body)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {ep.host_header}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")


def full_request(head: bytes, body: bytes) -> bytes:
    return b"%s%d\r\n\r\n%s" % (head, len(body), body)


def call(ep: Endpoint, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """One request on a throw-away connection (set-up and clean-up, never timed)."""
    conn = Conn(ep)
    try:
        return conn.request(full_request(request_head(method, path, ep, headers), body))
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------------
# The driver: N requests, C threads, each with its own keep-alive connection
# --------------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    n: int
    ok: int
    errors: dict[str, int]
    elapsed: float
    latencies: list[float]
    sample_error: str = ""
    reconnects: int = 0

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    def pct(self, q: float) -> float:
        """Nearest-rank percentile in ms."""
        if not self.latencies:
            return float("nan")
        lat = self.latencies
        return lat[max(0, min(len(lat) - 1, math.ceil(q * len(lat)) - 1))] * 1000.0

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.n, "ok": self.ok, "errors": self.errors, "seconds": round(self.elapsed, 4),
            "per_second": round(self.rate, 2),
            "p50_ms": round(self.pct(0.50), 3), "p95_ms": round(self.pct(0.95), 3),
            "p99_ms": round(self.pct(0.99), 3), "max_ms": round(self.pct(1.0), 3),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 3) if self.latencies else None,
            "reconnects": self.reconnects,
            **({"sample_error": self.sample_error} if self.sample_error else {}),
        }


#: One unit of work on a connection: returns None on success, else a short error label.
Work = Callable[[Conn, int], "str | None"]


def drive(ep: Endpoint, work: Work, total: int, concurrency: int, errors_out: dict[str, str]) -> LoadResult:
    """Run ``work(conn, i)`` for i in 0..total-1 on ``concurrency`` threads; time from a common start.

    Every thread connects (TLS handshake included) before the start, so the timing holds only requests.
    """
    counter = itertools.count()
    start = threading.Barrier(concurrency + 1)
    stop = threading.Event()
    per_thread: list[list[float]] = []
    errors: Counter = Counter()
    reconnects = [0]
    lock = threading.Lock()

    def worker() -> None:
        conn: Conn | None = Conn(ep)
        lat: list[float] = []
        local_errors: Counter = Counter()
        try:
            conn.connect()
        except OSError as exc:
            local_errors[f"connect: {type(exc).__name__}"] += 1
            errors_out.setdefault(f"connect: {type(exc).__name__}", str(exc))
            conn = None
        try:
            start.wait()
        except threading.BrokenBarrierError:
            return
        clock = time.perf_counter
        while conn is not None and not stop.is_set():
            i = next(counter)
            if i >= total:
                break
            t0 = clock()
            try:
                err = work(conn, i)
            except (OSError, HttpError, ValueError) as exc:
                err = type(exc).__name__
                conn.close()
                errors_out.setdefault(err, str(exc))
            t1 = clock()
            if err is None:
                lat.append(t1 - t0)
            else:
                local_errors[err] += 1
        if conn is not None:
            conn.close()
        with lock:
            per_thread.append(lat)
            errors.update(local_errors)
            reconnects[0] += conn.reconnects if conn else 0

    threads = [threading.Thread(target=worker, daemon=True, name=f"load-{i}") for i in range(concurrency)]
    for t in threads:
        t.start()
    try:
        start.wait(timeout=60)
        t0 = time.perf_counter()
        for t in threads:
            while t.is_alive():
                t.join(0.2)
        elapsed = time.perf_counter() - t0
    except BaseException:
        stop.set()
        start.abort()
        raise
    latencies = sorted(itertools.chain.from_iterable(per_thread))
    sample = next(iter(errors_out.values()), "") if errors else ""
    return LoadResult(total, len(latencies), dict(errors), elapsed, latencies, sample, reconnects[0])
