"""A faithful fake Kubernetes API server for tests and benchmarks.

It speaks the real REST/JSON protocol (so the official ``kubernetes`` client
talks to it unmodified) for the handful of resources runai-submit uses:
Namespaces, batch/v1 Jobs, run.ai/v1 RunaiJobs, Services, PersistentVolumeClaims,
networking.k8s.io/v1 Ingresses and ConfigMaps (create / get / list / delete).

The reference is kube-apiserver **v1.28**, the control plane of ``../shared/kube``:
tests/test_fake_vs_real.py sends the same requests to both and compares the answers
(the list of differences found and fixed is at the top of that module).  When the
two disagree, the real server is right: fix the fake and add the case to the table.

What it reproduces from the real kube-apiserver:

* ``Status`` bodies for every error (401, 400, 404, 405, 409, 422, ...) with the
  same reasons, messages and ``details`` shapes, and the plain-text 404 of paths
  no API group serves;
* decoding: a wrong JSON type is a 400 with Go's unmarshal message; an unknown
  field is dropped with a ``Warning`` (``fieldValidation=Warn``, the default), or
  refused with ``Strict`` (from the v1.28 OpenAPI schemas of kubernetes-validate);
* validation in the real order with the real paths and messages, for the fields
  that matter here: names, labels, annotations, pod templates (containers, env,
  ports, volumes and mounts, resources, ``nvidia.com/gpu`` whole and with limits,
  Job restartPolicy), Services (ports, types, node ports), PVCs, Ingresses;
* defaulting (Job selector and pod labels, backoffLimit..., Service clusterIP and
  node ports allocated before validation, PVC protection finalizer, Namespace
  ``kubernetes.io/metadata.name`` label);
* RunaiJob as the custom resource of ``tests/crds/runaijob.yaml``: spec kept as
  sent, status a subresource (never set by a create), unstructured list items;
* ``generateName``, ``dryRun=All``, label selectors (a port of the Go parser,
  messages included) and the field selectors each kind supports;
* deletion and the controllers: an object with finalizers (orphan,
  foregroundDeletion, pvc-protection, your own) is answered and kept, marked for
  deletion; **batch/v1 Jobs default to Orphan** like the real server (with its
  ``Warning`` header) -- pass ``propagation_policy="Background"`` to cascade.
  A moment later (``controller_delay``, or at once with ``run_controllers()``) the
  garbage collector deletes dependents whose owners are all gone, including owners
  that never existed, handles the orphan and foreground finalizers, the
  pvc-protection controller releases unused claims, and the namespace controller
  empties a Terminating namespace (which refuses new content meanwhile).  Tests
  that look at what a delete leaves call ``run_controllers()`` first.
* identities (issue 9): bearer tokens (``add_user``; the server's own token is ``system:admin`` in
  ``system:masters`` unless redefined), ``Impersonate-User``/``Impersonate-Group`` (the requester needs the
  ``impersonate`` verb on users/groups), SelfSubjectReview, SelfSubjectAccessReview, SubjectAccessReview and
  a small RBAC table (``grant``), with the real server's 401/403 bodies; ``callers`` records who made each call;
* Pod Security Admission's Warning header on batch/v1 Jobs (policy): see ``_psa_violations``;
* ``validate=False`` skips decoding and semantic checks (only a name is required).
* a delayed request is still carried out after its delay, even if the client gave
  up meanwhile -- like a slow real server.

Not modelled (a real cluster or fault injection stands in): PUT, watch, PATCH other
than the merge patch of Jobs and RunaiJobs (below), RBAC, admission (ResourceQuota,
Pod Security enforce, webhooks), managedFields; discovery lists only the verbs served here.

Plus test helpers: fault injection, delays, refusing connections.

Job insight (see the section of that name in the class): Pods and Events (with the field selectors of the
real server), the pod log subresource (text/plain; ``follow`` streams chunked until the pod ends), JSON
merge PATCH of Jobs and RunaiJobs, and a minimal job controller (``job_controller = True``) that creates
a running job's pods, removes a suspended job's pods and records the events the real controller records.

Run ``python tests/fake_apiserver.py --help`` for the stand-alone CLI.
Only the standard library, PyYAML and kubernetes-validate are used.
"""

from __future__ import annotations

import argparse
import calendar
import copy
import decimal
import email.utils
import http
import http.server
import ipaddress
import json
import random
import re
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

__all__ = ["FakeApiServer", "FaultSpec", "main"]

SCHEMA_VERSION = "1.28.0"  # the control plane of ../shared/kube, which the tests compare with

# --------------------------------------------------------------------------------------
# Resource catalogue
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Resource:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``jobs.batch`` / ``services``: the name used in NotFound/AlreadyExists messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """``Job.batch`` / ``Service``: the name used in Invalid messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


_RESOURCES: tuple[_Resource, ...] = (
    _Resource("", "v1", "namespaces", "namespace", "Namespace", False, ("ns",),
              ("create", "delete", "get", "list")),
    _Resource("", "v1", "services", "service", "Service", True, ("svc",)),
    _Resource("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim",
              True, ("pvc",)),
    _Resource("batch", "v1", "jobs", "job", "Job", True),
    _Resource("networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", True, ("ing",)),
    _Resource("run.ai", "v1", "runaijobs", "runaijob", "RunaiJob", True, ("rj",)),
    # job insight: a job's pods and events
    _Resource("", "v1", "pods", "pod", "Pod", True, ("po",)),
    _Resource("", "v1", "events", "event", "Event", True, ("ev",)),
    _Resource("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",)),  # Idempotency-Key records
)
_BY_KIND = {r.kind: r for r in _RESOURCES}
_BY_GVP = {(r.group, r.version, r.plural): r for r in _RESOURCES}
_GROUP_VERSIONS = (("", "v1"), ("batch", "v1"), ("networking.k8s.io", "v1"), ("run.ai", "v1"))

_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch")

# --------------------------------------------------------------------------------------
# Errors / Status bodies
# --------------------------------------------------------------------------------------

_DEFAULT_REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
    413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid",
    429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}


class _ApiError(Exception):
    """An error answered as a ``Status`` body."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.body = _status_body(code, reason, message, details)
        self.headers = dict(headers or {})
        self.raw: bytes | None = None


def _status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": message, "reason": reason}
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def _details(res: _Resource, name: str, kind: str | None = None) -> dict:
    d: dict[str, Any] = {"name": name} if name else {}   # omitempty, like the Go struct
    if res.group:
        d["group"] = res.group
    d["kind"] = kind if kind is not None else res.plural
    return d


def _not_found(res: _Resource, name: str) -> _ApiError:
    return _ApiError(404, "NotFound", f'{res.qualified} "{name}" not found', _details(res, name))


def _namespace_not_found(ns: str) -> _ApiError:
    return _ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                     {"name": ns, "kind": "namespaces"})


def _already_exists(res: _Resource, name: str) -> _ApiError:
    return _ApiError(409, "AlreadyExists", f'{res.qualified} "{name}" already exists',
                     _details(res, name))


def _bad_request(message: str) -> _ApiError:
    return _ApiError(400, "BadRequest", message)


def _namespace_terminating(res: "_Resource", ns: str, name: str) -> _ApiError:
    """NamespaceLifecycle admission: nothing new in a namespace that is being deleted."""
    details = _details(res, name)
    details["causes"] = [{"reason": "NamespaceTerminating", "message": f"namespace {ns} is being terminated",
                          "field": "metadata.namespace"}]
    subject = f'{res.qualified} "{name}"' if name else res.qualified
    return _ApiError(403, "Forbidden", f"{subject} is forbidden: unable to create new content in namespace {ns} "
                     "because it is being terminated", details)


def _options_invalid(kind: str, fld: str, err: "_FieldErr") -> _ApiError:
    """A bad query option: ``CreateOptions.meta.k8s.io "" is invalid: dryRun: ...``."""
    return _ApiError(422, "Invalid", f'{kind}.meta.k8s.io "" is invalid: {fld}: {err.message}',
                     {"group": "meta.k8s.io", "kind": kind,
                      "causes": [{"reason": err.reason, "message": err.message, "field": err.field}]})


def _utf8_header(value: str | None) -> str | None:
    """A header value as Go sees it: its bytes as UTF-8 text (invalid sequences become U+FFFD in JSON)."""
    return None if value is None else value.encode("latin-1", "replace").decode("utf-8", "replace")


def _warning(text: str) -> str:
    """One ``Warning`` header value as the real server writes it (code 299, no agent)."""
    return "299 - " + json.dumps(text)


def _path_not_found() -> _ApiError:
    return _ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _page_not_found() -> _ApiError:
    """A path no API group serves: the Go mux's plain-text 404, not a Status."""
    error = _ApiError(404, "NotFound", "404 page not found")
    error.raw = b"404 page not found\n"
    return error


def _method_not_allowed(extra: str = "") -> _ApiError:
    msg = "the server does not allow this method on the requested resource"
    return _ApiError(405, "MethodNotAllowed", msg + (f" ({extra})" if extra else ""), {})


@dataclass
class _FieldErr:
    """One ``field.Error`` of the real validation code."""

    field: str
    reason: str       # FieldValueInvalid, FieldValueRequired, ...
    message: str      # the text after "<field>: "


def _gofmt(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _fe_invalid(fld: str, value: Any, detail: str) -> _FieldErr:
    return _FieldErr(fld, "FieldValueInvalid", f"Invalid value: {_gofmt(value)}: {detail}")


def _fe_required(fld: str, detail: str = "") -> _FieldErr:
    return _FieldErr(fld, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def _fe_duplicate(fld: str, value: Any) -> _FieldErr:
    return _FieldErr(fld, "FieldValueDuplicate", f"Duplicate value: {_gofmt(value)}")


def _fe_not_supported(fld: str, value: Any, supported: list[str]) -> _FieldErr:
    sup = ", ".join(json.dumps(s) for s in supported)
    return _FieldErr(fld, "FieldValueNotSupported",
                     f"Unsupported value: {_gofmt(value)}: supported values: {sup}")


def _fe_forbidden(fld: str, detail: str) -> _FieldErr:
    return _FieldErr(fld, "FieldValueForbidden", f"Forbidden: {detail}")


def _fe_not_found(fld: str, value: Any) -> _FieldErr:
    return _FieldErr(fld, "FieldValueNotFound", f"Not found: {_gofmt(value)}")


def _invalid(res: _Resource, name: str, errs: list[_FieldErr]) -> _ApiError:
    parts = list(dict.fromkeys(f"{e.field}: {e.message}" if e.field else e.message for e in errs))
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"   # ToAggregate drops repeats
    details = _details(res, name, kind=res.kind)
    details["causes"] = [{"reason": e.reason, "message": e.message, "field": e.field} for e in errs]
    return _ApiError(422, "Invalid", f'{res.qualified_kind} "{name}" is invalid: {summary}', details)


# --------------------------------------------------------------------------------------
# Name / label validation (messages copied from k8s.io/apimachinery/pkg/util/validation)
# --------------------------------------------------------------------------------------

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + r"(\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile("^" + _DNS1123_LABEL_FMT + "$")
_DNS1123_SUBDOMAIN_RE = re.compile("^" + _DNS1123_SUBDOMAIN_FMT + "$")
_DNS1035_LABEL_RE = re.compile("^" + _DNS1035_LABEL_FMT + "$")
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile("^" + _QNAME_FMT + "$")
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_LABEL_VALUE_RE = re.compile("^" + _LABEL_VALUE_FMT + "$")
_IANA_SVC_NAME_RE = re.compile("^[-a-z0-9]+$")

_MSG_DNS1123_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                      "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
                      f"regex used for validation is '{_DNS1123_LABEL_FMT}')")
_MSG_DNS1123_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                          "'-' or '.', and must start and end with an alphanumeric character (e.g. "
                          f"'example.com', regex used for validation is '{_DNS1123_SUBDOMAIN_FMT}')")
_MSG_DNS1035_LABEL = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
                      "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
                      f"'abc-123', regex used for validation is '{_DNS1035_LABEL_FMT}')")
_MSG_QNAME = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
              "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
              f"validation is '{_QNAME_FMT}')")
_MSG_LABEL_VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
                    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
                    f"'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE_FMT}')")


def _dns1123_label_errs(v: str) -> list[str]:
    errs = []
    if len(v) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1123_LABEL_RE.match(v):
        errs.append(_MSG_DNS1123_LABEL)
    return errs


def _dns1123_subdomain_errs(v: str) -> list[str]:
    errs = []
    if len(v) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN_RE.match(v):
        errs.append(_MSG_DNS1123_SUBDOMAIN)
    return errs


def _dns1035_label_errs(v: str) -> list[str]:
    errs = []
    if len(v) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1035_LABEL_RE.match(v):
        errs.append(_MSG_DNS1035_LABEL)
    return errs


