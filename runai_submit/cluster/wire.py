"""One request and its answer on a kept-alive connection of the client's pool: HTTP/1.1 written and read directly.

Once a connection of the ``kubernetes`` client's urllib3 pool is open (its TLS set up by urllib3 from the
client's configuration), a call to the API server is a few hundred bytes each way. ``http.client`` and urllib3
spend more CPU around them than the API server's answer is worth: request lines and headers one by one, the
answer's headers through the ``email`` parser, response objects in two layers (about a quarter of the CPU a
seed submit costs the service). ``exchange`` writes the request in one piece and reads the answer with a
minimal reader: status line, headers, and a body delimited by ``Content-Length``, ``chunked`` or the end of the
connection, as RFC 9112 says.

Only kept-alive connections are used so: a connection that has to be opened (the first call, or one the
server closed) goes through urllib3's own ``urlopen``, with its connect retries, timeouts and TLS errors.
Failures on the way answer as urllib3 would with the service's retry settings (``kube.load_configuration``:
no read retries): ``ReadTimeoutError`` for a timeout, ``ProtocolError`` for a connection that broke, both
"may have been applied" for the rollback (``cluster.errors``).
"""
from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from typing import Any

from urllib3 import HTTPHeaderDict
from urllib3.exceptions import ProtocolError, ReadTimeoutError

_MAX_HEAD = 256 * 1024              # status line and headers; the API server sends a few hundred bytes
_RECV = 65536
# A header value may not end a line early: the API server would read the rest as another header.
_LINE_BREAK = re.compile(r"[\r\n\0]")
_NO_BODY = (204, 304)


@dataclass
class Answer:
    """What ``KubeCluster._request`` reads of an answer: like urllib3's response, its body read whole."""

    status: int
    headers: HTTPHeaderDict
    data: bytes


class _Broken(Exception):
    """The connection ended, or sent something that is not HTTP/1.1, before the answer was complete."""


def exchange(conn: Any, method: str, target: str, host: str, headers: Any, body: bytes | None,
             read_timeout: float | None, pool: Any) -> tuple[Answer, bool]:
    """Send one request on ``conn`` (connected) and read the answer; (answer, whether the connection may be kept).

    Raises ``ReadTimeoutError`` or ``ProtocolError`` (urllib3's, naming ``pool``); the caller then drops the
    connection. ``ValueError`` for a header value with a line break, as http.client raises it.
    """
    sock = conn.sock
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Accept-Encoding: identity"]
    for name, value in headers.items():
        if _LINE_BREAK.search(value) or _LINE_BREAK.search(name):
            raise ValueError(f"Invalid header value {value!r}" if _LINE_BREAK.search(value) else
                             f"Invalid header name {name!r}")
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")  # http.client's encoding of header text
    if body:
        request += body
    try:
        sock.settimeout(read_timeout)
        sock.sendall(request)
        return _read_answer(sock, method)
    except (TimeoutError, socket.timeout) as exc:
        raise ReadTimeoutError(pool, target, f"Read timed out. (read timeout={read_timeout})") from exc
    except (_Broken, OSError) as exc:
        raise ProtocolError("Connection aborted.", exc) from exc


def _read_answer(sock: Any, method: str) -> tuple[Answer, bool]:
    buf = bytearray()
    while True:
        end = _fill_to(sock, buf, b"\r\n\r\n")
        head = bytes(buf[:end]).decode("latin-1")
        del buf[:end + 4]
        status_line, _, header_text = head.partition("\r\n")
        version, _, rest = status_line.partition(" ")
        code_text = rest[:3]
        if not version.startswith("HTTP/1.") or len(code_text) != 3 or not code_text.isdigit():
            raise _Broken(f"not an HTTP/1.1 status line: {status_line[:80]!r}")
        status = int(code_text)
        if status >= 200 or status == 101:
            break
        # 1xx: an interim answer (100 Continue, 103 Early Hints); the final one follows.
    headers = HTTPHeaderDict()
    for line in header_text.split("\r\n"):
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise _Broken(f"not a header line: {line[:80]!r}")
            headers.add(name.strip(), value.strip())
    keep = version == "HTTP/1.1"
    connection = headers.get("Connection", "").lower()
    if "close" in connection:
        keep = False
    elif "keep-alive" in connection:
        keep = True
    if method == "HEAD" or status in _NO_BODY or status < 200:
        return Answer(status, headers, b""), keep
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return Answer(status, headers, _read_chunked(sock, buf)), keep
    length = headers.get("Content-Length")
    if length is not None:
        try:
            size = int(length)
        except ValueError:
            raise _Broken(f"bad Content-Length {length!r}") from None
        while len(buf) < size:
            _recv(sock, buf)
        if len(buf) > size:  # more than announced: the connection is out of step
            raise _Broken("more bytes than Content-Length")
        return Answer(status, headers, bytes(buf)), keep
    while True:  # no length: the body ends with the connection
        try:
            _recv(sock, buf)
        except _Broken:
            return Answer(status, headers, bytes(buf)), False


def _read_chunked(sock: Any, buf: bytearray) -> bytes:
    body = bytearray()
    while True:
        end = _fill_to(sock, buf, b"\r\n")
        size_text = bytes(buf[:end]).split(b";", 1)[0].strip()
        del buf[:end + 2]
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _Broken(f"bad chunk size {size_text[:20]!r}") from None
        if size == 0:
            while True:  # trailers, up to the empty line
                end = _fill_to(sock, buf, b"\r\n")
                del buf[:end + 2]
                if end == 0:
                    if buf:
                        raise _Broken("bytes after the last chunk")
                    return bytes(body)
        while len(buf) < size + 2:
            _recv(sock, buf)
        if buf[size:size + 2] != b"\r\n":
            raise _Broken("a chunk does not end with CRLF")
        body += buf[:size]
        del buf[:size + 2]


def _fill_to(sock: Any, buf: bytearray, mark: bytes) -> int:
    """Read until ``mark`` is in ``buf``; its index."""
    while True:
        end = buf.find(mark)
        if end >= 0:
            return end
        if len(buf) > _MAX_HEAD:
            raise _Broken("no end of the answer's head")
        _recv(sock, buf)


def _recv(sock: Any, buf: bytearray) -> None:
    chunk = sock.recv(_RECV)
    if not chunk:
        raise _Broken("the server closed the connection")
    buf += chunk
