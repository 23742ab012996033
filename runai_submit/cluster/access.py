"""What the API server says an identity may do: SelfSubjectAccessReviews, cached per identity.

A review is asked with the identity's own credentials (its token, or the service's with Impersonate-* headers),
so the service itself needs no right to review others (no SubjectAccessReview). Every user may create
SelfSubjectAccessReviews through the built-in ``system:basic-user`` role.
https://kubernetes.io/docs/reference/access-authn-authz/authorization/#checking-api-access

The answers steer only what the service shows (which projects a caller sees, where a list looks); each call
is still authorised by the API server itself, so a stale answer can hide or show a project, never grant a call.
"""
from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

from cachetools import TLRUCache

from ..identity import REFUSAL_SECONDS
from .kinds import Kind

if TYPE_CHECKING:
    from .kube import KubeCluster

SELF_SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SELF_SUBJECT_REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
SELF_SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
ACCESS_CACHE_SIZE = 50_000


class AccessReviews:
    """``allowed(handle, key, verb, kind, namespace)``: an answer per identity ``key`` for ``ttl`` seconds.

    Refusals are kept only briefly (REFUSAL_SECONDS), so a RoleBinding an admin just created shows soon.
    """

    def __init__(self, ttl: float, *, maxsize: int = ACCESS_CACHE_SIZE) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cache: TLRUCache = TLRUCache(maxsize=maxsize, ttu=self._expires)

    def _expires(self, _key: tuple, allowed: bool, now: float) -> float:
        return now + (self._ttl if allowed else min(self._ttl, REFUSAL_SECONDS))

    def allowed(self, handle: KubeCluster, key: str, verb: str, kind: Kind, namespace: str | None) -> bool:
        entry = (key, verb, kind.group, kind.plural, namespace or "")
        with self._lock:
            found = self._cache.get(entry)
        if found is None:
            found = self._review(handle, verb, kind, namespace)
            with self._lock:
                self._cache[entry] = found
        return found

    @staticmethod
    def _review(handle: KubeCluster, verb: str, kind: Kind, namespace: str | None) -> bool:
        attributes = {"verb": verb, "group": kind.group, "resource": kind.plural}
        if namespace:
            attributes["namespace"] = namespace
        where = f"in {namespace}" if namespace else "in every namespace"
        _, body, _ = handle._request(
            "POST", SELF_SUBJECT_ACCESS_REVIEWS, verb="create", kind="SelfSubjectAccessReview",
            what=f"review whether the caller may {verb} {kind.plural} {where}", expect=(200, 201),
            body={"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": attributes}},
        )
        return bool((json.loads(body).get("status") or {}).get("allowed"))