def _qualified_name_errs(v: str) -> list[str]:
    parts = v.split("/")
    if len(parts) == 1:
        name = parts[0]
        errs: list[str] = []
    elif len(parts) == 2:
        prefix, name = parts
        errs = []
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in _dns1123_subdomain_errs(prefix))
    else:
        return ["a qualified name " + _MSG_QNAME[len("name part "):] +
                " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if name and not _QNAME_RE.match(name):
        errs.append(_MSG_QNAME)
    return errs


def _label_value_errs(v: str) -> list[str]:
    errs = []
    if len(v) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.match(v):
        errs.append(_MSG_LABEL_VALUE)
    return errs


def _validate_labels(labels: Any, fld: str) -> list[_FieldErr]:
    errs: list[_FieldErr] = []
    if not isinstance(labels, dict):
        return errs
    for k, v in labels.items():
        errs.extend(_fe_invalid(fld, k, m) for m in _qualified_name_errs(k))
        if isinstance(v, str):
            errs.extend(_fe_invalid(fld, v, m) for m in _label_value_errs(v))
    return errs


def _validate_annotations(annotations: Any, fld: str) -> list[_FieldErr]:
    errs: list[_FieldErr] = []
    if not isinstance(annotations, dict):
        return errs
    total = 0
    for k, v in annotations.items():
        errs.extend(_fe_invalid(fld, k, m) for m in _qualified_name_errs(k.lower()))
        total += len(k) + len(v or "")
    if total > 256 * 1024:
        errs.append(_FieldErr(fld, "FieldValueTooLong", "Too long: may not be more than 262144 bytes"))
    return errs


# --------------------------------------------------------------------------------------
# Quantities (resource.Quantity)
# --------------------------------------------------------------------------------------

_QTY_RE = re.compile(r"^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
_QTY_SUFFIX = {"": 1, "n": decimal.Decimal("1e-9"), "u": decimal.Decimal("1e-6"), "m": decimal.Decimal("1e-3"),
               "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18,
               "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
_QTY_REGEX_MSG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


def _parse_quantity(v: Any) -> decimal.Decimal | None:
    """Value of a Quantity (string or JSON number), None when unparsable."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return decimal.Decimal(str(v))
    if not isinstance(v, str):
        return None
    m = _QTY_RE.match(v.strip())
    if not m:
        return None
    sign, num, suffix = m.group(1), m.group(2), m.group(3) or ""
    val = decimal.Decimal(num)
    if suffix[:1] in ("e", "E") and suffix not in _QTY_SUFFIX:  # [openapi] "E" and "Ei" are suffixes, not exponents
        val = val.scaleb(int(suffix[1:]))
    else:
        val = val * decimal.Decimal(_QTY_SUFFIX[suffix])
    return -val if sign == "-" else val


_STANDARD_CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}


def _is_native_resource(name: str) -> bool:
    if "/" not in name:
        return True
    prefix = name.split("/", 1)[0]
    return prefix == "kubernetes.io" or prefix.endswith(".kubernetes.io")


def _overcommit_allowed(name: str) -> bool:
    return _is_native_resource(name) and not name.startswith("hugepages-")


_STANDARD_RESOURCES = {"cpu", "memory", "ephemeral-storage", "storage", "requests.cpu", "requests.memory",
                       "requests.ephemeral-storage", "requests.storage", "limits.cpu", "limits.memory",
                       "limits.ephemeral-storage", "pods", "services", "replicationcontrollers", "resourcequotas",
                       "secrets", "persistentvolumeclaims", "configmaps", "services.nodeports",
                       "services.loadbalancers"}


def _go_quantity(raw: Any) -> str:
    """How v1.28 prints a resource.Quantity value in a field error (Go's %#v of the struct), for plain
    decimals such as "0.5"; other forms are shown quoted."""
    m = re.fullmatch(r"([0-9]*)\.([0-9]+)|([0-9]+)", str(raw))
    if not m:
        return json.dumps(str(raw))
    whole, fraction = (m.group(1) or "", m.group(2)) if m.group(2) else (m.group(3), "")
    value = int((whole + fraction) or "0")
    return (f"resource.Quantity{{i:resource.int64Amount{{value:{value}, scale:{-len(fraction)}}}, "
            'd:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:"", Format:"DecimalSI"}')


def _resource_name_errs(name: str, f: str) -> list[_FieldErr]:
    """validateContainerResourceName of v1.28."""
    errs = [_fe_invalid(f, name, m) for m in _qualified_name_errs(name)]
    if errs:
        return errs
    if "/" not in name:
        if name not in _STANDARD_RESOURCES and not name.startswith("hugepages-"):
            errs.append(_fe_invalid(f, name, "must be a standard resource type or fully qualified"))
        if name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            errs.append(_fe_invalid(f, name, "must be a standard resource for containers"))
    return errs


def _validate_resource_requirements(rr: Any, fld: str) -> list[_FieldErr]:
    """ValidateResourceRequirements of v1.28: every limit, then every request (compared with its limit)."""
    errs: list[_FieldErr] = []
    if not isinstance(rr, dict):
        return errs
    limits = _dl(rr.get("limits"))
    requests = _dl(rr.get("requests"))

    def quantity_errs(name: str, raw: Any, f: str) -> list[_FieldErr]:
        q = _parse_quantity(raw)
        if q is None:
            return []   # reported at decoding (400)
        out = []
        if q < 0:
            out.append(_fe_invalid(f, str(raw), "must be greater than or equal to 0"))
        if not _is_native_resource(name) and q != q.to_integral_value():
            out.append(_FieldErr(f, "FieldValueInvalid", f"Invalid value: {_go_quantity(raw)}: must be an integer"))
        return out

    for name, raw in limits.items():
        f = f"{fld}.limits[{name}]"
        errs += _resource_name_errs(name, f) + quantity_errs(name, raw, f)
    for name, raw in requests.items():
        f = f"{fld}.requests[{name}]"
        errs += _resource_name_errs(name, f) + quantity_errs(name, raw, f)
        q = _parse_quantity(raw)
        if q is None:
            continue
        if name in limits:
            limit = _parse_quantity(limits[name])
            if limit is None:
                continue
            if q != limit and not _overcommit_allowed(name):
                errs.append(_fe_invalid(f"{fld}.requests", str(raw),
                                        f"must be equal to {name} limit of {limits[name]}"))
            elif q > limit:
                errs.append(_fe_invalid(f"{fld}.requests", str(raw),
                                        f"must be less than or equal to {name} limit of {limits[name]}"))
        elif not _overcommit_allowed(name):
            errs.append(_fe_required(f"{fld}.limits", "Limit must be set for non overcommitable resources"))
    return errs


def _dl(v: Any) -> dict:
    """``v`` if it is a dict, else an empty dict (tolerates malformed input when validation is off)."""
    return v if isinstance(v, dict) else {}


def _ll(v: Any) -> list:
    """``v`` if it is a list, else an empty list."""
    return v if isinstance(v, list) else []


def _strip_nulls(v: Any) -> Any:
    """Drop ``null`` members of objects recursively: the API server decodes them as unset."""
    if isinstance(v, dict):
        return {k: _strip_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_strip_nulls(x) for x in v]
    return v


def _iter_quantities(obj: dict) -> list[Any]:
    """All Quantity values of the fields this fake knows about (for decode-time checks)."""
    out: list[Any] = []
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    kind = obj.get("kind")
    pod_specs = []
    if kind == "Job":   # a RunaiJob's spec is kept as sent (the CRD preserves unknown fields)
        tmpl = spec.get("template") if isinstance(spec.get("template"), dict) else {}
        if isinstance(tmpl.get("spec"), dict):
            pod_specs.append(tmpl["spec"])
    if kind == "PersistentVolumeClaim" and isinstance(spec.get("resources"), dict):
        for section in ("limits", "requests"):
            if isinstance(spec["resources"].get(section), dict):
                out.extend(spec["resources"][section].values())
    for ps in pod_specs:
        for ctr in _ll(ps.get("containers")) + _ll(ps.get("initContainers")):
            if isinstance(ctr, dict) and isinstance(ctr.get("resources"), dict):
                for section in ("limits", "requests"):
                    if isinstance(ctr["resources"].get(section), dict):
                        out.extend(ctr["resources"][section].values())
        for vol in _ll(ps.get("volumes")):
            if isinstance(vol, dict) and isinstance(vol.get("emptyDir"), dict) and "sizeLimit" in vol["emptyDir"]:
                out.append(vol["emptyDir"]["sizeLimit"])
    return out


# --------------------------------------------------------------------------------------
# Decoding (what the real server's JSON decoder does before any validation)
# --------------------------------------------------------------------------------------

# The RunaiJob CRD of tests/crds/runaijob.yaml: spec and status are kept as sent
# (x-kubernetes-preserve-unknown-fields), so only metadata is typed.
_RUNAIJOB_ROOT = {"type": "object", "properties": {
    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
    "metadata": {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
    "spec": {}, "status": {}}}
_FIELD_VALIDATION = ("", "Ignore", "Strict", "Warn")


class _Decoder:
    """The real server's decoding of a JSON body into its Go struct, from the v1.28 OpenAPI schemas
    (kubernetes-validate's copy): a value of the wrong JSON type fails the whole request with 400
    (Go's ``json.UnmarshalTypeError``, first one only), and an unknown field is dropped with a Warning
    (``fieldValidation=Warn``, the default since v1.27), refused (``Strict``) or dropped silently (``Ignore``).
    Required fields and value rules are *not* decoding: the semantic validation reports them (422).
    https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation
    """

    def __init__(self, version: str = SCHEMA_VERSION) -> None:
        self.version = version
        self._lock = threading.Lock()
        self._defs: dict[str, Any] | None = None
        self._roots: dict[tuple[str, str], dict] = {}

    def _schema_dir(self):
        import importlib_resources  # kubernetes-validate's own dependency

        return importlib_resources.files("kubernetes_validate").joinpath(
            "kubernetes-json-schema", f"v{self.version}-local-strict")

    def root(self, api_version: str, kind: str) -> dict:
        key = (api_version, kind)
        root = self._roots.get(key)
        if root is not None:
            return root
        with self._lock:
            d = self._schema_dir()
            if self._defs is None:
                self._defs = json.loads(d.joinpath("_definitions.json").read_text())["$defs"]
            if kind == "RunaiJob":
                root = _RUNAIJOB_ROOT
            else:
                gv = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
                root = json.loads(d.joinpath(f"{kind.lower()}-{gv}.json").read_text())
            self._roots[key] = root
            return root

    def decode(self, obj: dict, api_version: str, kind: str) -> tuple[str | None, list[str]]:
        """(the first type error, or None; unknown field paths in document order). Unknown fields are
        removed from ``obj``, as the decoder never sees them."""
        unknown: list[str] = []
        error = self._walk(obj, self.root(api_version, kind), "", "", kind, unknown)
        return error, unknown

    def _resolve(self, schema: dict) -> tuple[dict, str | None]:
        name = None
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            assert self._defs is not None
            schema = self._defs[name]
        return schema, name

    def _go_type(self, schema: dict) -> str:
        schema, name = self._resolve(schema)
        if name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
            return "int32"   # IntOrString.UnmarshalJSON hands anything but a string to an int32
        if name is not None and "properties" in schema:
            package, _, struct = name.rpartition(".")
            return f"{package.rpartition('.')[2]}.{struct}"
        types = [t for t in _ll(schema.get("type")) or [schema.get("type")] if t != "null"]
        t = types[0] if types else None
        if t == "integer":
            return {"int32": "int32", "int64": "int64"}.get(schema.get("format"), "int")
        if t == "number":
            return "float64"
        if t == "boolean":
            return "bool"
        if t == "string":
            return "[]uint8" if schema.get("format") == "byte" else "string"
        if t == "array":
            return "[]" + self._go_type(schema.get("items") or {})
        if t == "object" and isinstance(schema.get("additionalProperties"), dict):
            return "map[string]" + self._go_type(schema["additionalProperties"])
        return "interface {}"

    @staticmethod
    def _json_type(value: Any) -> str:
        if isinstance(value, bool):
            return "bool"
        if isinstance(value, (int, float)):
            return "number"
        if isinstance(value, str):
            return "string"
        return "array" if isinstance(value, list) else "object"

    def _walk(self, value: Any, schema: dict, path: str, go_path: str, struct: str,
              unknown: list[str]) -> str | None:
        if value is None:
            return None   # null decodes as the zero value
        target, name = self._resolve(schema)
        if name in ("io.k8s.apimachinery.pkg.api.resource.Quantity", "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
                    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime", "io.k8s.apimachinery.pkg.runtime.RawExtension"):
            return None   # their own UnmarshalJSON (quantities are checked by _iter_quantities)
        types = [t for t in (_ll(target.get("type")) or [target.get("type")]) if t not in (None, "null")]

        def mismatch(literal: str = "") -> str:
            return (f"json: cannot unmarshal {self._json_type(value)}{literal} into Go struct field "
                    f"{struct}.{go_path} of type {self._go_type(schema)}")

        if name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
            if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)
                                          and -2 ** 31 <= value < 2 ** 31):
                return None
            return mismatch(f" {value!r}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "")
        if not types:
            return None   # free-form (x-kubernetes-preserve-unknown-fields, interface{})
        t = types[0]
        if t == "object":
            if not isinstance(value, dict):
                return mismatch()
            child_struct = name.rsplit(".", 1)[-1] if name else struct
            props = target.get("properties")
            first: str | None = None
            if props is not None:
                for key in list(value):
                    sub = f"{path}.{key}" if path else key
                    if key not in props:
                        unknown.append(sub)
                        del value[key]
                        continue
                    err = self._walk(value[key], props[key], sub, f"{go_path}.{key}" if go_path else key,
                                     child_struct, unknown)
                    first = first or err
            elif isinstance(target.get("additionalProperties"), dict):
                for key in list(value):
                    err = self._walk(value[key], target["additionalProperties"], f"{path}[{key}]", go_path,
                                     struct, unknown)
                    first = first or err
            return first
        if t == "array":
            if not isinstance(value, list):
                return mismatch()
            first = None
            for i, item in enumerate(value):
                err = self._walk(item, target.get("items") or {}, f"{path}[{i}]", go_path, struct, unknown)
                first = first or err
            return first
        if t == "string":
            return None if isinstance(value, str) else mismatch()
        if t == "boolean":
            return None if isinstance(value, bool) else mismatch()
        if t == "integer":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return mismatch()
            bits = 32 if target.get("format") == "int32" else 64
            if isinstance(value, float) or not -2 ** (bits - 1) <= value < 2 ** (bits - 1):
                return mismatch(f" {value!r}")
            return None
        if t == "number":
            return None if isinstance(value, (int, float)) and not isinstance(value, bool) else mismatch()
        return None


_DECODER = _Decoder()


# --------------------------------------------------------------------------------------
# Label / field selectors
# --------------------------------------------------------------------------------------

# A port of k8s.io/apimachinery/pkg/labels/selector.go (Lexer + Parser, v1.28), messages included.
_SEL_TOKENS = {")": "closedpar", ",": "comma", "!": "doesnotexist", "==": "doubleequals", "=": "equals",
               ">": "gt", "in": "in", "<": "lt", "!=": "notequals", "notin": "notin", "(": "openpar"}
_SEL_SPECIAL = set("=!(),><")
_SEL_BINARY_OPS = "in, notin, =, ==, !=, gt, lt"


def _sel_lex(selector: str) -> list[tuple[str, str]]:
    """The selector as (token, literal) pairs, ending with ("end", "")."""
    items: list[tuple[str, str]] = []
    i, n = 0, len(selector)
    while True:
        while i < n and selector[i] in " \t\r\n":
            i += 1
        if i >= n:
            items.append(("end", ""))
            return items
        if selector[i] in _SEL_SPECIAL:
            buffer, last = "", None
            while i < n and selector[i] in _SEL_SPECIAL:
                buffer += selector[i]
                if buffer in _SEL_TOKENS:
                    last = (_SEL_TOKENS[buffer], buffer)
                    i += 1
                elif last is not None:
                    break
                else:
                    i += 1
            items.append(last or ("error", f"error expected: keyword found '{buffer}'"))
            continue
        start = i
        while i < n and selector[i] not in _SEL_SPECIAL and selector[i] not in " \t\r\n":
            i += 1
        word = selector[start:i]
        items.append((_SEL_TOKENS.get(word, "identifier"), word))


class _SelectorParser:
    def __init__(self, selector: str) -> None:
        self.items = _sel_lex(selector)
        self.position = 0

    def lookahead(self, values: bool = True) -> tuple[str, str]:
        tok, lit = self.items[self.position]
        if values and tok in ("in", "notin"):
            tok = "identifier"
        return tok, lit

    def consume(self, values: bool = True) -> tuple[str, str]:
        item = self.lookahead(values)
        self.position += 1
        return item

    def parse(self) -> list[tuple[str, str, tuple[str, ...]]]:
        requirements = []
        while True:
            tok, lit = self.lookahead()
            if tok in ("identifier", "doesnotexist"):
                try:
                    requirements.append(self.requirement())
                except ValueError as e:
                    raise ValueError(f"unable to parse requirement: {e}") from None
                tok, lit = self.consume()
                if tok == "end":
                    return requirements
                if tok == "comma":
                    tok2, lit2 = self.lookahead()
                    if tok2 not in ("identifier", "doesnotexist"):
                        raise ValueError(f"found '{lit2}', expected: identifier after ','")
                else:
                    raise ValueError(f"found '{lit}', expected: ',' or 'end of string'")
            elif tok == "end":
                return requirements
            else:
                raise ValueError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> tuple[str, str, tuple[str, ...]]:
        tok, key = self.consume()
        op = None
        if tok == "doesnotexist":
            op = "!"
            tok, key = self.consume()
        if tok != "identifier":
            raise ValueError(f"found '{key}', expected: identifier")
        key_errs = _qualified_name_errs(key)
        if key_errs:
            raise ValueError(f'<nil>: Invalid value: {json.dumps(key)}: {"; ".join(key_errs)}')
        if op == "!" or self.lookahead()[0] in ("end", "comma"):
            return key, op or "exists", ()
        tok, lit = self.consume(values=False)
        ops = {"in": "in", "equals": "=", "doubleequals": "=", "gt": ">", "lt": "<", "notin": "notin",
               "notequals": "!="}
        if tok not in ops:
            raise ValueError(f"found '{lit}', expected: {_SEL_BINARY_OPS}")
        op = ops[tok]
        values = self.set_values() if op in ("in", "notin") else self.exact_value()
        errs = []
        if op in (">", "<"):
            for i, v in enumerate(values):
                if not re.fullmatch(r"[+-]?[0-9]+", v):
                    errs.append(f"values[{i}]: Invalid value: {json.dumps(v)}: for 'Gt', 'Lt' operators, the "
                                "value must be an integer")
        for i, v in enumerate(values):
            verrs = _label_value_errs(v)
            if verrs:
                errs.append(f"values[{i}][{key}]: Invalid value: {json.dumps(v)}: {'; '.join(verrs)}")
        if errs:
            raise ValueError(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
        return key, op, values

    def exact_value(self) -> tuple[str, ...]:
        if self.lookahead()[0] in ("end", "comma"):
            return ("",)
        tok, lit = self.consume()
        if tok == "identifier":
            return (lit,)
        raise ValueError(f"found '{lit}', expected: identifier")

    def set_values(self) -> tuple[str, ...]:
        tok, lit = self.consume()
        if tok != "openpar":
            raise ValueError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok in ("identifier", "comma"):
            values = self.identifiers()
            tok, _ = self.consume()
            if tok != "closedpar":
                raise ValueError(f"found '{lit}', expected: ')'")
            return values
        if tok == "closedpar":   # "()" is the set of the empty string
            self.consume()
            return ("",)
        raise ValueError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> tuple[str, ...]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == "identifier":
                values.add(lit)
                tok2, lit2 = self.lookahead()
                if tok2 == "comma":
                    continue
                if tok2 == "closedpar":
                    return tuple(sorted(values))
                raise ValueError(f"found '{lit2}', expected: ',' or ')'")
            if tok == "comma":
                if not values:
                    values.add("")
                tok2, _ = self.lookahead()
                if tok2 == "closedpar":
                    values.add("")
                    return tuple(sorted(values))
                if tok2 == "comma":
                    self.consume()
                    values.add("")
            else:
                raise ValueError(f"found '{lit}', expected: ',', or identifier")


def parse_label_selector(selector: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """Parse a label selector into (key, op, values) requirements like the real server; ValueError
    carries the real server's message."""
    return _SelectorParser(selector).parse()


def _labels_match(reqs, labels: dict[str, str]) -> bool:
    for key, op, vals in reqs:
        present = key in labels
        val = labels.get(key)
        if op == "=":
            ok = present and val == vals[0]
        elif op == "!=":
            ok = (not present) or val != vals[0]
        elif op == "in":
            ok = present and val in vals
        elif op == "notin":
            ok = (not present) or val not in vals
        elif op == "exists":
            ok = present
        elif op == "!":
            ok = not present
        else:  # > / <
            try:
                ok = present and (int(val) > int(vals[0]) if op == ">" else int(val) < int(vals[0]))
            except (TypeError, ValueError):
                ok = False
        if not ok:
            return False
    return True


# The field labels each kind supports on v1.28 (pkg/registry/*/strategy.go), and the three ways the real
# server words a refusal: kinds with a conversion function of their own, kinds with the generic metadata-only
# one, custom resources.
_METADATA_FIELDS = ("metadata.name", "metadata.namespace")
_FIELD_LABELS = {
    "Namespace": ("metadata.name", "status.phase"),
    "Job": (*_METADATA_FIELDS, "status.successful"),
    "Service": _METADATA_FIELDS,
    "PersistentVolumeClaim": _METADATA_FIELDS,
    "Ingress": _METADATA_FIELDS,
    "RunaiJob": _METADATA_FIELDS,
    # job insight: a job's pods and events
    "Pod": (*_METADATA_FIELDS, "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
            "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
            "status.nominatedNodeName"),
    "Event": (*_METADATA_FIELDS, "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
              "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
}


def _field_label_error(res: _Resource, key: str) -> _ApiError:
    if res.kind == "Job":
        return _bad_request(f'field label "{key}" not supported for {res.kind}')
    if res.kind in ("Service", "PersistentVolumeClaim", "Ingress"):
        only = ", ".join(json.dumps(label) for label in _FIELD_LABELS[res.kind])
        return _bad_request(f'"{key}" is not a known field selector: only {only}')
    return _bad_request(f"field label not supported: {key}")


def _field_value(obj: dict, key: str) -> str:
    if key == "status.successful":   # a Job's count of succeeded pods
        return str((obj.get("status") or {}).get("succeeded") or 0)
    if key == "source":   # an event's source is its component
        key = "source.component"
    value: Any = obj
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _parse_field_selector(selector: str, res: _Resource) -> list[tuple[str, str, str]]:
    reqs: list[tuple[str, str, str]] = []
    if not selector:
        return reqs
    for part in selector.split(","):
        part = part.strip()
        m = re.match(r"^([^=!]+?)\s*(==|!=|=)\s*(.*)$", part)
        if not m:
            raise _bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        key, op, val = m.group(1), m.group(2), m.group(3)
        if key not in _FIELD_LABELS.get(res.kind, _METADATA_FIELDS):
            raise _field_label_error(res, key)
        reqs.append((key, "!=" if op == "!=" else "=", val))
    return reqs


def _fields_match(reqs, obj: dict) -> bool:
    for key, op, val in reqs:
        if (_field_value(obj, key) == val) != (op == "="):
            return False
    return True


# --------------------------------------------------------------------------------------
# Fault injection bookkeeping
# --------------------------------------------------------------------------------------


@dataclass
class FaultSpec:
    """An armed ``fail_request`` rule (inspect via ``FakeApiServer.faults``)."""

    verb: str
    kind: str | None
    nth: int
    status: int
    reason: str | None
    message: str | None
    times: int
    headers: dict[str, str]
    seen: int = 0
    fired: int = 0

    def matches(self, verb: str, kind: str | None) -> bool:
        return (self.verb == "*" or self.verb == verb) and (self.kind is None or self.kind == kind)


@dataclass
class _DelaySpec:
    seconds: float
    verb: str | None
    kind: str | None
    times: int | None
    used: int = 0


@dataclass
class _Route:
    verb: str                     # create/get/list/delete/deletecollection/discovery
    res: _Resource | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    special: str | None = None    # version / api / apis / resourcelist
    group_version: tuple[str, str] | None = None
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------------------


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, fake: "FakeApiServer", bind_and_activate: bool = True) -> None:
        self.fake = fake
        super().__init__(addr, handler, bind_and_activate)

    def get_request(self):
        sock, addr = super().get_request()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        return sock, addr

    def handle_error(self, request, client_address) -> None:  # noqa: D401 - quiet
        """Connection errors of a stopped/refusing server are expected: stay quiet."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, OSError, ValueError)):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver"
    sys_version = ""
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request logs
        pass

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self._write(414, _status_body(414, "RequestURITooLong", "request URI too long"), close=True)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._dispatch()
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    # ------------------------------------------------------------------
    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        code, payload, headers = self.server.fake._handle(self.command, self.path, body, self.headers)
        if isinstance(payload, _LogFollow):
            self._write_chunked(code, payload, headers)
            return
        self._write(code, payload, headers=headers, head=self.command == "HEAD")

    def _write_chunked(self, code: int, chunks, headers: dict[str, str]) -> None:
        """A followed pod log: chunked transfer encoding, one chunk per write, until the stream ends."""
        lines = [f"HTTP/1.1 {code} {http.HTTPStatus(code).phrase}", "Audit-Id: " + str(uuid.uuid4()),
                 "Cache-Control: no-cache, private", "Content-Type: text/plain",
                 "Date: " + email.utils.formatdate(usegmt=True), "Transfer-Encoding: chunked"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for chunk in chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def _write(self, code: int, payload: bytes | dict, headers: dict[str, str] | None = None,
               close: bool = False, head: bool = False) -> None:
        content_type = "application/json"
        if isinstance(payload, _RawBody):
            content_type, payload = payload.content_type, payload.data
        if isinstance(payload, dict):
            payload = json.dumps(payload, separators=(",", ":")).encode()
        if close:
            self.close_connection = True
        try:
            phrase = http.HTTPStatus(code).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [
            f"HTTP/1.1 {code} {phrase}",
            "Audit-Id: " + str(uuid.uuid4()),
            "Cache-Control: no-cache, private",
            f"Content-Type: {content_type}",
            "Date: " + email.utils.formatdate(usegmt=True),
            f"Content-Length: {len(payload)}",
        ]
        for k, v in (headers or {}).items():
            if k != "Content-Type":
                lines.append(f"{k}: {v}")
        if self.close_connection:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not head:
            data += payload
        self.wfile.write(data)


# --------------------------------------------------------------------------------------
# Identities and authorization (issue 9): bearer tokens, impersonation, SelfSubjectReview,
# (Self)SubjectAccessReview and a small RBAC decision table. Messages and shapes as
# kube-apiserver v1.28 answers them (checked against ../shared/kube).
# --------------------------------------------------------------------------------------

_MASTERS = "system:masters"
_AUTHENTICATED = "system:authenticated"
_REVIEW_PATHS = {
    "/apis/authentication.k8s.io/v1/selfsubjectreviews": "SelfSubjectReview",
    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews": "SelfSubjectAccessReview",
    "/apis/authorization.k8s.io/v1/subjectaccessreviews": "SubjectAccessReview",
}


@dataclass(frozen=True)
class FakeUser:
    """Who a request is, after authentication (and impersonation)."""

    name: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Grant:
    """One allow rule of the RBAC table: a subject may do ``verbs`` on ``resources`` (in ``namespace``)."""

    subject: str                 # "User:alice" or "Group:team-a"
    verbs: frozenset[str]
    resources: frozenset[str]    # "jobs.batch", "services", "users" ... or "*"
    namespace: str | None        # None: cluster-wide (a ClusterRoleBinding)


class _Identities:
    """Authentication, impersonation and authorization of the fake (mixed into FakeApiServer).

    The token given to FakeApiServer (``fake-token``) is ``system:admin`` in ``system:masters``, which RBAC never
    refuses, so tests that do not care about identities see no change. Add users with ``add_user`` and rights
    with ``grant``; ``reset()`` forgets both. ``callers`` records (method, path, user) of every request.
    """

    token: str
    _lock: threading.Lock

    def _init_identities(self) -> None:
        self._users: dict[str, FakeUser] = {}
        self._grants: list[_Grant] = []
        self.callers: list[tuple[str, str, str]] = []
        self.own_user = FakeUser("system:admin", (_MASTERS, _AUTHENTICATED))

    def _reset_identities(self) -> None:
        with self._lock:
            self._users.clear()
            self._grants.clear()
            self.callers.clear()
            self.own_user = FakeUser("system:admin", (_MASTERS, _AUTHENTICATED))

    # ------------------------------------------------------------------ helpers for tests
    def add_user(self, token: str, name: str, groups: list[str] | tuple[str, ...] = ()) -> FakeUser:
        """Accept ``token`` as user ``name`` (plus ``system:authenticated``). The server's own token may be
        redefined too, e.g. as a ServiceAccount with little rights."""
        user = FakeUser(name, tuple(dict.fromkeys([*groups, _AUTHENTICATED])))
        with self._lock:
            if token == self.token:
                self.own_user = user
            else:
                self._users[token] = user
        return user

    def revoke(self, token: str) -> None:
        """Stop accepting ``token`` (an expired or deleted ServiceAccount token): 401 from now on."""
        with self._lock:
            self._users.pop(token, None)

    def grant(self, *, user: str | None = None, group: str | None = None, verbs: list[str] | tuple[str, ...],
              resources: list[str] | tuple[str, ...], namespace: str | None = None) -> None:
        """Allow ``user`` (or ``group``) ``verbs`` on ``resources`` ("jobs.batch", "services", "users", "*")
        in ``namespace`` (a RoleBinding), or everywhere (``namespace=None``, a ClusterRoleBinding)."""
        if (user is None) == (group is None):
            raise ValueError("grant to exactly one of user= or group=")
        subject = f"User:{user}" if user is not None else f"Group:{group}"
        with self._lock:
            self._grants.append(_Grant(subject, frozenset(verbs), frozenset(resources), namespace))

    # ------------------------------------------------------------------ the request path
    def _authenticate(self, headers) -> FakeUser:
        """The requester: the bearer token's user, then the impersonated one (if the requester may)."""
        if not self.token:
            who = self.own_user  # a fake without a token lets everyone in as itself
        else:
            value = headers.get("Authorization") or ""
            token = value[7:] if value[:7].lower() == "bearer " else None
            with self._lock:
                who = self.own_user if token == self.token else self._users.get(token or "")
            if who is None:
                raise _ApiError(401, "Unauthorized", "Unauthorized")
        # http.server decodes header bytes as latin-1; the real server (Go) takes them as UTF-8 text
        as_user = _utf8_header(headers.get("Impersonate-User"))
        as_groups = [_utf8_header(g) for g in (headers.get_all("Impersonate-Group") or [] if hasattr(headers, "get_all")
                                              else [])]
        if as_user is None:
            if as_groups:
                raise _ApiError(500, "InternalError", f"requested [{{Group  {as_groups[0]}    }}] without "
                                "impersonating a user")
            return who
        with self._lock:
            for resource, name in [("users", as_user)] + [("groups", g) for g in as_groups]:
                if not self._allows(who, "impersonate", resource, None, name):
                    raise _ApiError(403, "Forbidden", f'{resource} "{name}" is forbidden: User "{who.name}" cannot '
                                    f'impersonate resource "{resource}" in API group "" at the cluster scope',
                                    {"name": name, "kind": resource})
        return FakeUser(as_user, tuple(dict.fromkeys([*as_groups, _AUTHENTICATED])))

    def _allows(self, who: FakeUser, verb: str, resource: str, namespace: str | None, name: str = "") -> bool:
        """The RBAC decision (call with the lock held): masters always; else any grant that matches."""
        if _MASTERS in who.groups:
            return True
        subjects = {f"User:{who.name}", *(f"Group:{g}" for g in who.groups)}
        for grant in self._grants:
            if grant.subject not in subjects:
                continue
            if not ({verb, "*"} & grant.verbs and {resource, "*"} & grant.resources):
                continue
            if grant.namespace is None or (namespace is not None and grant.namespace == namespace):
                return True
        return False

    def _authorize(self, who: FakeUser, method: str, path: str, route: "_Route") -> None:
        """403 unless RBAC allows the route (discovery and /version are open to everyone, as system:discovery)."""
        with self._lock:
            self.callers.append((method, path, who.name))
        res = route.res
        if route.special or res is None:
            return
        namespace = route.namespace if res.namespaced else None
        # job insight: RBAC names a subresource "<plural>/<subresource>" (a pod's log is "pods/log")
        plural = f"{res.plural}/{route.subresource}" if route.subresource else res.plural
        resource = f"{plural}.{res.group}" if res.group else plural
        with self._lock:
            if self._allows(who, route.verb, resource, namespace, route.name or ""):
                return
        named = f' "{route.name}"' if route.name else ""
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        details: dict[str, Any] = {"name": route.name} if route.name else {}
        if res.group:
            details["group"] = res.group
        details["kind"] = res.plural
        raise _ApiError(403, "Forbidden", f'{res.qualified}{named} is forbidden: User "{who.name}" cannot '
                        f'{route.verb} resource "{plural}" in API group "{res.group}"{where}', details)

    def _answer_review(self, method: str, path: str, body: bytes, who: FakeUser) -> tuple[int, bytes, dict] | None:
        """The review APIs (POST only; they are never stored). None when ``path`` is not one of them."""
        kind = _REVIEW_PATHS.get(path)
        if kind is None:
            return None
        with self._lock:
            self.callers.append((method, path, who.name))
        if method != "POST":
            raise _method_not_allowed()
        try:
            review = json.loads(body or b"{}")
        except ValueError as e:
            raise _bad_request(f"couldn't get version/kind; json parse error: {e}") from None
        if not isinstance(review, dict) or review.get("kind") != kind:
            raise _bad_request(f"the kind in the data ({review.get('kind') if isinstance(review, dict) else None})"
                               f" does not match the expected kind ({kind})")
        group = "authentication.k8s.io" if kind == "SelfSubjectReview" else "authorization.k8s.io"
        answer: dict[str, Any] = {"kind": kind, "apiVersion": f"{group}/v1", "metadata": {"creationTimestamp": _now()}}
        if kind == "SelfSubjectReview":
            answer["status"] = {"userInfo": {"username": who.name, "groups": list(who.groups)}}
            return 201, json.dumps(answer).encode(), {}
        spec = review.get("spec") if isinstance(review.get("spec"), dict) else {}
        attributes = spec.get("resourceAttributes") if isinstance(spec.get("resourceAttributes"), dict) else {}
        subject = who
        with self._lock:
            if kind == "SubjectAccessReview":
                if not self._allows(who, "create", "subjectaccessreviews.authorization.k8s.io", None):
                    raise _ApiError(403, "Forbidden", 'subjectaccessreviews.authorization.k8s.io is forbidden: User '
                                    f'"{who.name}" cannot create resource "subjectaccessreviews" in API group '
                                    '"authorization.k8s.io" at the cluster scope',
                                    {"group": "authorization.k8s.io", "kind": "subjectaccessreviews"})
                subject = FakeUser(spec.get("user") or "", tuple(spec.get("groups") or ()))
            resource = attributes.get("resource") or ""
            if attributes.get("group"):
                resource = f"{resource}.{attributes['group']}"
            allowed = self._allows(subject, attributes.get("verb") or "", resource, attributes.get("namespace") or None,
                                   attributes.get("name") or "")
        answer["spec"] = spec
        answer["status"] = {"allowed": True, "reason": "allowed by the fake's RBAC table"} if allowed else {"allowed": False}
        return 201, json.dumps(answer).encode(), {}


# --------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------

_GEN_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
_NODE_PORT_RANGE = (30000, 32767)
_JOB_DELETE_WARNING = ('299 - "child pods are preserved by default when jobs are deleted; set '
                       'propagationPolicy=Background to remove them or set propagationPolicy=Orphan '
                       'to suppress this warning"')
# registries with ReturnDeletedObject=true: DELETE answers with the deleted object, not a Status
# (the v37 client deserialises those responses as V1Service / V1PersistentVolumeClaim).
_RETURNS_DELETED_OBJECT = {"Service", "PersistentVolumeClaim"}
# kinds whose registry strategy sets metadata.generation (custom resources always do)
_HAS_GENERATION = {"Job", "Ingress", "RunaiJob"}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeApiServer(_Identities):
    """In-process fake kube-apiserver on 127.0.0.1 (see module docstring).

    ``url``/``port`` are final once ``start()`` returned.  All state lives behind one
    lock; every public method is thread-safe.
    """

    #: batch/v1 Jobs default to Orphan propagation on delete (real server behaviour);
    #: set to "Background" on an instance to make a bare delete cascade.
    job_default_propagation: str = "Orphan"

    def __init__(self, *, serve_runai: bool = True, token: str = "fake-token", validate: bool = True,
                 kube_version: str = "v1.28.0", port: int = 0, controller_delay: float | None = 0.05) -> None:
        """Configure (but do not start) the server; the "default" namespace exists from the start.

        ``controller_delay``: how long after a change the controllers (garbage collector, namespace,
        pvc-protection) catch up on their own; None: only when a test calls ``run_controllers()``.
        """
        self.controller_delay = controller_delay
        self._controllers_due = threading.Event()
        self._controllers_stop = threading.Event()
        self._controller_thread: threading.Thread | None = None
        self.serve_runai = serve_runai
        self.token = token
        self.validate = validate
        self.kube_version = kube_version
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._life = threading.Lock()
        self._store: dict[str, dict[tuple[str, str], dict]] = {r.kind: {} for r in _RESOURCES}
        self._rv = 1000
        self._faults: list[FaultSpec] = []
        self._delays: list[_DelaySpec] = []
        self._conns: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._refusing = False
        self._next_ip = int(_SERVICE_CIDR.network_address) + 10
        # job insight: the job controller is off unless a test turns it on; pod logs by (ns, pod, container, previous)
        self.job_controller = False
        self._pod_logs: dict[tuple[str, str, str, bool], str] = {}
        # concurrency probes (batch tests): requests in flight now and at most, and an optional gate
        self._in_flight = 0
        self.peak_in_flight = 0
        self._gate: tuple[threading.Barrier, str | None, str | None, float] | None = None
        self._holds: list[tuple[threading.Event, str | None, str | None, float]] = []
        self._create_warnings: dict[str, list[str]] = {}  # kind -> injected Warning texts (warn_on_create)
        with self._lock:
            self._add_namespace_locked("default", None)
        self._init_identities()  # issue 9: users, impersonation, RBAC

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "FakeApiServer":
        """Bind 127.0.0.1:port (0 = ephemeral), serve in a daemon thread, return self."""
        with self._life:
            if self._httpd is not None:
                return self
            self._httpd = _HTTPServer(("127.0.0.1", self.port), _Handler, self)
            self.port = self._httpd.server_address[1]
            self.url = f"http://127.0.0.1:{self.port}"
            self._serve()
            self._controllers_stop.clear()
            self._controller_thread = threading.Thread(target=self._controller_loop, daemon=True,
                                                       name=f"fake-controllers-{self.port}")
            self._controller_thread.start()
            if self.validate:  # warm the schema cache so the first create is fast too
                threading.Thread(target=self._warm_schemas, daemon=True).start()
        return self

    def _warm_schemas(self) -> None:
        try:
            for kind, api_version in (("Job", "batch/v1"), ("Service", "v1"),
                                      ("PersistentVolumeClaim", "v1"), ("Ingress", "networking.k8s.io/v1"),
                                      ("Namespace", "v1")):
                _DECODER.root(api_version, kind)
        except Exception:  # pragma: no cover - surfaced again on first real use
            pass

    def _serve(self) -> None:
        httpd = self._httpd
        assert httpd is not None
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-apiserver-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection."""
        with self._life:
            httpd, self._httpd = self._httpd, None
            if httpd is None:
                return
            self._controllers_stop.set()
            if not self._refusing:
                httpd.shutdown()
            self._refusing = False
            httpd.server_close()
            self._close_connections()

    def __enter__(self) -> "FakeApiServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def refuse_connections(self, refuse: bool = True) -> None:
        """True: close the listening socket (new connects get ECONNREFUSED) and every
        kept-alive connection.  False: listen again on the same port."""
        with self._life:
            httpd = self._httpd
            if httpd is None:
                raise RuntimeError("server not started")
            if refuse and not self._refusing:
                httpd.shutdown()
                httpd.socket.close()
                self._refusing = True
                self._close_connections()
            elif not refuse and self._refusing:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", self.port))
                sock.listen(httpd.request_queue_size)
                httpd.socket = sock
                self._refusing = False
                self._serve()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def _close_connections(self) -> None:
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ------------------------------------------------------------------ helpers for tests
    def write_kubeconfig(self, path) -> str:
        """Write a kubeconfig (cluster ``fake`` -> url, bearer token, context ``fake``); return str(path)."""
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": user}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
            "preferences": {},
        }
        Path(path).write_text(yaml.safe_dump(cfg, sort_keys=False))
        return str(path)

    def add_namespace(self, name: str, labels: dict[str, str] | None = None) -> dict:
        """Create namespace ``name`` (or merge ``labels`` into the existing one); return a copy."""
        with self._lock:
            return copy.deepcopy(self._add_namespace_locked(name, labels))

    def objects(self, kind: str | None = None, namespace: str | None = None) -> list[dict]:
        """Deep copies of the stored objects (grouped by kind, each in creation order), optionally filtered."""
        if kind is not None and kind not in _BY_KIND:
            raise ValueError(f"unknown kind {kind!r}; known: {sorted(_BY_KIND)}")
        with self._lock:
            out = []
            for k in ([kind] if kind else [r.kind for r in _RESOURCES]):
                for (ns, _), obj in self._store[k].items():
                    if namespace is None or ns == namespace:
                        out.append(obj)
            return copy.deepcopy(out)

    def get_object(self, kind: str, namespace: str | None, name: str) -> dict | None:
        """Deep copy of one stored object, or None (namespace is ignored for Namespaces)."""
        res = _BY_KIND[kind]
        with self._lock:
            obj = self._store[kind].get(((namespace or "") if res.namespaced else "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def set_status(self, kind: str, namespace: str | None, name: str, status: dict) -> None:
        """Replace ``.status`` of a stored object (e.g. Job conditions); KeyError if absent."""
        res = _BY_KIND[kind]
        with self._lock:
            obj = self._store[kind].get(((namespace or "") if res.namespaced else "", name))
            if obj is None:
                raise KeyError(f"{kind} {namespace}/{name} not found")
            obj["status"] = copy.deepcopy(status)
            obj["metadata"]["resourceVersion"] = self._next_rv()

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self.requests.clear()

    def reset(self) -> None:
        """Drop every object except namespaces, all faults, delays and injected warnings, the request log;
        listen again if connections were being refused."""
        with self._lock:
            for kind, objs in self._store.items():
                if kind != "Namespace":
                    objs.clear()
            for key in [k for k, ns in self._store["Namespace"].items() if ns["metadata"].get("deletionTimestamp")]:
                del self._store["Namespace"][key]   # a namespace being deleted finishes now
            self._controllers_due.clear()
            self._faults.clear()
            self._delays.clear()
            self._create_warnings.clear()
            self.requests.clear()
            self._pod_logs.clear()
            self.peak_in_flight = 0
            gate, self._gate = self._gate, None
            holds, self._holds = self._holds, []
        self._reset_identities()  # issue 9
        if gate is not None:
            gate[0].abort()
        for hold in holds:
            hold[0].set()
        if self._refusing:
            self.refuse_connections(False)

    def fail_request(self, *, verb: str = "create", kind: str | None = None, nth: int = 1, status: int = 500,
                     reason: str | None = None, message: str | None = None, times: int = 1,
                     headers: dict[str, str] | None = None) -> None:
        """Make the nth matching request (counted from now) and the next ``times-1`` ones fail
        with a Status of code ``status``.  verb: create/delete/get/list/deletecollection or "*"."""
        if verb not in _VERBS and verb != "*":
            raise ValueError(f"verb must be one of {_VERBS} or '*'")
        if kind is not None and kind not in _BY_KIND:
            raise ValueError(f"unknown kind {kind!r}")
        if nth < 1 or times < 1:
            raise ValueError("nth and times must be >= 1")
        with self._lock:
            self._faults.append(FaultSpec(verb, kind, nth, status, reason, message, times, dict(headers or {})))

    def delay(self, seconds: float, *, verb: str | None = None, kind: str | None = None,
              times: int | None = None) -> None:
        """Sleep ``seconds`` before answering matching requests (all, or the next ``times``)."""
        if verb is not None and verb not in _VERBS and verb != "*":
            raise ValueError(f"verb must be one of {_VERBS} or '*'")
        with self._lock:
            self._delays.append(_DelaySpec(seconds, None if verb == "*" else verb, kind, times))

    def gate(self, parties: int | None, *, verb: str | None = "create", kind: str | None = None,
             timeout: float = 30.0) -> None:
        """Hold each matching request until ``parties`` of them wait at once, then let those go together (a
        ``threading.Barrier``). A client that never has that many in flight gets 500s after ``timeout``
        seconds instead: a proof of concurrency that needs no clock. ``None`` removes the gate."""
        with self._lock:
            old, self._gate = self._gate, (threading.Barrier(parties), verb, kind, timeout) if parties else None
        if old is not None:
            old[0].abort()

    def hold(self, *, verb: str | None = "create", kind: str | None = None, timeout: float = 30.0) -> threading.Event:
        """Hold matching requests (after they are recorded in ``requests``) until the returned event is set, or
        ``timeout`` seconds pass: a request caught in flight, for as long as the test needs."""
        event = threading.Event()
        with self._lock:
            self._holds.append((event, verb, kind, timeout))
        return event

    def warn_on_create(self, kind: str, text: str) -> None:
        """Answer every successful create of ``kind`` with a ``Warning`` header of ``text`` too, after the
        server's own: as the real one warns of deprecated fields and annotations, values it will refuse in a
        later release, and so on (``GetWarningsFor*`` in kubernetes/pkg/api)."""
        if kind not in _BY_KIND:
            raise ValueError(f"unknown kind {kind!r}")
        with self._lock:
            self._create_warnings.setdefault(kind, []).append(text)

    def clear_faults(self) -> None:
        """Disarm every fault, delay and injected warning."""
        with self._lock:
            self._faults.clear()
            self._delays.clear()
            self._create_warnings.clear()

    @property
    def faults(self) -> list[FaultSpec]:
        """Copies of the armed faults (with ``seen``/``fired`` counters)."""
        with self._lock:
            return [copy.copy(f) for f in self._faults]

    # ------------------------------------------------------------------ internals: state
    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _add_namespace_locked(self, name: str, labels: dict[str, str] | None) -> dict:
        existing = self._store["Namespace"].get(("", name))
        if existing is not None:
            if labels:
                existing["metadata"].setdefault("labels", {}).update(labels)
                existing["metadata"]["resourceVersion"] = self._next_rv()
            return existing
        obj = {"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": name, "labels": dict(labels or {})}, "spec": {}}
        self._finish_create(_BY_KIND["Namespace"], "", obj)
        self._store["Namespace"][("", name)] = obj
        return obj

    def _finish_create(self, res: _Resource, ns: str, obj: dict) -> None:
        md = obj.setdefault("metadata", {})
        if res.namespaced:
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        md["uid"] = md.get("uid") or str(uuid.uuid4())
        md["resourceVersion"] = self._next_rv()
        if res.kind in _HAS_GENERATION:
            md["generation"] = 1
        else:
            md.pop("generation", None)
        md["creationTimestamp"] = _now()
        for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields"):
            md.pop(k, None)
        if res.kind == "Namespace":
            md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}

    # ------------------------------------------------------------------ internals: HTTP entry
    def _handle(self, method: str, raw_path: str, body: bytes, headers) -> tuple[int, bytes, dict[str, str]]:
        split = urlsplit(raw_path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        path = split.path
        with self._lock:
            self.requests.append((method, path, dict(query)))
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            who = self._authenticate(headers)  # issue 9: identities, impersonation, reviews, RBAC
            reviewed = self._answer_review(method, path, body, who)
            if reviewed is not None:
                return reviewed
            route = self._route(method, path, query)
            route.extra["content_type"] = headers.get("Content-Type") or ""
            self._authorize(who, method, path, route)
            if body and "yaml" in (headers.get("Content-Type") or ""):
                try:
                    body = json.dumps(yaml.safe_load(body)).encode()
                except yaml.YAMLError as e:
                    raise _bad_request(f"error converting YAML to JSON: {e}") from None
            kind = route.res.kind if route.res else None
            pause = self._take_delay(route.verb, kind)
            if pause:
                time.sleep(pause)
            self._pass_gate(route.verb, kind)
            with self._lock:
                fault = self._take_fault(route.verb, kind)
                if fault is not None:
                    raise self._fault_error(fault, route, body)
                code, obj, extra = self._execute(route, query, body)
                if isinstance(obj, (_RawBody, _LogFollow)):
                    return code, obj, extra
                return code, json.dumps(obj, separators=(",", ":")).encode(), extra
        except _ApiError as e:
            if e.raw is not None:
                return e.code, _RawBody("text/plain; charset=utf-8", e.raw), dict(e.headers)
            return e.code, json.dumps(e.body, separators=(",", ":")).encode(), e.headers
        except Exception as e:  # a bug in the fake: answer like the server would (500)
            import traceback

            traceback.print_exc()
            body_ = _status_body(500, "InternalError", f"Internal error occurred: fake apiserver bug: {e!r}",
                                 {"causes": [{"message": repr(e)}]})
            return 500, json.dumps(body_).encode(), {}
        finally:
            with self._lock:
                self._in_flight -= 1

    def _pass_gate(self, verb: str, kind: str | None) -> None:
        for event, hold_verb, hold_kind, timeout in list(self._holds):
            if (hold_verb is None or hold_verb == verb) and (hold_kind is None or hold_kind == kind):
                event.wait(timeout)
        gate = self._gate
        if gate is None or (gate[1] is not None and gate[1] != verb) or (gate[2] is not None and gate[2] != kind):
            return
        try:
            gate[0].wait(gate[3])
        except threading.BrokenBarrierError:
            raise _ApiError(500, "InternalError", "Internal error occurred: the test's gate broke "
                                                  f"(fewer than {gate[0].parties} requests in flight at once)")

    def _take_delay(self, verb: str, kind: str | None) -> float:
        total = 0.0
        with self._lock:
            for d in list(self._delays):
                if (d.verb is None or d.verb == verb) and (d.kind is None or d.kind == kind):
                    total += d.seconds
                    d.used += 1
                    if d.times is not None and d.used >= d.times:
                        self._delays.remove(d)
        return total

    def _take_fault(self, verb: str, kind: str | None) -> FaultSpec | None:
        hit = None
        for f in list(self._faults):
            if not f.matches(verb, kind):
                continue
            f.seen += 1
            if hit is None and f.nth <= f.seen < f.nth + f.times:
                hit = f
                f.fired += 1
            if f.seen >= f.nth + f.times - 1:
                self._faults.remove(f)
        return hit

    def _fault_error(self, f: FaultSpec, route: _Route, body: bytes) -> _ApiError:
        res = route.res
        name = route.name or ""
        if route.verb == "create" and not name and f.reason != "Forbidden" and f.status != 403:
            # (authorization happens before the body is read: a refused create names no object)
            try:
                md = json.loads(body or b"{}").get("metadata") or {}
                name = md.get("name") or md.get("generateName") or ""
            except (ValueError, AttributeError):
                pass
        code = f.status
        reason = f.reason or ("AlreadyExists" if code == 409 and route.verb == "create"
                              else _DEFAULT_REASONS.get(code, "Unknown" if code >= 400 else ""))
        details: dict[str, Any] | None = _details(res, name) if res is not None else {}
        msg = f.message
        qual = res.qualified if res else "the requested resource"
        if msg is None:
            if reason == "AlreadyExists":
                msg = f'{qual} "{name}" already exists'
            elif reason == "Conflict":
                msg = (f'Operation cannot be fulfilled on {qual} "{name}": the object has been modified; '
                       "please apply your changes to the latest version and try again")
            elif reason == "NotFound":
                msg = f'{qual} "{name}" not found'
            elif reason == "Forbidden":
                where = f' in the namespace "{route.namespace}"' if route.namespace else " at the cluster scope"
                msg = (f'{qual}{" " + json.dumps(name) if name else ""} is forbidden: User "fake" cannot '
                       f'{route.verb} resource "{res.plural if res else ""}" in API group '
                       f'"{res.group if res else ""}"{where}')
            elif reason == "Invalid":
                msg = f'{res.qualified_kind if res else "object"} "{name}" is invalid: injected fault'
                details = dict(details or {}, kind=res.kind if res else "", causes=[])
            elif reason == "TooManyRequests":
                msg = "Too many requests, please try again later."
            elif reason == "ServiceUnavailable":
                msg = "the server is currently unable to handle the request"
            elif reason == "Timeout":
                msg = "Timeout: request did not complete within requested timeout - context deadline exceeded"
            elif reason == "InternalError":
                msg = "Internal error occurred: injected fault"
            else:
                msg = f"injected fault ({code})"
        if reason == "InternalError":
            details = dict(details or {}, causes=[{"message": msg}])
        retry_after = {k.lower(): v for k, v in f.headers.items()}.get("retry-after")
        if retry_after is not None and str(retry_after).isdigit():
            details = dict(details or {}, retryAfterSeconds=int(retry_after))
        return _ApiError(code, reason, msg, details, headers=f.headers)

    # ------------------------------------------------------------------ routing
    def _route(self, method: str, path: str, query: dict[str, str]) -> _Route:
        segs = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        get_like = method in ("GET", "HEAD")

        def only_get(route: _Route) -> _Route:
            if not get_like:
                raise _method_not_allowed()
            return route

        if segs == ["version"]:
            return only_get(_Route("get", special="version"))
        if segs == ["api"]:
            return only_get(_Route("get", special="api"))
        if segs == ["apis"]:
            return only_get(_Route("get", special="apis"))
        if not segs or segs[0] not in ("api", "apis"):
            raise _page_not_found()
        if segs[0] == "api":
            if len(segs) < 2:
                raise _path_not_found()
            gv, rest = ("", segs[1]), segs[2:]
        else:
            if len(segs) < 3:
                if len(segs) == 2 and self._gv_served(segs[1], None):
                    return only_get(_Route("get", special="group", group_version=(segs[1], "")))
                raise _page_not_found()
            gv, rest = (segs[1], segs[2]), segs[3:]
        if not self._gv_served(*gv):
            raise _path_not_found() if segs[0] == "api" else _page_not_found()
        if not rest:
            return only_get(_Route("get", special="resourcelist", group_version=gv))
        if query.get("watch") in ("1", "true", "True"):
            raise _method_not_allowed("watch is not supported by the fake API server")

        def res_for(plural: str) -> _Resource | None:
            return _BY_GVP.get((gv[0], gv[1], plural))

        ns = name = sub = None
        if rest[0] == "namespaces" and len(rest) >= 3 and gv == ("", "v1") and rest[2] == "status" \
                and len(rest) == 3:
            res, name, sub = _BY_KIND["Namespace"], rest[1], "status"
        elif rest[0] == "namespaces" and len(rest) >= 3:
            ns = rest[1]
            res = res_for(rest[2])
            if res is None or not res.namespaced or len(rest) > 5:
                raise _path_not_found()
            name = rest[3] if len(rest) >= 4 else None
            sub = rest[4] if len(rest) == 5 else None
        else:
            res = res_for(rest[0])
            if res is None or len(rest) > 3:
                raise _path_not_found()
            if len(rest) >= 2:
                if res.namespaced:
                    raise _path_not_found()
                name = rest[1]
                sub = rest[2] if len(rest) == 3 else None
        if sub is not None:
            if sub != "status" and not (sub == "log" and res.kind == "Pod"):
                raise _path_not_found()
            return only_get(_Route("get", res=res, namespace=ns, name=name, subresource=sub))
        if name is not None:
            if get_like:
                return _Route("get", res=res, namespace=ns, name=name)
            if method == "DELETE":
                return _Route("delete", res=res, namespace=ns, name=name)
            if method == "PATCH":
                return _Route("patch", res=res, namespace=ns, name=name)
            raise _method_not_allowed()
        # collection
        if get_like:
            return _Route("list", res=res, namespace=ns)
        if res.namespaced and ns is None:
            raise _method_not_allowed()
        if method == "POST":
            return _Route("create", res=res, namespace=ns)
        if method == "DELETE" and res.kind != "Namespace":
            return _Route("deletecollection", res=res, namespace=ns)
        raise _method_not_allowed()

    def _gv_served(self, group: str, version: str | None) -> bool:
        if group == "run.ai" and not self.serve_runai:
            return False
        return any(g == group and (version is None or v == version) for g, v in _GROUP_VERSIONS)

    # ------------------------------------------------------------------ verbs
    def _execute(self, route: _Route, query: dict[str, str], body: bytes) -> tuple[int, dict, dict[str, str]]:
        if route.special:
            return 200, self._discovery(route), {}
        res = route.res
        assert res is not None
        if route.verb == "list":
            return 200, self._list(res, route.namespace, query), {}
        if route.verb == "get" and route.subresource == "log":
            return self._pod_log(route.namespace or "", route.name or "", query)
        if route.verb == "patch":
            return self._patch(res, route.namespace or "", route.name or "", query, body,
                               route.extra.get("content_type", ""))
        if route.verb == "get":
            obj = self._store[res.kind].get((route.namespace or "", route.name))
            if obj is None:
                raise _not_found(res, route.name or "")
            return 200, obj, {}
        if route.verb == "create":
            return self._create(res, route.namespace or "", query, body)
        if route.verb == "delete":
            return self._delete(res, route.namespace or "", route.name or "", query, body)
        if route.verb == "deletecollection":
            return self._delete_collection(res, route.namespace or "", query, body)
        raise _method_not_allowed()  # pragma: no cover

    def _discovery(self, route: _Route) -> dict:
        if route.special == "version":
            m = re.match(r"^v?(\d+)\.(\d+)", self.kube_version)
            major, minor = (m.group(1), m.group(2)) if m else ("1", "28")
            return {"major": major, "minor": minor, "gitVersion": self.kube_version, "gitCommit": "0" * 40,
                    "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.20.7",
                    "compiler": "gc", "platform": "linux/amd64"}
        if route.special == "api":
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                    "serverAddress": f"127.0.0.1:{self.port}"}]}
        groups = [self._group_doc(g) for g in dict.fromkeys(g for g, _ in _GROUP_VERSIONS)
                  if g and self._gv_served(g, None)]
        if route.special == "apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        if route.special == "group":
            return dict(self._group_doc(route.group_version[0]), kind="APIGroup", apiVersion="v1")
        group, version = route.group_version
        resources = []
        for r in _RESOURCES:
            if (r.group, r.version) != (group, version):
                continue
            entry: dict[str, Any] = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                     "kind": r.kind, "verbs": list(r.verbs)}
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            resources.append(entry)
            resources.append({"name": f"{r.plural}/status", "singularName": "", "namespaced": r.namespaced,
                              "kind": r.kind, "verbs": ["get"]})
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}

    @staticmethod
    def _group_doc(group: str) -> dict:
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for g, v in _GROUP_VERSIONS if g == group]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}

    def _select(self, res: _Resource, ns: str | None, query: dict[str, str]) -> list[dict]:
        try:
            label_reqs = parse_label_selector(query.get("labelSelector", ""))
        except ValueError as e:
            raise _bad_request(str(e)) from None
        field_reqs = _parse_field_selector(query.get("fieldSelector", ""), res)
        out = []
        for (ons, _), obj in self._store[res.kind].items():
            if ns is not None and res.namespaced and ons != ns:
                continue
            if label_reqs and not _labels_match(label_reqs, obj["metadata"].get("labels") or {}):
                continue
            if field_reqs and not _fields_match(field_reqs, obj):
                continue
            out.append(obj)
        return out

    def _list(self, res: _Resource, ns: str | None, query: dict[str, str]) -> dict:
        items = self._select(res, ns, query)
        if res.kind == "RunaiJob":
            # custom resources are listed as unstructured objects: each item keeps apiVersion and kind
            return {"apiVersion": res.api_version, "items": items, "kind": f"{res.kind}List",
                    "metadata": {"continue": "", "resourceVersion": str(self._rv)}}
        # built-in kinds: the items of a typed list carry neither apiVersion nor kind
        items = [{k: v for k, v in item.items() if k not in ("apiVersion", "kind")} for item in items]
        return {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(self._rv)}, "items": items}

    # ------------------------------------------------------------------ create
    def _decode(self, res: _Resource, body: bytes) -> dict:
        text = body.decode("utf-8", "replace")
        try:
            obj = json.loads(text) if text.strip() else None
        except ValueError as e:
            raise _bad_request(f"couldn't get version/kind; json parse error: {e}") from None
        if not isinstance(obj, dict):
            raise _bad_request("couldn't get version/kind; json parse error: expected a JSON object")
        obj = _strip_nulls(obj)
        if not obj.get("kind"):
            raise _bad_request(f"Object 'Kind' is missing in '{text[:200]}'")
        if obj.get("apiVersion") != res.api_version:
            raise _bad_request(f"the API version in the data ({obj.get('apiVersion')}) does not match the "
                               f"expected API version ({res.api_version})")
        if obj["kind"] != res.kind:
            raise _bad_request(f"the kind in the data ({obj['kind']}) does not match the expected kind "
                               f"({res.kind}) for {res.qualified}")
        if obj.get("metadata") is None:
            obj["metadata"] = {}
        if not isinstance(obj["metadata"], dict):
            raise _bad_request(f"{res.kind} in version \"{res.version}\" cannot be handled as a {res.kind}: "
                               "json: cannot unmarshal metadata into Go struct field of type v1.ObjectMeta")
        for q in _iter_quantities(obj):
            if _parse_quantity(q) is None:
                raise _bad_request(f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
                                   + _QTY_REGEX_MSG)
        return obj

    def _create(self, res: _Resource, ns: str, query: dict[str, str], body: bytes):
        # The real server's order: options (422), decoding (400), namespace admission (404/403), Service
        # allocation (422), validation (422), storage (409 AlreadyExists).
        dry_run = self._dry_run(query)
        field_validation = self._field_validation(query)
        obj = self._decode(res, body)
        headers: dict[str, str] = {}
        if self.validate:
            type_error, unknown = _DECODER.decode(obj, res.api_version, res.kind)
            if type_error:
                raise _bad_request(f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
                                   + type_error)
            if unknown and field_validation == "Strict":
                raise _bad_request(f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
                                   "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown))
            if unknown and field_validation != "Ignore":
                headers["Warning"] = ", ".join(_warning(f'unknown field "{u}"') for u in unknown)
        md = obj["metadata"]
        if res.namespaced:
            if md.get("namespace") not in (None, "", ns):
                raise _bad_request("the namespace of the provided object does not match the namespace sent "
                                   "on the request")
            namespace = self._store["Namespace"].get(("", ns))
            if namespace is None:
                raise _namespace_not_found(ns)
            if namespace["metadata"].get("deletionTimestamp"):
                raise _namespace_terminating(res, ns, md.get("name") or "")
        name = md.get("name") or ""
        gen = md.get("generateName") or ""
        if not name and gen:
            base = gen[:58]
            for _ in range(8):
                name = base + "".join(random.choice(_GEN_ALPHABET) for _ in range(5))
                if (ns, name) not in self._store[res.kind]:
                    break
            md["name"] = name
        if self.validate:
            self._allocate(res, obj)   # Service IPs and node ports come before validation (BeginCreate)
        self._default(res, ns, obj)
        md["uid"] = str(uuid.uuid4())   # set before validation, which checks the generated Job labels
        if res.kind == "Job":
            self._job_selector(obj)
        errs = self._validate_semantics(res, obj) if self.validate else self._validate_name(res, obj["metadata"])
        if errs:
            raise _invalid(res, name, errs)
        if res.kind == "Job" and not md.get("labels") and _dl(_dl(obj.get("spec")).get("template")).get("metadata"):
            # SetDefaults_Job, applied when the stored object is read back: a Job without labels shows its
            # pods' labels (validation never saw them on the Job itself)
            md["labels"] = dict(_dl(obj["spec"]["template"]["metadata"].get("labels")))
        if not self.validate:
            self._allocate(res, obj)
        key = (ns if res.namespaced else "", name)
        if key in self._store[res.kind]:
            raise _already_exists(res, name)
        self._finish_create(res, ns, obj)
        if dry_run:
            del obj["metadata"]["resourceVersion"]   # nothing was stored, so no version either
        else:
            self._store[res.kind][key] = obj
            self._wake_controllers()
            if self.job_controller and res.kind in ("Job", "RunaiJob"):
                self._sync_job(ns, obj)
                obj = copy.deepcopy(obj)   # the answer shows the object as created, before the controller
                obj["status"] = {}
        # Warnings in the real order: decoding's unknown fields, then admission's Pod Security (policy)
        warnings = [w for w in (headers.get("Warning"), self._pod_security_headers(res, ns, obj).get("Warning")) if w]
        warnings += [_warning(text) for text in self._create_warnings.get(res.kind, ())]
        if warnings:
            headers["Warning"] = ", ".join(warnings)
        return 201, obj, headers

    # ------------------------------------------------------------------ Pod Security warnings (policy)
    def _pod_security_headers(self, res: _Resource, ns: str, obj: dict) -> dict[str, str]:
        """The Warning header of a batch/v1 Job whose pod template breaks its namespace's warn level."""
        if res.kind != "Job":
            return {}
        namespace = self._store["Namespace"].get(("", ns)) or {}
        level = _psa_warn_level(_dl(namespace.get("metadata", {}).get("labels")))
        if level == "privileged":
            return {}
        template = _dl(_dl(obj.get("spec")).get("template"))
        violations = _psa_violations(_dl(template.get("spec")), level)
        return {"Warning": _psa_warning_header(level, violations)} if violations else {}

    @staticmethod
    def _field_validation(query: dict[str, str]) -> str:
        v = query.get("fieldValidation", "")
        if v not in _FIELD_VALIDATION:
            raise _options_invalid("CreateOptions", "fieldValidation", _fe_not_supported(
                "fieldValidation", v, list(_FIELD_VALIDATION)))
        return v

    @staticmethod
    def _dry_run(query: dict[str, str], options: str = "CreateOptions") -> bool:
        v = query.get("dryRun")
        if v is None or v == "":
            return False
        if v != "All":
            # the real message prints the Go slice the query decodes into
            raise _options_invalid(options, "dryRun", _FieldErr(
                "dryRun", "FieldValueNotSupported",
                f'Unsupported value: []string{{{json.dumps(v)}}}: supported values: "All"'))
        return True

    def _default(self, res: _Resource, ns: str, obj: dict) -> None:
        """Defaulting of the real server (scheme defaults + PrepareForCreate), the common subset."""
        kind = res.kind
        spec = obj.get("spec")
        if kind == "Job":
            obj["status"] = {}
            if not isinstance(spec, dict):
                return
            spec.setdefault("backoffLimit", 6)
            # SetDefaults_Job: completions 1 only when neither is given (a parallel job without completions
            # is a work queue: it ends when one pod succeeds); parallelism 1 when absent.
            if spec.get("completions") is None and spec.get("parallelism") is None:
                spec["completions"] = 1
            if spec.get("parallelism") is None:
                spec["parallelism"] = 1
            spec.setdefault("completionMode", "NonIndexed")
            spec.setdefault("suspend", False)
            tmpl = spec.get("template")
            template_labels = _dl(tmpl).get("metadata", {}).get("labels") if isinstance(tmpl, dict) else None
            if isinstance(template_labels, dict) and not obj["metadata"].get("labels"):
                # SetDefaults_Job: a Job without labels gets its template's label map -- the same map, so the
                # labels generated for the pods later show on the Job too, and are validated there first
                obj["metadata"]["labels"] = template_labels
            if isinstance(tmpl, dict):
                # the Go ObjectMeta of the template serialises its zero creationTimestamp as null
                tmpl["metadata"] = _dl(tmpl.get("metadata"))
                tmpl["metadata"].setdefault("creationTimestamp", None)
                _default_pod_spec(tmpl.get("spec"))
        elif kind == "RunaiJob":
            obj.pop("status", None)   # status is a subresource: a create never sets it
        elif kind == "Service":
            obj["status"] = {"loadBalancer": {}}
            if not isinstance(spec, dict):
                return
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            spec["ports"] = _ll(spec.get("ports"))
            if spec["type"] != "ExternalName":
                spec.setdefault("internalTrafficPolicy", "Cluster")
            if spec["type"] in ("NodePort", "LoadBalancer"):
                spec.setdefault("externalTrafficPolicy", "Cluster")
            if spec["type"] == "LoadBalancer":
                spec.setdefault("allocateLoadBalancerNodePorts", True)
            for p in spec["ports"]:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
                    if "port" in p:
                        p.setdefault("targetPort", p["port"])
        elif kind == "PersistentVolumeClaim":
            obj["status"] = {"phase": "Pending"}
            if isinstance(spec, dict):
                spec.setdefault("volumeMode", "Filesystem")
            fins = _ll(obj["metadata"].get("finalizers"))
            obj["metadata"]["finalizers"] = fins
            if "kubernetes.io/pvc-protection" not in fins:
                fins.append("kubernetes.io/pvc-protection")
        elif kind == "Ingress":
            obj["status"] = {"loadBalancer": {}}

    def _job_selector(self, obj: dict) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict) or spec.get("manualSelector"):
            return
        # generateSelector (v1.28): a selector the user gave is kept, and validation then refuses it
        uid, name = obj["metadata"]["uid"], obj["metadata"].get("name", "")
        selector = spec["selector"] = _dl(spec.get("selector"))
        selector["matchLabels"] = _dl(selector.get("matchLabels"))
        selector["matchLabels"].setdefault("batch.kubernetes.io/controller-uid", uid)
        tmpl = spec["template"] = _dl(spec.get("template"))
        tmpl["metadata"] = tmd = _dl(tmpl.get("metadata"))
        tmd["labels"] = labels = _dl(tmd.get("labels"))
        for k, v in (("batch.kubernetes.io/controller-uid", uid), ("batch.kubernetes.io/job-name", name),
                     ("controller-uid", uid), ("job-name", name)):
            labels.setdefault(k, v)

    # ------------------------------------------------------------------ semantic validation
    def _validate_semantics(self, res: _Resource, obj: dict) -> list[_FieldErr]:
        errs = self._validate_meta(res, obj["metadata"])
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else None
        if res.kind == "Job":
            errs += _validate_job(obj, spec, is_job=True)
        elif res.kind == "Service":
            errs += self._validate_service(spec)
        elif res.kind == "PersistentVolumeClaim":
            errs += _validate_pvc(spec)
        elif res.kind == "Ingress":
            errs += _validate_ingress(spec)
        elif res.kind == "ConfigMap":
            errs += _validate_configmap(obj)
        return errs

    @staticmethod
    def _validate_name(res: _Resource, md: dict) -> list[_FieldErr]:
        if not md.get("name"):
            return [_fe_required("metadata.name", "name or generateName is required")]
        return []

    def _validate_meta(self, res: _Resource, md: dict) -> list[_FieldErr]:
        errs: list[_FieldErr] = []
        name = md.get("name") or ""
        gen = md.get("generateName") or ""
        if res.kind == "Service":
            name_fn = _dns1035_label_errs
        elif res.kind == "Namespace":
            name_fn = _dns1123_label_errs
        else:
            name_fn = _dns1123_subdomain_errs
        if not name and not gen:
            errs.append(_fe_required("metadata.name", "name or generateName is required"))
        else:
            if gen:
                masked = gen[:-1] + "a" if gen.endswith("-") and len(gen) > 1 else gen
                errs += [_fe_invalid("metadata.generateName", gen, m) for m in name_fn(masked)]
            if name:   # the generated name is validated as well (v1.28 reports both)
                errs += [_fe_invalid("metadata.name", name, m) for m in name_fn(name)]
        errs += _validate_labels(md.get("labels"), "metadata.labels")
        errs += _validate_annotations(md.get("annotations"), "metadata.annotations")
        for i, ref in enumerate(md.get("ownerReferences") or []):
            if isinstance(ref, dict) and not ref.get("uid"):
                errs.append(_fe_invalid(f"metadata.ownerReferences[{i}].uid", "", "uid must not be empty"))
            if isinstance(ref, dict) and not ref.get("name"):
                errs.append(_fe_invalid(f"metadata.ownerReferences[{i}].name", "", "name must not be empty"))
        controllers = [r for r in md.get("ownerReferences") or [] if isinstance(r, dict) and r.get("controller")]
        if len(controllers) > 1:
            errs.append(_fe_invalid("metadata.ownerReferences", md["ownerReferences"],
                                    "Only one reference can have Controller set to true."))
        return errs

    def _validate_service(self, spec: dict | None) -> list[_FieldErr]:
        """ValidateService of v1.28, in its order (after defaulting: protocol, targetPort, type)."""
        errs: list[_FieldErr] = []
        spec = spec or {}
        stype = spec.get("type", "ClusterIP")
        ports = [p if isinstance(p, dict) else {} for p in _ll(spec.get("ports"))]
        headless = spec.get("clusterIP") == "None"
        if not ports and not headless and stype != "ExternalName":
            errs.append(_fe_required("spec.ports"))
        if stype == "ExternalName" and not spec.get("externalName"):
            errs.append(_fe_required("spec.externalName"))
        names: set[str] = set()
        for i, p in enumerate(ports):
            f = f"spec.ports[{i}]"
            pname = p.get("name") or ""
            if len(ports) > 1 and not pname:
                errs.append(_fe_required(f + ".name"))
            elif pname:
                errs += [_fe_invalid(f + ".name", pname, m) for m in _dns1123_label_errs(pname)]
                if pname in names:
                    errs.append(_fe_duplicate(f + ".name", pname))
                names.add(pname)
            port = p.get("port") or 0
            if not 1 <= port <= 65535:
                errs.append(_fe_invalid(f + ".port", port, "must be between 1 and 65535, inclusive"))
            proto = p.get("protocol", "TCP")
            if proto not in ("TCP", "UDP", "SCTP"):
                errs.append(_fe_not_supported(f + ".protocol", proto, ["SCTP", "TCP", "UDP"]))
            tp = p.get("targetPort", 0)
            if isinstance(tp, int) and not 1 <= tp <= 65535:
                errs.append(_fe_invalid(f + ".targetPort", tp, "must be between 1 and 65535, inclusive"))
            elif isinstance(tp, str) and not tp.isdigit() and (
                    len(tp) > 15 or not _IANA_SVC_NAME_RE.match(tp) or not re.search("[a-z]", tp)
                    or tp.startswith("-") or tp.endswith("-") or "--" in tp):
                errs.append(_fe_invalid(f + ".targetPort", tp, "must contain only alpha-numeric characters "
                                        "(a-z, 0-9), and hyphens (-)"))
        errs += _validate_labels(spec.get("selector"), "spec.selector")
        types = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
        if stype not in types:
            errs.append(_fe_not_supported("spec.type", stype, types))
        if stype == "ClusterIP":
            errs += [_fe_forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'")
                     for i, p in enumerate(ports) if p.get("nodePort")]
        if stype == "ExternalName":
            errs += [_fe_forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ExternalName'")
                     for i, p in enumerate(ports) if p.get("nodePort")]
        node_ports: set[tuple[int, str]] = set()
        for i, p in enumerate(ports):
            if p.get("nodePort"):
                key = (p["nodePort"], p.get("protocol", "TCP"))
                if key in node_ports:
                    errs.append(_fe_duplicate(f"spec.ports[{i}].nodePort", p["nodePort"]))
                node_ports.add(key)
        return errs

    def _allocate(self, res: _Resource, obj: dict) -> None:
        """Cluster IP and node port allocation for Services (422 when a requested one is taken)."""
        if res.kind != "Service":
            return
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        stype = spec.get("type", "ClusterIP")
        used_ports: set[int] = set()
        used_ips: set[str] = set()
        for svc in self._store["Service"].values():
            s = svc.get("spec") or {}
            used_ips.update(s.get("clusterIPs") or [])
            for p in _ll(s.get("ports")):
                if isinstance(p, dict) and p.get("nodePort"):
                    used_ports.add(p["nodePort"])
        errs: list[_FieldErr] = []
        if stype != "ExternalName":
            ip = spec.get("clusterIP")
            if ip in (None, ""):
                while True:
                    cand = str(ipaddress.ip_address(self._next_ip))
                    self._next_ip += 1
                    if cand not in used_ips:
                        break
                spec["clusterIP"] = cand
            elif ip != "None":
                try:
                    addr = ipaddress.ip_address(ip)
                except ValueError:
                    errs.append(_fe_invalid("spec.clusterIPs[0]", ip, "must be a valid IP address, "
                                            "(e.g. 10.9.8.7 or 2001:db8::ffff)"))
                else:
                    if addr not in _SERVICE_CIDR:
                        errs.append(_fe_invalid("spec.clusterIPs", [ip], f"failed to allocate IP {ip}: the "
                                                f"provided IP ({ip}) is not in the valid range. The range of "
                                                f"valid IPs is {_SERVICE_CIDR}"))
                    elif ip in used_ips:
                        errs.append(_fe_invalid("spec.clusterIPs", [ip], f"failed to allocate IP {ip}: "
                                                "provided IP is already allocated"))
            if "clusterIP" in spec:
                spec["clusterIPs"] = [spec["clusterIP"]]
            if spec.get("clusterIP") != "None" or spec.get("selector"):
                spec.setdefault("ipFamilies", ["IPv4"])
                spec.setdefault("ipFamilyPolicy", "SingleStack")
        if stype in ("NodePort", "LoadBalancer"):
            ports = [p for p in _ll(spec.get("ports")) if isinstance(p, dict)]
            for i, p in enumerate(ports):
                np_ = p.get("nodePort")
                if isinstance(np_, int) and np_:
                    lo, hi = _NODE_PORT_RANGE
                    if not lo <= np_ <= hi:
                        errs.append(_fe_invalid(f"spec.ports[{i}].nodePort", np_, "provided port is not in the "
                                                f"valid range. The range of valid ports is {lo}-{hi}"))
                    elif np_ in used_ports:
                        errs.append(_fe_invalid(f"spec.ports[{i}].nodePort", np_,
                                                "provided port is already allocated"))
                    used_ports.add(np_)
            for p in ports:
                if not p.get("nodePort"):
                    free = [n for n in range(_NODE_PORT_RANGE[0], _NODE_PORT_RANGE[1] + 1) if n not in used_ports]
                    if not free:
                        raise _ApiError(500, "InternalError", "Internal error occurred: failed to allocate a "
                                        "nodePort: range is full")
                    p["nodePort"] = random.choice(free)
                    used_ports.add(p["nodePort"])
        if errs:
            raise _invalid(res, obj["metadata"].get("name", ""), errs)

    # ------------------------------------------------------------------ delete
    def _delete_options(self, query: dict[str, str], body: bytes) -> dict:
        opts: dict[str, Any] = {}
        if body.strip():
            # As the real handler (apiserver/pkg/endpoints/handlers/delete.go): with a DeleteOptions body the
            # query parameters are not read at all, so ?propagationPolicy= beside a body is silently ignored.
            try:
                parsed = json.loads(body)
            except ValueError as e:
                raise _bad_request(f"json parse error: {e}") from None
            if isinstance(parsed, dict):
                opts.update(parsed)
        else:
            for k in ("propagationPolicy", "dryRun", "gracePeriodSeconds"):
                if k in query:
                    opts[k] = query[k]
            if "orphanDependents" in query:
                opts["orphanDependents"] = query["orphanDependents"].lower() == "true"
        dry = opts.get("dryRun")
        if isinstance(dry, list):
            dry = dry[0] if dry else None
        opts["dryRun"] = self._dry_run({"dryRun": dry} if dry else {}, "DeleteOptions")
        pp = opts.get("propagationPolicy")
        if pp is not None and pp not in ("Foreground", "Background", "Orphan"):
            raise _ApiError(422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                            f'Unsupported value: {json.dumps(pp)}: supported values: "Foreground", '
                            f'"Background", "Orphan", "nil"',
                            {"group": "meta.k8s.io", "kind": "DeleteOptions", "causes": [
                                {"reason": "FieldValueNotSupported", "field": "propagationPolicy",
                                 "message": f'Unsupported value: {json.dumps(pp)}: supported values: "Foreground", '
                                            '"Background", "Orphan", "nil"'}]})
        if pp is not None and opts.get("orphanDependents") is not None:
            raise _ApiError(422, "Invalid", 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                            'Invalid value: "' + pp + '": orphanDependents and deletionPropagation cannot be both '
                            'set', {"group": "meta.k8s.io", "kind": "DeleteOptions"})
        if pp is None and opts.get("orphanDependents") is not None:
            opts["propagationPolicy"] = "Orphan" if opts["orphanDependents"] else "Background"
        return opts

    def _delete(self, res: _Resource, ns: str, name: str, query: dict[str, str], body: bytes):
        opts = self._delete_options(query, body)
        headers: dict[str, str] = {}
        policy = opts.get("propagationPolicy")
        if policy is None and res.kind == "Job":
            headers["Warning"] = _JOB_DELETE_WARNING   # even when the Job turns out not to exist
            policy = self.job_default_propagation
        policy = policy or "Background"
        key = (ns if res.namespaced else "", name)
        obj = self._store[res.kind].get(key)
        if obj is None:
            error = _not_found(res, name)
            error.headers.update(headers)
            raise error
        pre = opts.get("preconditions") or {}
        # v1.28's storage words a failed precondition with the kind, not the resource (Job.batch, Service)
        if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
            raise _ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified_kind} "{name}": '
                            f'the UID in the precondition ({pre["uid"]}) does not match the UID in record '
                            f'({obj["metadata"]["uid"]}). The object might have been deleted and then recreated',
                            _details(res, name, kind=res.kind))
        if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise _ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified_kind} "{name}": '
                            f'the ResourceVersion in the precondition ({pre["resourceVersion"]}) does not match '
                            f'the ResourceVersion in record ({obj["metadata"]["resourceVersion"]}). The object '
                            "might have been modified", _details(res, name, kind=res.kind))
        dry = opts["dryRun"]
        if obj["metadata"].get("deletionTimestamp"):
            # already being deleted: the real server answers with the object as it stands
            return 200, obj, headers
        if res.kind == "Namespace":
            # The namespace controller empties it, then removes it (seconds on a real cluster);
            # meanwhile it is Terminating and refuses new content.
            out = copy.deepcopy(obj)
            out["metadata"]["deletionTimestamp"] = _now()
            out["status"] = {"phase": "Terminating"}
            if not dry:
                out["metadata"]["resourceVersion"] = self._next_rv()
                self._store["Namespace"][key] = out
                self._wake_controllers()
            return 200, out, headers
        finalizers = list(obj["metadata"].get("finalizers") or [])
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if finalizers:
            # Pending finalizers: the object stays, marked for deletion, and the answer is the object;
            # the controllers (garbage collector, pvc-protection) remove their finalizers shortly after.
            out = copy.deepcopy(obj)
            md = out["metadata"]
            md["finalizers"] = finalizers
            md["deletionTimestamp"] = _now()
            md["deletionGracePeriodSeconds"] = 0
            if "generation" in md:
                md["generation"] += 1
            if dry:
                return 200, out, headers
            md["resourceVersion"] = self._next_rv()
            self._store[res.kind][key] = out
            self._wake_controllers()
            return 200, out, headers
        if res.kind in _RETURNS_DELETED_OBJECT:
            result: dict = obj
        else:
            result = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": dict(_details(res, name), uid=obj["metadata"]["uid"])}
        if not dry:
            self._remove(res, key)
        return 200, result, headers

    def _remove(self, res: _Resource, key: tuple[str, str]) -> None:
        """Take one object out of the store; its dependents are the garbage collector's business."""
        del self._store[res.kind][key]
        self._next_rv()
        self._wake_controllers()

    def _owner_exists(self, ref: dict, ns: str) -> bool:
        res = _BY_KIND.get(ref.get("kind", ""))
        if res is None:
            # The real collector cannot map a kind the server does not serve; it retries, never deletes.
            return True
        owner = self._store[res.kind].get((ns if res.namespaced else "", ref.get("name", "")))
        return owner is not None and owner["metadata"]["uid"] == ref.get("uid")

    def _delete_collection(self, res: _Resource, ns: str, query: dict[str, str], body: bytes):
        opts = self._delete_options(query, body)
        victims = list(self._select(res, ns, query))
        items = []
        for obj in victims:
            name = obj["metadata"]["name"]
            if (ns, name) not in self._store[res.kind]:
                continue
            delete_query = {"propagationPolicy": opts["propagationPolicy"]} if opts.get("propagationPolicy") else {}
            if opts["dryRun"]:
                delete_query["dryRun"] = "All"
            _, answer, _ = self._delete(res, ns, name, delete_query, b"")
            items.append(obj if answer.get("kind") == "Status" else answer)
        return 200, {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                     "metadata": {"resourceVersion": str(self._rv)}, "items": items}, {}

    # ------------------------------------------------------------------ controllers
    # What kube-controller-manager does after a delete, in the order a real cluster does it and a
    # moment later (``controller_delay``): the garbage collector deletes dependents whose owners are all
    # gone (and drops dangling owner references), handles the orphan and foregroundDeletion finalizers;
    # the pvc-protection controller releases a claim no pod uses; the namespace controller empties a
    # Terminating namespace, then removes it.
    # https://kubernetes.io/docs/concepts/architecture/garbage-collection/

    def run_controllers(self) -> None:
        """Let the controllers catch up now (deterministic; a real cluster takes ~0.1 s, namespaces seconds)."""
        with self._lock:
            self._run_controllers_locked()

    def _wake_controllers(self) -> None:
        self._controllers_due.set()

    def _controller_loop(self) -> None:
        while not self._controllers_stop.is_set():
            if not self._controllers_due.wait(0.5):
                continue
            if self.controller_delay is None:
                self._controllers_due.clear()   # only run_controllers() catches up
                continue
            if self._controllers_stop.wait(self.controller_delay):
                return
            self._controllers_due.clear()
            with self._lock:
                self._run_controllers_locked()

    def _run_controllers_locked(self) -> None:
        for _ in range(1000):   # until nothing changes (each pass may free the next owner)
            if not self._controller_pass():
                return

    def _controller_pass(self) -> bool:
        changed = False
        for kind, objs in self._store.items():
            res = _BY_KIND[kind] if kind in _BY_KIND else None
            for key, obj in list(objs.items()):
                if key not in objs:
                    continue
                md = obj["metadata"]
                if res is not None and res.kind == "Namespace":
                    changed |= self._namespace_controller(key, obj)
                    continue
                if md.get("deletionTimestamp"):
                    changed |= self._finalize(kind, key, obj)
                elif md.get("ownerReferences"):
                    changed |= self._collect(kind, key, obj)
        return changed

    def _dependents(self, owner: dict) -> list[tuple[str, tuple[str, str], dict]]:
        uid, ns = owner["metadata"]["uid"], owner["metadata"].get("namespace", "")
        return [(kind, key, obj) for kind, objs in self._store.items() for key, obj in objs.items()
                if any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])
                and (not ns or key[0] == ns)]

    def _finalize(self, kind: str, key: tuple[str, str], obj: dict) -> bool:
        md = obj["metadata"]
        finalizers = list(md.get("finalizers") or [])
        if "orphan" in finalizers:
            for _, _, dep in self._dependents(obj):
                refs = [r for r in dep["metadata"]["ownerReferences"] if r.get("uid") != md["uid"]]
                if refs:
                    dep["metadata"]["ownerReferences"] = refs
                else:
                    del dep["metadata"]["ownerReferences"]
                dep["metadata"]["resourceVersion"] = self._next_rv()
            finalizers.remove("orphan")
        if "foregroundDeletion" in finalizers:
            acted = False
            for dep_kind, dep_key, dep in self._dependents(obj):
                refs = dep["metadata"]["ownerReferences"]
                others = [r for r in refs if r.get("uid") != md["uid"] and self._owner_exists(r, dep_key[0])]
                if others:   # another owner keeps it: only the reference to this owner goes
                    dep["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != md["uid"]]
                    dep["metadata"]["resourceVersion"] = self._next_rv()
                    acted = True
                elif not dep["metadata"].get("deletionTimestamp"):
                    self._delete_by_controller(dep_kind, dep_key, dep, "Foreground")
                    acted = True
            if self._dependents(obj):
                return acted   # wait for the dependents that are still being deleted
            finalizers.remove("foregroundDeletion")
        if "kubernetes.io/pvc-protection" in finalizers and not self._claim_in_use(key):
            finalizers.remove("kubernetes.io/pvc-protection")
        if finalizers == list(md.get("finalizers") or []):
            return False
        if finalizers:
            md["finalizers"] = finalizers
            md["resourceVersion"] = self._next_rv()
        else:
            del self._store[kind][key]
            self._next_rv()
        return True

    def _claim_in_use(self, key: tuple[str, str]) -> bool:
        """A pod that is not finished mounts the claim (only if pods are served by this fake)."""
        for pod_key, pod in self._store.get("Pod", {}).items():
            if pod_key[0] != key[0] or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            for volume in _ll((pod.get("spec") or {}).get("volumes")):
                if _dl(_dl(volume).get("persistentVolumeClaim")).get("claimName") == key[1]:
                    return True
        return False

    def _collect(self, kind: str, key: tuple[str, str], obj: dict) -> bool:
        """Delete a dependent whose owners are all gone; drop dangling references when some remain."""
        refs = obj["metadata"]["ownerReferences"]
        solid = [r for r in refs if self._owner_exists(r, key[0])]
        if len(solid) == len(refs):
            return False
        if not solid:
            self._delete_by_controller(kind, key, obj, "Background")
        else:
            obj["metadata"]["ownerReferences"] = solid
            obj["metadata"]["resourceVersion"] = self._next_rv()
        return True

    def _delete_by_controller(self, kind: str, key: tuple[str, str], obj: dict, policy: str) -> None:
        res = _BY_KIND.get(kind)
        if res is None:   # a kind added by another part of the fake without a catalogue entry
            del self._store[kind][key]
            return
        self._delete(res, key[0], key[1], {"propagationPolicy": policy}, b"")

    def _namespace_controller(self, key: tuple[str, str], namespace: dict) -> bool:
        if not namespace["metadata"].get("deletionTimestamp"):
            return False
        name = key[1]
        changed = False
        left = 0
        for kind, objs in self._store.items():
            if kind == "Namespace":
                continue
            for okey, obj in list(objs.items()):
                if okey[0] != name:
                    continue
                left += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    self._delete_by_controller(kind, okey, obj, "Background")
                    changed = True
        if left == 0:
            del self._store["Namespace"][key]
            self._next_rv()
            return True
        return changed

    # ------------------------------------------------------------------ job insight: pods, events, logs, patch
    # What the service reads to explain a job, and the one write it makes to suspend or resume it. Where the
    # real server answers differently, the real one is right: tests/test_real_insight.py runs the same paths
    # against kube-apiserver v1.28 with its job controller and scheduler.

    def set_pod_log(self, namespace: str, pod: str, text: str, *, container: str | None = None,
                    previous: bool = False) -> None:
        """Replace what a pod's container printed (``previous``: its earlier, terminated instance)."""
        with self._lock:
            self._pod_logs[(namespace, pod, container or self._only_container(namespace, pod), previous)] = text

    def append_pod_log(self, namespace: str, pod: str, text: str, *, container: str | None = None) -> None:
        """The container prints ``text``: a follower of the log receives it."""
        with self._lock:
            key = (namespace, pod, container or self._only_container(namespace, pod), False)
            self._pod_logs[key] = self._pod_logs.get(key, "") + text

    def add_event(self, namespace: str, involved: dict, reason: str, message: str, *, type: str = "Normal",
                  component: str = "", count: int | None = 1, last_timestamp: str | None = None,
                  event_time: str | None = None, series: dict | None = None) -> dict:
        """Record an event about ``involved`` (a stored object, or an ``involvedObject`` dict).

        Old-style events (controllers) have count and first/lastTimestamp; pass ``event_time`` (and no
        ``last_timestamp``, ``count=None``) for a new-style one such as the scheduler's, with ``series`` once
        it repeats.
        """
        with self._lock:
            return copy.deepcopy(self._record_event(namespace, involved, reason, message, type=type,
                                                    component=component, count=count,
                                                    last_timestamp=last_timestamp, event_time=event_time,
                                                    series=series))

    def age_object(self, kind: str, namespace: str, name: str, seconds: int) -> None:
        """Move an object's creationTimestamp ``seconds`` back (timestamps have one-second resolution, so
        objects created in one test are otherwise of the same age)."""
        with self._lock:
            md = self._store[kind][(namespace if _BY_KIND[kind].namespaced else "", name)]["metadata"]
            created = calendar.timegm(time.strptime(md["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ"))
            md["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created - seconds))

    def resync_job(self, namespace: str, kind: str, name: str) -> None:
        """Let the job controller act on the job now (e.g. replace a pod a test marked Failed)."""
        with self._lock:
            self._sync_job(namespace, self._store[kind][(namespace, name)])

    def bind_pod(self, namespace: str, pod: str, node: str) -> None:
        """Play the scheduler: put the pod on ``node`` (``spec.nodeName`` and condition PodScheduled=True)."""
        with self._lock:
            obj = self._store["Pod"].get((namespace, pod))
            if obj is None:
                raise KeyError(f"Pod {namespace}/{pod} not found")
            obj["spec"]["nodeName"] = node
            status = obj.setdefault("status", {})
            status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"] + [
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": _now()}]
            obj["metadata"]["resourceVersion"] = self._next_rv()

    def _only_container(self, namespace: str, pod: str) -> str:
        obj = self._store["Pod"].get((namespace, pod))
        containers = ((obj or {}).get("spec") or {}).get("containers") or []
        if len(containers) != 1:
            raise ValueError(f"pod {namespace}/{pod}: name the container (it has {len(containers)})")
        return containers[0]["name"]

    def _record_event(self, namespace: str, involved: dict, reason: str, message: str, *, type: str = "Normal",
                      component: str = "job-controller", count: int | None = 1, last_timestamp: str | None = None,
                      event_time: str | None = None, series: dict | None = None) -> dict:
        if "metadata" in involved:   # a stored object: refer to it the way the real recorders do
            md = involved["metadata"]
            involved = {"kind": involved.get("kind"), "namespace": md.get("namespace", namespace),
                        "name": md.get("name"), "uid": md.get("uid"), "apiVersion": involved.get("apiVersion"),
                        "resourceVersion": md.get("resourceVersion")}
        now = _now()
        new_style = event_time is not None
        event: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Event",
            # client-go names an event <object>.<UnixNano in hex>
            "metadata": {"name": f"{involved.get('name', '')}.{time.time_ns():x}"},
            "involvedObject": dict(involved), "reason": reason, "message": message,
            "source": {} if new_style else {"component": component},
            "firstTimestamp": None if new_style else (last_timestamp or now),
            "lastTimestamp": None if new_style else (last_timestamp or now),
            "type": type, "eventTime": event_time, "reportingComponent": component, "reportingInstance": "",
        }
        if count is not None:
            event["count"] = count
        if series is not None:
            event["series"] = dict(series)
        while (namespace, event["metadata"]["name"]) in self._store["Event"]:   # two events in one nanosecond
            event["metadata"]["name"] += "0"
        self._finish_create(_BY_KIND["Event"], namespace, event)
        self._store["Event"][(namespace, event["metadata"]["name"])] = event
        return event

    # --- the pod log subresource

    def _pod_log(self, ns: str, name: str, query: dict[str, str]):
        """GET .../pods/NAME/log as the API server answers it (it proxies the kubelet, which has the text)."""
        pod = self._store["Pod"].get((ns, name))
        if pod is None:
            raise _not_found(_BY_KIND["Pod"], name)
        spec = pod.get("spec") or {}
        names = [c.get("name") for c in _ll(spec.get("containers"))]
        container = query.get("container") or ""
        if not container:
            if len(names) != 1:
                raise _bad_request(f"a container name must be specified for pod {name}, choose one of: "
                                   f"[{' '.join(names)}]")
            container = names[0]
        if container not in names + [c.get("name") for c in _ll(spec.get("initContainers"))]:
            raise _bad_request(f"container {container} is not valid for pod {name}")
        if not spec.get("nodeName"):
            return 204, _RawBody("text/plain", b""), {}   # not on a node: no kubelet to ask (real: 204, no body)
        previous = query.get("previous") in ("true", "1")
        statuses = {c.get("name"): c for c in _ll((pod.get("status") or {}).get("containerStatuses"))}
        state = statuses.get(container) or {}
        if previous and not (state.get("lastState") or {}).get("terminated"):
            raise _bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        current = state.get("state") or {}
        if not previous and not (current.get("running") or current.get("terminated")):
            waiting = (current.get("waiting") or {}).get("reason") or "ContainerCreating"
            why = ("trying and failing to pull image" if waiting in ("ErrImagePull", "ImagePullBackOff")
                   else waiting)
            raise _bad_request(f'container "{container}" in pod "{name}" is waiting to start: {why}')
        key = (ns, name, container, previous)
        text = self._pod_logs.get(key, "")
        if "tailLines" in query:
            try:
                tail = int(query["tailLines"])
            except ValueError:
                raise _bad_request(f'tailLines: Invalid value: "{query["tailLines"]}"') from None
            start = sum(len(line) for line in text.splitlines(keepends=True)[:-tail]) if tail else len(text)
        else:
            start = 0
        follow = query.get("follow") in ("true", "1") and not previous and not current.get("terminated")
        if follow:
            return 200, _LogFollow(self, key, start), {}
        return 200, _RawBody("text/plain", text[start:].encode()), {}

    def _log_follow_step(self, key: tuple[str, str, str, bool], offset: int) -> tuple[str, bool]:
        """(new text since ``offset``, whether the stream is over: pod gone or ended, or the server stopped)."""
        with self._lock:
            text = self._pod_logs.get(key, "")[offset:]
            pod = self._store["Pod"].get(key[:2])
            phase = ((pod or {}).get("status") or {}).get("phase")
            return text, pod is None or phase in ("Succeeded", "Failed") or self._httpd is None

    # --- JSON merge patch

    def _patch(self, res: _Resource, ns: str, name: str, query: dict[str, str], body: bytes, content_type: str):
        media = content_type.split(";", 1)[0].strip().lower()
        accepted = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
        if res.kind != "RunaiJob":   # custom resources have no strategic merge patch
            accepted.append("application/strategic-merge-patch+json")
        if media not in accepted:
            raise _ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                            f"accepted media types include: {', '.join(accepted)}")
        if media not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            raise _ApiError(415, "UnsupportedMediaType", f"the fake API server does not implement {media}")
        dry_run = self._dry_run(query)
        key = (ns if res.namespaced else "", name)
        old = self._store[res.kind].get(key)
        if old is None:
            raise _not_found(res, name)
        try:
            patch = json.loads(body or b"null")
        except ValueError as e:
            raise _bad_request(f"error decoding patch: {e}") from None
        if not isinstance(patch, dict):
            raise _bad_request("json: cannot unmarshal into Go value of type map[string]interface {}")
        new = _merge_patch(copy.deepcopy(old), patch)
        # Server-owned fields stay; status belongs to the status subresource and is kept as it was.
        for field_ in ("name", "namespace", "uid", "creationTimestamp", "generation", "resourceVersion"):
            if field_ in old["metadata"]:
                new.setdefault("metadata", {})[field_] = old["metadata"][field_]
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)   # a RunaiJob nothing has reported on has none
        new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
        headers: dict[str, str] = {}
        if self.validate:
            # the patched object is decoded and validated like a new one (tests/test_fake_vs_real.py)
            patched = json.dumps(new, separators=(",", ":"))
            type_error, unknown = _DECODER.decode(new, new["apiVersion"], new["kind"])
            if type_error:
                # v1.28 words a patch that cannot be decoded as an invalid "patch" holding the patched object
                raise _ApiError(422, "Invalid", f' "" is invalid: patch: Invalid value: {json.dumps(patched)}: '
                                f"{type_error}", {"causes": [{"reason": "FieldValueInvalid", "field": "patch",
                                                              "message": f"Invalid value: {json.dumps(patched)}: "
                                                                         f"{type_error}"}]})
            if unknown:
                headers["Warning"] = ", ".join(_warning(f'unknown field "{u}"') for u in unknown)
            errs = self._validate_semantics(res, new)
            if res.kind == "Job":
                # ValidateJob, then ValidateJobUpdate, which validates the spec once more (v1.28 reports twice)
                errs += [e for e in _validate_job(new, _dl(new.get("spec"))) if e.field != "spec.selector"]
                for fld in ("selector", "template", "completions", "completionMode"):
                    if (new.get("spec") or {}).get(fld) != (old.get("spec") or {}).get(fld):
                        errs.append(_fe_invalid(f"spec.{fld}", (new.get("spec") or {}).get(fld), "field is immutable"))
            if errs:
                raise _invalid(res, name, errs)
        if new == old:
            return 200, new, headers   # nothing changed: no new resourceVersion, like the real server
        if new.get("spec") != old.get("spec"):
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        new["metadata"]["resourceVersion"] = self._next_rv()
        if not dry_run:
            self._store[res.kind][key] = new
            if self.job_controller and res.kind in ("Job", "RunaiJob"):
                self._sync_job(ns, new)
        return 200, new, headers

    # --- a minimal job controller

    def _sync_job(self, ns: str, job: dict) -> None:
        """The job controller's part, done at once: a running job gets ``parallelism`` pods, a suspended one
        none; the conditions and events are the real controller's (kube-controller-manager v1.28)."""
        spec, md = job.get("spec") or {}, job["metadata"]
        status = job.setdefault("status", {})
        conditions = status.setdefault("conditions", [])
        if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions):
            return
        pods = [p for (pns, _), p in self._store["Pod"].items()
                if pns == ns and any(r.get("uid") == md["uid"] for r in p["metadata"].get("ownerReferences") or [])]
        active = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        suspended = next((c for c in conditions if c.get("type") == "Suspended"), None)
        now = _now()
        if spec.get("suspend"):
            for pod in active:
                self._remove(_BY_KIND["Pod"], (ns, pod["metadata"]["name"]))
                self._record_event(ns, job, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
            status.pop("active", None)
            if not (suspended and suspended.get("status") == "True"):
                conditions[:] = [c for c in conditions if c.get("type") != "Suspended"] + [
                    {"type": "Suspended", "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
                     "reason": "JobSuspended", "message": "Job suspended"}]
                self._record_event(ns, job, "Suspended", "Job suspended")
        else:
            if suspended and suspended.get("status") == "True":
                suspended.update(status="False", lastProbeTime=now, lastTransitionTime=now, reason="JobResumed",
                                 message="Job resumed")
                self._record_event(ns, job, "Resumed", "Job resumed")
            parallelism = spec.get("parallelism", 1)
            remaining = (spec.get("completions") or parallelism) - (status.get("succeeded") or 0)
            for _ in range(max(0, min(parallelism, remaining) - len(active))):
                active.append(self._create_job_pod(ns, job))
                self._record_event(ns, job, "SuccessfulCreate", f"Created pod: {active[-1]['metadata']['name']}")
            status["active"] = len(active)
            status["ready"] = 0
            status.setdefault("startTime", now)
        if not conditions:
            del status["conditions"]
        md["resourceVersion"] = self._next_rv()

    def _create_job_pod(self, ns: str, job: dict) -> dict:
        template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
        tmd = template.get("metadata") or {}
        job_name = job["metadata"]["name"]
        while True:
            name = f"{job_name[:57]}-" + "".join(random.choice(_GEN_ALPHABET) for _ in range(5))
            if (ns, name) not in self._store["Pod"]:
                break
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "generateName": f"{job_name[:57]}-", "labels": tmd.get("labels") or {},
                            "annotations": tmd.get("annotations") or {},
                            "ownerReferences": [{"apiVersion": job["apiVersion"], "kind": job["kind"],
                                                 "name": job_name, "uid": job["metadata"]["uid"],
                                                 "controller": True, "blockOwnerDeletion": True}]},
               "spec": template.get("spec") or {}, "status": {"phase": "Pending", "qosClass": "BestEffort"}}
        _default_pod_spec(pod["spec"])
        self._finish_create(_BY_KIND["Pod"], ns, pod)
        self._store["Pod"][(ns, name)] = pod
        return pod


