"""A real cluster reached through the official ``kubernetes`` client.

Requests go through ``transport.Transport``: the client's own configuration, auth (token refresh, client
certificates), TLS and connection pool, with plain dict bodies encoded once and JSON answers. The typed
``*Api`` methods would validate every body with pydantic and build model objects from every answer, about
1.5 ms of CPU per call for objects whose name and uid are all we read; even ``ApiClient.call_api`` costs a
third of a create's CPU (see transport.py).
"""
from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any
from urllib.parse import urlencode

import kubernetes.client
import kubernetes.config
from urllib3.util.retry import Retry

from ..config import Settings
from ..errors import ConfigError, ProjectNotFound, ServiceError
from ..identity import Caller
from ..model import CreatedObject
from ..metrics import APISERVER_SECONDS, child
from .access import SELF_SUBJECT_REVIEW, SELF_SUBJECT_REVIEWS, AccessReviews
from .errors import TRANSPORT_ERRORS, error_from_response, error_from_transport
from .kinds import NAMESPACE, RUNAI_JOB, WORKLOAD_KINDS, Kind, kind_of
from .kube_insight import KubeInsight
from .transport import Transport, decode_answer, encode_body

log = logging.getLogger(__name__)

QUEUE_LABEL = "runai/queue"


def load_configuration(settings: Settings, backend: str) -> kubernetes.client.Configuration:
    """The client configuration for ``backend`` ("incluster" or "kubeconfig")."""
    configuration = kubernetes.client.Configuration()
    try:
        if backend == "incluster":
            kubernetes.config.load_incluster_config(client_configuration=configuration)
        else:
            kubernetes.config.load_kube_config(
                config_file=settings.kubeconfig or None,
                context=settings.kube_context or None,
                client_configuration=configuration,
            )
    except (kubernetes.config.ConfigException, OSError, ValueError) as exc:
        raise ConfigError([f"cannot load the {backend} cluster configuration: {exc}"]) from exc
    check_own_credentials(settings, configuration)
    # The loaders' token-refresh hook re-assigns ``host`` before every call, and the host setter re-reads
    # the proxy from the whole environment (63 µs, and ~0.5 ms in a pod with a few hundred service env
    # vars). Assigning the proxy once pins it to what the environment says now.
    configuration.proxy = configuration.proxy
    # Retry only failures to connect (the request never left); a read failure on a POST must not be
    # repeated blindly, and 429/5xx are handled above urllib3 where Retry-After is honoured.
    configuration.retries = Retry(
        total=2, connect=2, read=0, status=0, redirect=0, backoff_factor=0.05, respect_retry_after_header=False
    )
    # A batch submit creates up to batch_concurrency jobs at once over this one pool. urllib3 keeps at most
    # maxsize connections per host (the client's default is 5 per CPU the machine reports, so 5 on one core)
    # and opens-and-drops any beyond, logging "Connection pool is full": keep room for the whole fan-out.
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0,
                                                settings.batch_concurrency)
    return configuration


def check_own_credentials(settings: Settings, configuration: kubernetes.client.Configuration) -> None:
    """Token mode needs the service's own credentials to be a bearer token, never a client certificate.

    kube-apiserver tries the TLS client certificate before the Authorization header, and a valid certificate
    wins: every call would then run as the service, whatever token the caller sent (verified against
    v1.28, tests/test_auth_real.py). https://kubernetes.io/docs/reference/access-authn-authz/authentication/
    """
    if settings.auth_mode == "token" and (configuration.cert_file or configuration.key_file):
        raise ConfigError([
            "auth_mode token needs the service's own credentials to be a bearer token (the pod's ServiceAccount "
            "in-cluster, or a kubeconfig user with a token), but this configuration presents a TLS client "
            "certificate: the API server would authenticate every call as the service and ignore the "
            "caller's token. Use a token kubeconfig, or auth_mode impersonate."
        ])


