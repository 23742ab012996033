"""How one request reaches the API server: the ``kubernetes`` client's configuration, auth, TLS and pool, used directly.

``ApiClient.param_serialize`` + ``call_api`` walk every header and body through ``sanitize_for_serialization``,
encode the body as a ``str`` (so ``http.client`` sends headers and body in two writes, two TLS records), and
wrap the answer in a ``RESTResponse``: about a third of the CPU a create costs the service, for plain dicts that
need none of it. Here the body is encoded to bytes once (one write), and the request goes straight to the
client's own ``urllib3`` pool manager. Everything that makes the client the client is kept:

- the pool manager the ``ApiClient`` built from the configuration (CA, client certificate, ``verify_ssl``,
  ``assert_hostname``, ``tls_server_name``, proxy, socket options, pool size) and its ``retries`` (connect
  failures only: see ``kube.load_configuration``);
- ``configuration.host`` and ``configuration.auth_settings()`` read on every call, so the loaders' refresh hook
  still runs before each request (a rotated ServiceAccount token, an exec plugin's expiring token);
- the client's default headers (``User-Agent``) and cookie.
"""
from __future__ import annotations

from typing import Any

import kubernetes.client
import orjson
import urllib3

from .wire import Answer, exchange

JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


def encode_body(body: Any) -> bytes:
    """A request body as JSON bytes (UTF-8; the API server takes JSON as UTF-8)."""
    return orjson.dumps(body)


def decode_answer(data: bytes | str) -> Any:
    """An API server answer as Python objects."""
    return orjson.loads(data)


class Transport:
    """Sends requests through one ``ApiClient``'s configuration and pool; one per process, shared by every handle."""

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.api_client = api_client
        self.configuration = api_client.configuration
        self.pool = api_client.rest_client.pool_manager
        self._timeouts: dict[tuple[float, float], urllib3.Timeout] = {}
        self._pools: dict[str, Any] = {}     # configuration.host -> its connection pool (False: via the manager)
        self._prefixes: dict[str, str] = {}  # configuration.host -> the path prefix of the server URL
        self._host_headers: dict[str, str] = {}  # configuration.host -> its Host header

    def headers(self, auth_settings: tuple[str, ...], extra: dict[str, str] | None) -> dict[str, str]:
        """The headers of one call: JSON, ``extra``, the client's defaults, then the named auth settings.

        The same precedence as ``ApiClient.param_serialize``: default headers override the call's, auth
        overrides both. ``auth_settings()`` runs the configuration's refresh hook, as the client does per call.
        """
        headers = {**JSON_HEADERS, **extra} if extra else dict(JSON_HEADERS)
        headers.update(self.api_client.default_headers)
        if self.api_client.cookie:
            headers["Cookie"] = self.api_client.cookie
        if auth_settings:
            available = self.configuration.auth_settings()
            for name in auth_settings:
                setting = available.get(name)
                if not setting:
                    continue
                if setting["in"] != "header":  # the generated client defines only a header (BearerToken)
                    raise ValueError(f"auth setting {name} is not a header")
                headers[setting["key"]] = setting["value"]
        return headers

    def send(self, method: str, path: str, headers: Any, body: bytes | None, timeout: tuple[float, float], *,
             stream: bool = False) -> urllib3.BaseHTTPResponse | Answer:
        """One request; the answer's body is read (and the connection returned to the pool) unless ``stream``.

        Transport failures raise urllib3's exceptions (``cluster.errors.TRANSPORT_ERRORS``). Redirects are not
        followed: an API server does not redirect, and a 3xx becomes an error like any unexpected status.
        """
        host = self.configuration.host
        pool = self._pools.get(host)
        if pool is None or pool.pool is None:  # first call to this host, or the pool was closed
            pool = self._pools[host] = self._pool_for(host)
        if pool is False:
            return self.pool.urlopen(method, host + path, body=body, headers=headers,
                                     timeout=self._timeout(timeout), preload_content=not stream, redirect=False)
        target = self._prefixes[host] + path
        if not stream:
            # A kept-alive connection: the request and its answer straight on its socket (wire.py).
            conn = pool._get_conn()  # a dropped connection comes back closed (urllib3 checks it)
            if conn.sock is not None:
                keep = False
                try:
                    answer, keep = exchange(conn, method, target, self._host_headers[host], headers, body,
                                            timeout[1], pool)
                finally:
                    if not keep:  # failed, or the server closes it: bytes left unread would poison the next call
                        conn.close()
                    pool._put_conn(conn)
                return answer
            pool._put_conn(conn)  # to be opened: urllib3 does it below (connect retries, TLS, its errors)
        # The host's connection pool, as PoolManager.urlopen would pick it (parsing the URL on every call).
        return pool.urlopen(method, target, body=body, headers=headers, timeout=self._timeout(timeout),
                            preload_content=not stream, redirect=False, assert_same_host=False)

    def _pool_for(self, host: str) -> Any:
        """The connection pool of ``host``; False behind an HTTP(S) proxy, where the manager adds its headers."""
        if isinstance(self.pool, urllib3.ProxyManager):
            return False
        # A server URL may carry a path (a cluster behind a gateway, e.g. https://rancher/k8s/clusters/c-1).
        self._prefixes[host] = (urllib3.util.parse_url(host).path or "").rstrip("/")
        pool = self.pool.connection_from_url(host)
        # The Host header as http.client writes it: brackets around an IPv6 address, no default port.
        name = f"[{pool.host}]" if ":" in pool.host else pool.host
        default_port = 443 if pool.scheme == "https" else 80
        self._host_headers[host] = name if pool.port in (None, default_port) else f"{name}:{pool.port}"
        return pool

    def _timeout(self, timeout: tuple[float, float]) -> urllib3.Timeout:
        found = self._timeouts.get(timeout)
        if found is None:
            found = urllib3.Timeout(connect=timeout[0], read=timeout[1])
            if len(self._timeouts) < 16:  # the configured pairs; a log's own read timeout may vary
                self._timeouts[timeout] = found
        return found