# --------------------------------------------------------------------------------------
# Job insight: bodies that are not JSON, and the merge patch
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RawBody:
    """An answer that is not a JSON object (a pod log)."""

    content_type: str
    data: bytes


class _LogFollow:
    """A followed pod log: iterating it yields what the container prints until the pod ends (or the server stops)."""

    def __init__(self, fake: "FakeApiServer", key: tuple[str, str, str, bool], offset: int) -> None:
        self.fake, self.key, self.offset = fake, key, offset

    def __iter__(self):
        while True:
            text, over = self.fake._log_follow_step(self.key, self.offset)
            if text:
                self.offset += len(text)
                yield text.encode()
            elif over:
                return
            else:
                time.sleep(0.02)


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge_patch(merged.get(key), value)
    return merged


# --------------------------------------------------------------------------------------
# Kind-specific semantic validation (subset of k8s.io/kubernetes/pkg/apis/*/validation)
# --------------------------------------------------------------------------------------


def _default_pod_spec(ps: Any) -> None:
    if not isinstance(ps, dict):
        return
    ps.setdefault("restartPolicy", "Always")
    ps.setdefault("dnsPolicy", "ClusterFirst")
    ps.setdefault("schedulerName", "default-scheduler")
    ps.setdefault("securityContext", {})
    ps.setdefault("terminationGracePeriodSeconds", 30)
    for vol in _ll(ps.get("volumes")):
        if isinstance(vol, dict) and isinstance(vol.get("hostPath"), dict):
            vol["hostPath"].setdefault("type", "")   # HostPathUnset
    for ctr in _ll(ps.get("containers")) + _ll(ps.get("initContainers")):
        if not isinstance(ctr, dict):
            continue
        ctr.setdefault("terminationMessagePath", "/dev/termination-log")
        ctr.setdefault("terminationMessagePolicy", "File")
        ctr.setdefault("resources", {})
        image = ctr.get("image") or ""
        if isinstance(image, str) and image:
            tag = image.rsplit("/", 1)[-1]
            latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
            ctr.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        for port in _ll(ctr.get("ports")):
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