class KubeCluster(KubeInsight):
    """Creates, reads and deletes a job's objects in a real (or faithfully faked) API server.

    ``KubeInsight`` adds the job insight calls: pod logs and the suspend/resume patch.
    """

    def __init__(self, api_client: kubernetes.client.ApiClient, settings: Settings, backend: str) -> None:
        self.api = api_client
        self._transport = Transport(api_client)  # issue 13: the client's pool and auth, without call_api
        self.settings = settings
        self.backend = backend
        self._timeout = (settings.connect_timeout, settings.request_timeout)
        self._lock = threading.Lock()
        self._workload: Kind | None = None
        self._namespaces: dict[str, str] = {}
        self._namespaces_read_at = float("-inf")
        # --- policy: namespace labels (Pod Security level) ---
        self._labelled_namespaces: dict[str, dict[str, str]] = {}  # read with the project map
        self._other_namespaces: dict[str, tuple[float, dict[str, str]]] = {}  # by convention: (read at, labels)
        # --- auth modes (issue 9): what the cluster said about callers, shared by every bound handle ------
        self._access = AccessReviews(settings.auth_cache_seconds)

    @classmethod
    def from_settings(cls, settings: Settings, backend: str) -> KubeCluster:
        configuration = load_configuration(settings, backend)
        return cls(kubernetes.client.ApiClient(configuration), settings, backend)

    def close(self) -> None:
        self.api.close()

    # --- discovery, cached for the life of the process ------------------------------------------

    def workload_kind(self) -> Kind:
        """RunaiJob where the cluster serves run.ai/v1, else batch/v1 Job; asked once per process."""
        if self._workload is None:
            with self._lock:
                if self._workload is None:
                    self._workload = self._discover_workload_kind()
                    log.info("workload kind: %s", self._workload.api_version + " " + self._workload.kind)
        return self._workload

    def _discover_workload_kind(self) -> Kind:
        if self.settings.workload_kind != "auto":
            return WORKLOAD_KINDS[self.settings.workload_kind]
        code, body, _ = self._request("GET", f"/apis/{RUNAI_JOB.api_version}", verb="discover", kind="-",
                                      what="discover run.ai/v1",
                                      expect=(200, 404))
        if code == 200 and any(r.get("name") == RUNAI_JOB.plural for r in decode_answer(body).get("resources", [])):
            return RUNAI_JOB
        return WORKLOAD_KINDS["Job"]

    def namespace_for(self, project: str) -> str:
        """The namespace labelled ``runai/queue=<project>``, else the convention; the label map is cached."""
        if time.monotonic() - self._namespaces_read_at > self.settings.namespace_cache_seconds:
            self._refresh_namespaces()
        labelled = self._namespaces.get(project)
        if labelled:
            return labelled
        namespace = self.settings.namespace_for(project)
        owner = (self._labelled_namespaces.get(namespace) or {}).get(QUEUE_LABEL)
        if owner is not None and owner != project:
            # The convention's namespace says it is another project's: never this one's fallback (its jobs
            # would count against that project's quota, and list under neither project).
            raise ProjectNotFound(project, namespace, details=(
                f"No namespace is labelled runai/queue={project}, and namespace {namespace!r} is labelled "
                f"runai/queue={owner}: it is project {owner!r}'s."))
        return namespace

    def forget_namespaces(self) -> None:
        """Drop the cached project map (after a create found a namespace missing)."""
        self._namespaces_read_at = float("-inf")

    def projects(self) -> dict[str, str]:
        """Project -> namespace for every namespace labelled with a queue."""
        self._refresh_namespaces(strict=True)
        return dict(self._namespaces)

    def _refresh_namespaces(self, strict: bool = False) -> None:
        with self._lock:
            try:
                items = self.list(NAMESPACE, label_selector=QUEUE_LABEL)
            except ServiceError as exc:
                if strict:
                    raise
                # Without the label map the naming convention still works. The map is not marked fresh,
                # so the next submit asks again instead of trusting a stale (or empty) map for a whole TTL.
                log.warning("cannot list namespaces labelled %s (%s); using %s", QUEUE_LABEL, exc.message,
                            self.settings.namespace_template)
                return
            projects: dict[str, str] = {}  # built whole, then swapped in: readers take no lock
            for item in sorted(items, key=lambda item: item["metadata"]["name"]):
                project, namespace = item["metadata"]["labels"][QUEUE_LABEL], item["metadata"]["name"]
                chosen = projects.setdefault(project, namespace)  # the first by name, in every replica alike
                if chosen != namespace:
                    log.warning("namespaces %s and %s are both labelled %s=%s; the project uses %s",
                                chosen, namespace, QUEUE_LABEL, project, chosen)
            self._namespaces = projects
            # policy: the labels of these namespaces (their Pod Security level) come with the map
            self._labelled_namespaces = {item["metadata"]["name"]: item["metadata"]["labels"] for item in items}
            self._namespaces_read_at = time.monotonic()

    # --- policy: the labels of a project namespace (its Pod Security level) -------------------------

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """The labels of ``namespace``, cached like the project map; {} when it cannot be read.

        A namespace labelled runai/queue comes with the project map (no call of its own); one found by
        the naming convention costs one GET per ``namespace_cache_seconds``. When neither can be read
        the Pod Security level is left to the API server, which still enforces it on the pods.
        """
        ttl = self.settings.namespace_cache_seconds
        if time.monotonic() - self._namespaces_read_at > ttl:
            self._refresh_namespaces()
        if namespace in self._labelled_namespaces:
            return self._labelled_namespaces[namespace]
        cached = self._other_namespaces.get(namespace)
        if cached is not None and time.monotonic() - cached[0] <= ttl:
            return cached[1]
        try:
            code, body, _ = self._request("GET", NAMESPACE.object_path(None, namespace), verb="get",
                                          kind="Namespace", what=f"read namespace {namespace}", expect=(200, 404))
        except ServiceError as exc:
            log.warning("cannot read the labels of namespace %s (%s); Pod Security is left to the API server",
                        namespace, exc.message)
            return {}
        if code == 404:
            return {}  # not cached: the create answers NotFound, and the namespace may appear any time
        labels = decode_answer(body).get("metadata", {}).get("labels") or {}
        self._other_namespaces[namespace] = (time.monotonic(), labels)
        return labels

    # --- object operations -----------------------------------------------------------------------

    def create(self, namespace: str, manifest: dict, *, dry_run: bool = False) -> CreatedObject:
        kind = kind_of(manifest)
        name = manifest["metadata"]["name"]
        query = {"dryRun": "All"} if dry_run else None
        _, body, headers = self._request(
            "POST", kind.collection_path(namespace), query=query, body=manifest,
            verb="create", kind=kind.kind, what=f"create {kind.kind} {namespace}/{name}", expect=(200, 201, 202),
        )
        created = decode_answer(body)
        meta = created.get("metadata", {})
        # DEBUG: the submit's audit record lists every object created; deletes and rollbacks stay at INFO.
        log.debug("%s %s %s/%s", "dry-run created" if dry_run else "created", kind.kind, namespace, meta.get("name"))
        return CreatedObject(kind.api_version, kind.kind, meta.get("name", name), meta.get("uid", ""), created,
                             warnings=api_warnings(headers))  # policy: the API server's warnings

    def delete(
        self, namespace: str, kind: Kind, name: str, *, propagation: str = "Background", uid: str | None = None
    ) -> bool:
        """Delete one object (and, by the garbage collector, its dependents); False when it was absent.

        With ``uid`` only that very object goes, never one created since under the same name (False then):
        https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/delete-options/#DeleteOptions
        """
        # With a DeleteOptions body the API server reads no query parameters (handlers/delete.go), so the
        # propagation policy goes into the body too; left out, a batch Job would orphan its pods.
        body = ({"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid},
                 "propagationPolicy": propagation} if uid else None)
        code, _, _ = self._request(
            "DELETE", kind.object_path(namespace, name), query=None if uid else {"propagationPolicy": propagation},
            body=body,
            verb="delete", kind=kind.kind, what=f"delete {kind.kind} {namespace}/{name}",
            expect=(200, 202, 404, 409) if uid else (200, 202, 404),  # 409: the precondition failed
        )
        if code in (200, 202):
            log.info("deleted %s %s/%s", kind.kind, namespace, name)
        return code in (200, 202)

    def get(self, namespace: str, kind: Kind, name: str) -> dict | None:
        code, body, _ = self._request("GET", kind.object_path(namespace, name),
                                      verb="get", kind=kind.kind, what=f"read {kind.kind} {namespace}/{name}",
                                      expect=(200, 404))
        return decode_answer(body) if code == 200 else None

    def list(self, kind: Kind, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict]:
        query = {"labelSelector": label_selector} if label_selector else {}
        if field_selector:
            query["fieldSelector"] = field_selector
        where = "" if not kind.namespaced else f" in {namespace}" if namespace else " in all namespaces"
        _, body, _ = self._request("GET", kind.collection_path(namespace), query=query,
                                   verb="list", kind=kind.kind, what=f"list {kind.plural}{where}", expect=(200,))
        return decode_answer(body).get("items", [])

    def namespace_exists(self, namespace: str) -> bool:
        code, _, _ = self._request("GET", NAMESPACE.object_path(None, namespace), verb="get", kind="Namespace",
                                   what=f"read namespace {namespace}", expect=(200, 404))
        return code == 200

    def version(self) -> dict:
        _, body, _ = self._request("GET", "/version", verb="get", kind="version", what="read the version",
                                   expect=(200,))
        return decode_answer(body)

    def ping(self, timeout: float) -> None:
        """Raise ClusterUnavailable unless the API server answers within ``timeout`` seconds."""
        self._request("GET", "/version", verb="get", kind="version", what="reach the API server", expect=(200,),
                      timeout=(timeout, timeout),
                      retry_throttled=False)

    # --- identity (issue 9): a handle per caller, and what the API server says about identities -----

    #: The client's auth settings each call applies: the service's own credentials (token or certificate).
    _auth_settings: tuple[str, ...] = ("BearerToken",)

    def acting_as(self, caller: Caller) -> KubeCluster:
        """A handle whose every call carries ``caller``'s credentials; same ApiClient, pool and caches."""
        if not caller.acts_as_itself:
            return self
        from .caller import CallerCluster

        return CallerCluster(self, caller)

    def whoami(self) -> dict:
        """The user and groups the API server sees for this handle (a SelfSubjectReview, Kubernetes >= 1.28)."""
        _, body, _ = self._request("POST", SELF_SUBJECT_REVIEWS, body=SELF_SUBJECT_REVIEW, verb="create",
                                   kind="SelfSubjectReview", what="review who is calling", expect=(200, 201))
        info = (decode_answer(body).get("status") or {}).get("userInfo") or {}
        return {"user": info.get("username", ""), "groups": list(info.get("groups") or [])}

    def allowed(self, verb: str, kind: Kind, namespace: str | None) -> bool:
        """Whether this handle's identity may ``verb`` ``kind`` in ``namespace`` (a SelfSubjectAccessReview)."""
        return self._access.allowed(self, "", verb, kind, namespace)

    def _identify(self, headers: dict) -> dict:
        """The headers of one call, with this handle's identity added (none: the client's own auth applies)."""
        return headers

    # --- the single HTTP path --------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        kind: str,
        what: str,
        expect: tuple[int, ...],
        query: dict | None = None,
        body: dict | None = None,
        timeout: tuple[float, float] | None = None,
        retry_throttled: bool = True,
        headers: dict[str, str] | None = None,
        stream: bool = False,
    ) -> tuple[int, Any, dict]:
        """One API call through the client; answers outside ``expect`` become ServiceErrors.

        ``verb`` and ``kind`` label the latency metric; ``what`` words the error messages. ``headers`` add to
        (or replace) the JSON ones. With ``stream``, an expected answer comes back unread: the second item is
        the urllib3 response, whose body the caller reads (and closes); the metric times the headers only.
        """
        if query:
            path = f"{path}?{urlencode(query)}"
        attempts = 1 + (self.settings.throttle_retries if retry_throttled else 0)
        payload = None if body is None else encode_body(body)
        transport = self._transport
        for attempt in range(attempts):
            call_headers = transport.headers(self._auth_settings, headers)  # per attempt: the token may rotate
            started = time.perf_counter()
            try:
                response = transport.send(method, path, self._identify(call_headers), payload,
                                          timeout or self._timeout, stream=stream)
                if stream and response.status in expect:
                    child(APISERVER_SECONDS, verb, kind, str(response.status)).observe(time.perf_counter() - started)
                    return response.status, response, response.headers
                data = response.data
            except TRANSPORT_ERRORS as exc:
                child(APISERVER_SECONDS, verb, kind, "error").observe(time.perf_counter() - started)
                raise error_from_transport(exc, what=what, retry_after=self.settings.retry_after_seconds) from exc
            child(APISERVER_SECONDS, verb, kind, str(response.status)).observe(time.perf_counter() - started)
            if response.status in expect:
                return response.status, data, response.headers
            error = error_from_response(response.status, data, response.headers, what=what,
                                        retry_after=self.settings.retry_after_seconds)
            # 429 and 503 mean "not processed, come back later": safe to repeat, a bounded number of times.
            if response.status in (429, 503) and attempt + 1 < attempts:
                wait = min(error.retry_after, self.settings.max_throttle_wait)
                log.warning("%s: throttled (HTTP %s); retrying in %.1fs", what, response.status, wait)
                time.sleep(wait)
                continue
            raise error
        raise AssertionError("unreachable")  # the loop either returns or raises


# --- policy: the API server's warnings -------------------------------------------------------------

# One warn-value of a Warning header (RFC 9111 §5.5): code, agent, quoted text, optional quoted date.
# The API server sends one header per warning with code 299 and agent "-".
# https://kubernetes.io/blog/2020/09/03/warnings/
_WARNING = re.compile(r'(\d{3})\s+\S+\s+"((?:[^"\\]|\\.)*)"(?:\s+"[^"]*")?')
_ESCAPE = re.compile(r"\\(.)")


def api_warnings(headers: object) -> tuple[str, ...]:
    """The texts of a response's Warning headers, as kubectl prints them ("would violate PodSecurity ...")."""
    if headers is None:
        return ()
    values = headers.getlist("Warning") if hasattr(headers, "getlist") else [headers.get("Warning") or ""]
    texts = []
    for value in values:
        texts += [_ESCAPE.sub(r"\1", text) for _, text in _WARNING.findall(value or "")]
    return tuple(texts)