_MSG_ENV_NAME = ("a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
                 "or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or "
                 "'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')")
_ENV_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def _env_name_errs(v: str) -> list[str]:
    errs = [] if _ENV_NAME_RE.match(v) else [_MSG_ENV_NAME]
    if v == ".":
        errs.append("must not be '.'")
    elif v == "..":
        errs.append("must not be '..'")
    elif v.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def _validate_volumes(volumes: list, fld: str) -> tuple[list[_FieldErr], set[str]]:
    """ValidateVolumes: the source first, then the name (v1.28 order)."""
    errs: list[_FieldErr] = []
    names: set[str] = set()
    for i, vol in enumerate(volumes):
        vol = _dl(vol)
        vf = f"{fld}[{i}]"
        sources = [k for k in vol if k != "name"]
        if not sources:
            errs.append(_fe_required(vf, "must specify a volume type"))
        host_path = vol.get("hostPath")
        if isinstance(host_path, dict) and not host_path.get("path"):
            errs.append(_fe_required(vf + ".hostPath.path"))
        claim = vol.get("persistentVolumeClaim")
        if isinstance(claim, dict) and not claim.get("claimName"):
            errs.append(_fe_required(vf + ".persistentVolumeClaim.claimName"))
        vname = vol.get("name") or ""
        if not vname:
            errs.append(_fe_required(vf + ".name"))
        else:
            errs += [_fe_invalid(vf + ".name", vname, m) for m in _dns1123_label_errs(vname)]
        if vname in names:
            errs.append(_fe_duplicate(vf + ".name", vname))
        names.add(vname)
    return errs, names


def _validate_container(ctr: dict, cf: str, volumes: set[str]) -> list[_FieldErr]:
    """validateContainerCommon of v1.28, in its order."""
    errs: list[_FieldErr] = []
    cname = ctr.get("name") or ""
    if not cname:
        errs.append(_fe_required(cf + ".name"))
    else:
        errs += [_fe_invalid(cf + ".name", cname, m) for m in _dns1123_label_errs(cname)]
    if not ctr.get("image"):
        errs.append(_fe_required(cf + ".image"))
    port_names: set[str] = set()
    for j, port in enumerate(_ll(ctr.get("ports"))):
        port = _dl(port)
        pf = f"{cf}.ports[{j}]"
        pn = port.get("name")
        if pn:
            if pn in port_names:
                errs.append(_fe_duplicate(pf + ".name", pn))
            port_names.add(pn)
        cp = port.get("containerPort") or 0
        if not cp:
            errs.append(_fe_required(pf + ".containerPort"))
        elif not 1 <= cp <= 65535:
            errs.append(_fe_invalid(pf + ".containerPort", cp, "must be between 1 and 65535, inclusive"))
    for j, env in enumerate(_ll(ctr.get("env"))):
        env = _dl(env)
        ef = f"{cf}.env[{j}]"
        ename = env.get("name") or ""
        if not ename:
            errs.append(_fe_required(ef + ".name"))
        else:
            errs += [_fe_invalid(ef + ".name", ename, m) for m in _env_name_errs(ename)]
        value_from = env.get("valueFrom")
        if isinstance(value_from, dict):
            secret = value_from.get("secretKeyRef")
            if isinstance(secret, dict):
                sname = secret.get("name") or ""
                errs += [_fe_invalid(ef + ".valueFrom.secretKeyRef.name", sname, m)
                         for m in _dns1123_subdomain_errs(sname)]
                if not secret.get("key"):
                    errs.append(_fe_required(ef + ".valueFrom.secretKeyRef.key"))
            sources = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef") if k in value_from]
            if not sources:
                errs.append(_fe_invalid(ef + ".valueFrom", "", "must specify one of: `fieldRef`, "
                                        "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
            elif env.get("value"):
                errs.append(_fe_invalid(ef + ".valueFrom", "", "may not be specified when `value` is not empty"))
            elif len(sources) > 1:
                errs.append(_fe_invalid(ef + ".valueFrom", "", "may not have more than one field specified at a time"))
    mount_points: set[str] = set()
    for j, vm in enumerate(_ll(ctr.get("volumeMounts"))):
        vm = _dl(vm)
        mf = f"{cf}.volumeMounts[{j}]"
        if not vm.get("name"):
            errs.append(_fe_required(mf + ".name"))
        if (vm.get("name") or "") not in volumes:
            errs.append(_fe_not_found(mf + ".name", vm.get("name") or ""))
        path = vm.get("mountPath") or ""
        if not path:
            errs.append(_fe_required(mf + ".mountPath"))
        if path in mount_points:
            errs.append(_fe_invalid(mf + ".mountPath", path, "must be unique"))
        mount_points.add(path)
    ipp = ctr.get("imagePullPolicy")
    if ipp is not None and ipp not in ("Always", "IfNotPresent", "Never"):
        errs.append(_fe_not_supported(cf + ".imagePullPolicy", ipp, ["Always", "IfNotPresent", "Never"]))
    errs += _validate_resource_requirements(ctr.get("resources"), cf + ".resources")
    return errs


def _validate_pod_spec(ps: Any, fld: str) -> list[_FieldErr]:
    """ValidatePodSpec of v1.28 for the fields this fake knows: volumes, containers, restartPolicy, nodeSelector."""
    ps = _dl(ps)
    errs, volumes = _validate_volumes(_ll(ps.get("volumes")), fld + ".volumes")
    containers = _ll(ps.get("containers"))
    if not containers:
        errs.append(_fe_required(fld + ".containers"))
    names: set[str] = set()   # unique across containers and init containers
    for section, items in (("containers", containers), ("initContainers", _ll(ps.get("initContainers")))):
        for i, ctr in enumerate(items):
            cf = f"{fld}.{section}[{i}]"
            ctr = _dl(ctr)
            errs += _validate_container(ctr, cf, volumes)
            if ctr.get("name") in names:
                errs.append(_fe_duplicate(cf + ".name", ctr.get("name")))
            names.add(ctr.get("name"))
    rp = ps.get("restartPolicy")
    if rp is not None and rp not in ("Always", "OnFailure", "Never"):
        errs.append(_fe_not_supported(fld + ".restartPolicy", rp, ["Always", "OnFailure", "Never"]))
    errs += _validate_labels(ps.get("nodeSelector"), fld + ".nodeSelector")
    return errs


def _go_string_map(labels: dict) -> str:
    """Go's %#v of a map[string]string (keys sorted), as v1.28 prints it in a field error."""
    return "map[string]string{" + ", ".join(f"{json.dumps(k)}:{json.dumps(str(v))}"
                                            for k, v in sorted(labels.items())) + "}"


def _go_label_selector(selector: dict) -> str:
    labels = selector.get("matchLabels")
    shown = _go_string_map(labels) if labels else "map[string]string(nil)"
    expressions = "[]v1.LabelSelectorRequirement(nil)" if not selector.get("matchExpressions") else "[...]"
    return f"v1.LabelSelector{{MatchLabels:{shown}, MatchExpressions:{expressions}}}"


def _validate_job(obj: dict, spec: dict | None, is_job: bool = True) -> list[_FieldErr]:
    """ValidateJob of v1.28 after PrepareForCreate (selector and pod labels generated), in its order."""
    errs: list[_FieldErr] = []
    spec = spec or {}
    for fname in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                  "ttlSecondsAfterFinished"):
        v = spec.get(fname)
        if isinstance(v, int) and v < 0:
            errs.append(_fe_invalid(f"spec.{fname}", v, "must be greater than or equal to 0"))
    tmpl = _dl(spec.get("template"))
    tmd = _dl(tmpl.get("metadata"))
    labels = _dl(tmd.get("labels"))
    selector = spec.get("selector")
    matchers = _dl(_dl(selector).get("matchLabels"))
    if not spec.get("manualSelector"):   # validateGeneratedSelector comes before the spec's own checks
        md = obj["metadata"]
        expected = {"batch.kubernetes.io/controller-uid": md.get("uid"), "batch.kubernetes.io/job-name": md.get("name"),
                    "controller-uid": md.get("uid"), "job-name": md.get("name")}
        if any(expected.get(k) != v for k, v in matchers.items()):
            errs.insert(0, _FieldErr("spec.selector", "FieldValueInvalid",
                                     f"Invalid value: {_go_label_selector(_dl(selector))}: `selector` not auto-generated"))
    if not selector:
        errs.append(_fe_required("spec.selector"))
    elif any(labels.get(k) != v for k, v in matchers.items()):
        errs.append(_FieldErr("spec.template.metadata.labels", "FieldValueInvalid",
                              f"Invalid value: {_go_string_map(labels)}: `selector` does not match template `labels`"))
    # ValidatePodTemplateSpec: note the paths, spec.template.labels (not .metadata.labels)
    errs += _validate_labels(labels, "spec.template.labels")
    errs += _validate_annotations(tmd.get("annotations"), "spec.template.annotations")
    errs += _validate_pod_spec(tmpl.get("spec"), "spec.template.spec")
    rp = _dl(tmpl.get("spec")).get("restartPolicy", "Always")
    if rp in ("Always", ""):
        errs.append(_fe_required("spec.template.spec.restartPolicy", 'valid values: "OnFailure", "Never"'))
    elif rp not in ("OnFailure", "Never"):
        errs.append(_fe_not_supported("spec.template.spec.restartPolicy", rp, ["OnFailure", "Never"]))
    return errs


_ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]


_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_CONFIGMAP_MAX_BYTES = 1024 * 1024  # k8s.io/api/core/v1 MaxSecretSize, which ConfigMaps share


def _validate_configmap(obj: dict) -> list[_FieldErr]:
    """ValidateConfigMap: keys are config keys (no duplicates across data/binaryData), total <= 1 MiB."""
    errs: list[_FieldErr] = []
    total = 0
    for section in ("data", "binaryData"):
        for key, value in _dl(obj.get(section)).items():
            if not _CONFIG_KEY.match(key) or len(key) > 253:
                errs.append(_fe_invalid(f"{section}[{key}]", key,
                                        "a valid config key must consist of alphanumeric characters, '-', "
                                        "'_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex "
                                        "used for validation is '[-._a-zA-Z0-9]+')"))
            total += len(str(value).encode())
    if total > _CONFIGMAP_MAX_BYTES:
        errs.append(_FieldErr("", "FieldValueTooLong", f"Too long: may not be more than {_CONFIGMAP_MAX_BYTES} bytes"))
    return errs


def _validate_pvc(spec: dict | None) -> list[_FieldErr]:
    errs: list[_FieldErr] = []
    spec = spec or {}
    modes = spec.get("accessModes") or []
    if not modes:
        errs.append(_fe_required("spec.accessModes", "at least 1 access mode is required"))
    for m in modes:
        if m not in _ACCESS_MODES:
            errs.append(_fe_not_supported("spec.accessModes", m, _ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        errs.append(_fe_forbidden("spec.accessModes", "may not use ReadWriteOncePod with other access modes"))
    requests = ((spec.get("resources") or {}).get("requests") or {})
    if "storage" not in requests:
        errs.append(_fe_required("spec.resources[storage]"))
    else:
        q = _parse_quantity(requests["storage"])
        if q is not None and q <= 0:
            errs.append(_fe_invalid("spec.resources[storage]", str(requests["storage"]),
                                    "must be greater than zero"))
    sc = spec.get("storageClassName")
    if sc:
        errs += [_fe_invalid("spec.storageClassName", sc, m) for m in _dns1123_subdomain_errs(sc)]
    vm = spec.get("volumeMode")
    if vm is not None and vm not in ("Block", "Filesystem"):
        errs.append(_fe_not_supported("spec.volumeMode", vm, ["Block", "Filesystem"]))
    return errs


def _validate_ingress_backend(b: Any, fld: str) -> list[_FieldErr]:
    """validateIngressBackend of v1.28."""
    errs: list[_FieldErr] = []
    b = _dl(b)
    svc, resource = b.get("service"), b.get("resource")
    if svc is not None and resource is not None:
        return [_fe_invalid(fld, "", "cannot set both resource and service backends")]
    if resource is not None:
        return errs
    if svc is None:
        return [_fe_invalid(fld, "", "resource or service backend is required")]
    svc = _dl(svc)
    sname = svc.get("name") or ""
    if not sname:
        errs.append(_fe_required(fld + ".service.name"))
    else:
        errs += [_fe_invalid(fld + ".service.name", sname, m) for m in _dns1035_label_errs(sname)]
    port = _dl(svc.get("port"))
    has_name, has_num = bool(port.get("name")), bool(port.get("number"))
    if has_name and has_num:
        errs.append(_fe_invalid(fld, "", "cannot set both port name & port number"))
    elif has_num and not 1 <= int(port["number"]) <= 65535:
        errs.append(_fe_invalid(fld + ".service.port.number", port["number"],
                                "must be between 1 and 65535, inclusive"))
    elif not has_name and not has_num:
        errs.append(_fe_required(fld, "port name or number is required"))
    return errs


_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")


def _validate_ingress(spec: dict | None) -> list[_FieldErr]:
    """ValidateIngressSpec of v1.28, in its order."""
    errs: list[_FieldErr] = []
    spec = spec or {}
    rules = _ll(spec.get("rules"))
    if not rules and not spec.get("defaultBackend"):
        # the real message prints the Go value of the rules slice
        shown = "[]networking.IngressRule{}" if "rules" in spec else "[]networking.IngressRule(nil)"
        errs.append(_FieldErr("spec", "FieldValueInvalid",
                              f"Invalid value: {shown}: either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend"):
        errs += _validate_ingress_backend(spec["defaultBackend"], "spec.defaultBackend")
    for i, rule in enumerate(rules):
        rule = _dl(rule)
        rf = f"spec.rules[{i}]"
        host = rule.get("host")
        if host:
            try:
                ipaddress.ip_address(host)
                errs.append(_fe_invalid(rf + ".host", host, "must be a DNS name, not an IP address"))
            except ValueError:
                check = host[2:] if host.startswith("*.") else host
                errs += [_fe_invalid(rf + ".host", host, m) for m in _dns1123_subdomain_errs(check)]
        if rule.get("http") is None:
            continue
        paths = _ll(_dl(rule["http"]).get("paths"))
        if not paths:
            errs.append(_fe_required(rf + ".http.paths"))
        for j, p in enumerate(paths):
            p = _dl(p)
            pf = f"{rf}.http.paths[{j}]"
            pt = p.get("pathType")
            if not pt:
                errs.append(_fe_required(pf + ".pathType", "pathType must be specified"))
                continue
            path = p.get("path") or ""
            if pt in ("Exact", "Prefix"):
                if not path.startswith("/"):
                    errs.append(_fe_invalid(pf + ".path", path, "must be an absolute path"))
                errs += [_fe_invalid(pf + ".path", path, f"must not contain '{seq}'")
                         for seq in _INVALID_PATH_SEQUENCES if seq in path]
                errs += [_fe_invalid(pf + ".path", path, f"cannot end with '{suffix}'")
                         for suffix in _INVALID_PATH_SUFFIXES if path.endswith(suffix)]
            elif pt == "ImplementationSpecific":
                if path and not path.startswith("/"):
                    errs.append(_fe_invalid(pf + ".path", path, "must be an absolute path"))
            else:
                errs.append(_fe_not_supported(pf + ".pathType", pt, ["Exact", "ImplementationSpecific", "Prefix"]))
            errs += _validate_ingress_backend(p.get("backend"), pf + ".backend")
    for i, tls in enumerate(_ll(spec.get("tls"))):
        for j, h in enumerate(_ll(_dl(tls).get("hosts"))):
            check = h[2:] if h.startswith("*.") else h
            errs += [_fe_invalid(f"spec.tls[{i}].hosts[{j}]", h, m) for m in _dns1123_subdomain_errs(check)]
    cls = spec.get("ingressClassName")
    if cls:
        errs += [_fe_invalid("spec.ingressClassName", cls, m) for m in _dns1123_subdomain_errs(cls)]
    return errs


# --------------------------------------------------------------------------------------
# Pod Security Admission on pod templates: the Warning header (policy)
# --------------------------------------------------------------------------------------
# The real server checks the pod template of a batch/v1 Job against its namespace's ``warn`` level
# (which defaults to the ``enforce`` level) and answers the create -- dry run too -- with one header
#   Warning: 299 - "would violate PodSecurity \"restricted:latest\": host namespaces (hostNetwork=true), ..."
# It never refuses the Job itself (``enforce`` judges pods, which the job controller makes later), and it
# ignores custom resources such as RunaiJob. Checks and wording below were taken from a v1.28
# kube-apiserver (../shared/kube) for the subset of checks a job of this project can meet: host
# namespaces, hostPath / restricted volume types, hostPort, privileged, allowPrivilegeEscalation,
# capabilities drop ALL, runAsNonRoot, seccompProfile. Check order is the real one.

_PSA_LEVELS = ("privileged", "baseline", "restricted")
_PSA_ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                        "projected", "secret"}


def _psa_warn_level(labels: dict[str, str]) -> str:
    level = labels.get("pod-security.kubernetes.io/warn") or labels.get("pod-security.kubernetes.io/enforce")
    if not level:
        return "privileged"
    return level if level in _PSA_LEVELS else "restricted"


def _psa_quote(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _psa_containers(names: list[str]) -> str:
    return f'{"container" if len(names) == 1 else "containers"} {_psa_quote(names)}'


def _psa_violations(pod: dict, level: str) -> list[str]:
    """Each ``reason (detail)`` the pod spec breaks at ``level``, in the real server's order."""
    pod = _dl(pod)
    psc = _dl(pod.get("securityContext"))
    containers = [c for c in _ll(pod.get("initContainers")) + _ll(pod.get("containers")) if isinstance(c, dict)]

    def sc(c: dict) -> dict:
        return _dl(c.get("securityContext"))

    out = []
    hosts = [f"{k}=true" for k, f in (("hostNetwork", "hostNetwork"), ("hostPID", "hostPID"), ("hostIPC", "hostIPC"))
             if pod.get(f) is True]
    if hosts:
        out.append(f"host namespaces ({', '.join(hosts)})")
    volumes = [v for v in _ll(pod.get("volumes")) if isinstance(v, dict)]
    host_paths = [v.get("name", "") for v in volumes if "hostPath" in v]
    if host_paths and level == "baseline":
        out.append(f'hostPath volumes ({"volume" if len(host_paths) == 1 else "volumes"} {_psa_quote(host_paths)})')
    port_users, host_ports = [], []
    for c in containers:
        ports = [p.get("hostPort") for p in _ll(c.get("ports")) if isinstance(p, dict) and p.get("hostPort")]
        if ports:
            port_users.append(c.get("name", ""))
            host_ports += [str(p) for p in ports]
    host_ports = sorted(set(host_ports))  # the real server collects them in a sorted set
    if port_users:
        verb = "uses hostPort" if len(port_users) == 1 and len(host_ports) == 1 else (
            "uses hostPorts" if len(port_users) == 1 else ("use hostPort" if len(host_ports) == 1 else "use hostPorts"))
        out.append(f"hostPort ({_psa_containers(port_users)} {verb} {', '.join(host_ports)})")
    privileged = [c.get("name", "") for c in containers if sc(c).get("privileged") is True]
    if privileged:
        out.append(f"privileged ({_psa_containers(privileged)} must not set securityContext.privileged=true)")
    if level == "restricted":
        escalating = [c.get("name", "") for c in containers if sc(c).get("allowPrivilegeEscalation") is not False]
        if escalating:
            out.append(f"allowPrivilegeEscalation != false ({_psa_containers(escalating)} must set "
                       "securityContext.allowPrivilegeEscalation=false)")
        no_drop = [c.get("name", "") for c in containers
                   if "ALL" not in _ll(_dl(sc(c).get("capabilities")).get("drop"))]
        if no_drop:
            out.append(f'unrestricted capabilities ({_psa_containers(no_drop)} must set '
                       'securityContext.capabilities.drop=["ALL"])')
        restricted = [(v.get("name", ""), t) for v in volumes
                      for t in [next((k for k in v if k != "name"), "")] if t not in _PSA_ALLOWED_VOLUMES]
        if restricted:
            names = [n for n, _ in restricted]
            kinds = list(dict.fromkeys(t for _, t in restricted))
            out.append(f'restricted volume types ({"volume" if len(names) == 1 else "volumes"} {_psa_quote(names)} '
                       f'{"uses" if len(names) == 1 else "use"} restricted volume '
                       f'{"type" if len(kinds) == 1 else "types"} {_psa_quote(kinds)})')
        out += _psa_explicit_or_implicit(
            "runAsNonRoot != true", psc.get("runAsNonRoot"), [(c.get("name", ""), sc(c).get("runAsNonRoot"))
                                                               for c in containers],
            bad=lambda v: v is False, good=lambda v: v is True,
            must_not="must not set securityContext.runAsNonRoot=false",
            must="must set securityContext.runAsNonRoot=true")
    seccomp = lambda d: _dl(d.get("seccompProfile")).get("type")  # noqa: E731
    if level == "restricted":
        out += _psa_explicit_or_implicit(
            "seccompProfile", seccomp(psc), [(c.get("name", ""), seccomp(sc(c))) for c in containers],
            bad=lambda v: v == "Unconfined", good=lambda v: v in ("RuntimeDefault", "Localhost"),
            must_not='must not set securityContext.seccompProfile.type to "Unconfined"',
            must='must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')
    elif level == "baseline":
        out += _psa_explicit_or_implicit(
            "seccompProfile", seccomp(psc), [(c.get("name", ""), seccomp(sc(c))) for c in containers],
            bad=lambda v: v == "Unconfined", good=lambda v: True,
            must_not='must not set securityContext.seccompProfile.type to "Unconfined"', must="")
    return out


def _psa_explicit_or_implicit(reason: str, pod_value: Any, containers: list[tuple[str, Any]], *, bad, good,
                              must_not: str, must: str) -> list[str]:
    """The shape of runAsNonRoot and seccompProfile: explicit bad values first, else unset containers."""
    setters = ["pod"] if pod_value is not None and bad(pod_value) else []
    explicit = [n for n, v in containers if v is not None and bad(v)]
    if explicit:
        setters.append(_psa_containers(explicit))
    if setters:
        return [f"{reason} ({' and '.join(setters)} {must_not})"]
    if pod_value is not None and good(pod_value):
        return []
    implicit = [n for n, v in containers if v is None or not good(v)]
    if implicit and must:
        return [f"{reason} (pod or {_psa_containers(implicit)} {must})"]
    return []


def _psa_warning_header(level: str, violations: list[str]) -> str:
    text = f'would violate PodSecurity "{level}:latest": ' + ", ".join(violations)
    return '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def _parse_ns_arg(text: str) -> tuple[str, dict[str, str]]:
    name, _, rest = text.partition("=")
    labels: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        k, sep, v = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"bad label {item!r} in --namespace {text!r} (want key=value)")
        labels[k] = v
    if not name:
        raise argparse.ArgumentTypeError(f"bad --namespace {text!r}")
    return name, labels


def main(argv: list[str] | None = None) -> int:
    """``python tests/fake_apiserver.py --port N --kubeconfig PATH ...``: serve until SIGTERM/SIGINT."""
    ap = argparse.ArgumentParser(description="Fake Kubernetes API server (127.0.0.1 only)")
    ap.add_argument("--port", type=int, default=0, help="port to listen on (0 = pick a free one)")
    ap.add_argument("--kubeconfig", help="write a kubeconfig for this server to PATH")
    ap.add_argument("--no-runai", action="store_true", help="do not serve the run.ai/v1 API group")
    ap.add_argument("--no-validate", action="store_true", help="skip schema/semantic validation of creates")
    ap.add_argument("--token", default="fake-token", help="bearer token required from clients ('' = none)")
    ap.add_argument("--namespace", action="append", type=_parse_ns_arg, default=None,
                    metavar="NAME[=k1=v1,k2=v2]",
                    help="namespace to create (repeatable); default: runai-team-a=runai/queue=team-a")
    args = ap.parse_args(argv)
    srv = FakeApiServer(serve_runai=not args.no_runai, validate=not args.no_validate, token=args.token,
                        port=args.port)
    for name, labels in args.namespace or [("runai-team-a", {"runai/queue": "team-a"})]:
        srv.add_namespace(name, labels)
    srv.start()
    if args.kubeconfig:
        srv.write_kubeconfig(args.kubeconfig)
    stop = threading.Event()

    def on_signal(signum, frame):  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"fake apiserver listening on {srv.url}", flush=True)
    while not stop.wait(0.5):
        pass
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
