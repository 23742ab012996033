"""A faithful-enough fake Kubernetes API server for tests and benchmarks.

It speaks the real REST/JSON protocol (so the official ``kubernetes`` client
talks to it unmodified) for the handful of resources runai-submit uses:
Namespaces, batch/v1 Jobs, run.ai/v1 RunaiJobs, Services, PersistentVolumeClaims,
networking.k8s.io/v1 Ingresses and ConfigMaps (create / get / list / delete).

What it reproduces from the real kube-apiserver:

* ``Status`` bodies for every error (401, 400, 404, 405, 409, 422, ...) with the
  same reasons, messages and ``details`` shapes;
* schema validation (kubernetes-validate strict schemas for v1.37; a RunaiJob is
  checked against the Job schema) plus the semantic rules of the real server
  that matter for this project: name formats, label syntax, pod template rules
  (containers need an image, Job restartPolicy, extended resources such as
  ``nvidia.com/gpu`` must be whole numbers with limits), Service ports and
  node-port allocation, PVC access modes/storage, Ingress paths;
* defaulting (Job selector/labels/backoffLimit..., Service clusterIP/nodePorts,
  PVC protection finalizer, Namespace ``kubernetes.io/metadata.name`` label);
* ``generateName``, ``dryRun=All``, label and field selectors;
* deletion like the API server + garbage collector: dependents (by
  ``ownerReferences`` uid) are deleted for Background/Foreground propagation,
  un-owned for Orphan; **batch/v1 Jobs default to Orphan** exactly like the
  real server (with its ``Warning`` header) -- pass
  ``propagation_policy="Background"`` to cascade.  When the deletion would
  leave a finalizer pending (Orphan, Foreground, PVCs, Namespaces) the real
  server answers with the object itself (``deletionTimestamp`` set) instead of a
  ``Status``, and Services/PVCs always answer with the deleted object (their
  registries return it; the v37 client deserialises V1Service/V1PersistentVolumeClaim);
  so does this fake, then it finishes the deletion at once (it plays the
  controllers' part).  Objects with finalizers of your own stay, marked for deletion.
* identities (issue 9): bearer tokens (``add_user``; the server's own token is ``system:admin`` in
  ``system:masters`` unless redefined), ``Impersonate-User``/``Impersonate-Group`` (the requester needs the
  ``impersonate`` verb on users/groups), SelfSubjectReview, SelfSubjectAccessReview, SubjectAccessReview and
  a small RBAC table (``grant``), with the real server's 401/403 bodies; ``callers`` records who made each call;
* ``validate=False`` skips schema and semantic checks (only a name is required).
* a delayed request is still carried out after its delay, even if the client gave
  up meanwhile -- like a slow real server.

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

SCHEMA_VERSION = "1.37.0"

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


def _status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": message, "reason": reason}
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def _details(res: _Resource, name: str, kind: str | None = None) -> dict:
    d: dict[str, Any] = {"name": name}
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


def _path_not_found() -> _ApiError:
    return _ApiError(404, "NotFound", "the server could not find the requested resource", {})


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
    parts = [f"{e.field}: {e.message}" if e.field else e.message for e in errs]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
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


def _validate_resource_requirements(rr: Any, fld: str) -> list[_FieldErr]:
    errs: list[_FieldErr] = []
    if not isinstance(rr, dict):
        return errs
    limits = rr.get("limits") or {}
    requests = rr.get("requests") or {}
    lim_vals: dict[str, decimal.Decimal] = {}
    for section, values, out in (("limits", limits, lim_vals), ("requests", requests, None)):
        for name, raw in values.items():
            f = f"{fld}.{section}[{name}]"
            if "/" not in name and name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
                errs.append(_fe_invalid(f, name, "must be a standard resource for containers"))
            elif "/" in name:
                errs.extend(_fe_invalid(f, name, m) for m in _qualified_name_errs(name))
            q = _parse_quantity(raw)
            if q is None:
                continue  # reported by _check_quantities as a decoding error
            if q < 0:
                errs.append(_fe_invalid(f, str(raw), "must be greater than or equal to 0"))
            if not _is_native_resource(name) and q != q.to_integral_value():
                errs.append(_fe_invalid(f, str(raw), "must be an integer"))
            if out is not None:
                out[name] = q
    for name, raw in requests.items():
        q = _parse_quantity(raw)
        if q is None:
            continue
        if name in lim_vals:
            if q != lim_vals[name] and not _overcommit_allowed(name):
                errs.append(_fe_invalid(f"{fld}.requests", str(raw),
                                        f"must be equal to {name} limit of {limits[name]}"))
            elif q > lim_vals[name]:
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
    if kind in ("Job", "RunaiJob"):
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
# Schema validation (kubernetes-validate, cached)
# --------------------------------------------------------------------------------------


class _SchemaCache:
    """Builds, once per (apiVersion, kind), the same Draft 2020-12 validator that
    ``kubernetes_validate.validate(obj, "1.37.0", strict=True)`` builds on every call
    (same schema files, same registry, same validator class, no format checker)."""

    def __init__(self, version: str = SCHEMA_VERSION) -> None:
        self.version = version
        self._lock = threading.Lock()
        self._registry = None
        self._validators: dict[tuple[str, str], Any] = {}

    def _schema_dir(self):
        import importlib_resources  # kubernetes-validate's own dependency

        return importlib_resources.files("kubernetes_validate").joinpath(
            "kubernetes-json-schema", f"v{self.version}-local-strict")

    def validator(self, api_version: str, kind: str):
        key = (api_version, kind)
        v = self._validators.get(key)
        if v is not None:
            return v
        with self._lock:
            v = self._validators.get(key)
            if v is not None:
                return v
            import jsonschema
            from referencing import Registry, Resource

            d = self._schema_dir()
            if self._registry is None:
                defs = json.loads(d.joinpath("_definitions.json").read_text())
                self._registry = Resource.from_contents(defs) @ Registry()
            # same file naming rule as kubernetes_validate.utils.validate
            gv = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            schema = json.loads(d.joinpath(f"{kind.lower()}-{gv}.json").read_text())
            registry = Resource.from_contents(schema) @ self._registry
            v = jsonschema.validators.Draft202012Validator(schema, registry=registry)
            self._validators[key] = v
            return v

    def errors(self, obj: dict) -> list[_FieldErr]:
        """All schema violations of ``obj`` as field errors (empty when valid)."""
        v = self.validator(obj["apiVersion"], obj["kind"])
        out: list[_FieldErr] = []
        errs = sorted(v.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
        for e in errs:
            path = list(e.absolute_path)
            reason = "FieldValueInvalid"
            if e.validator == "required":
                m = re.match(r"^'(.*)' is a required property$", e.message)
                if m:
                    path.append(m.group(1))
                reason = "FieldValueRequired"
            elif e.validator == "additionalProperties":
                extra = re.findall(r"'([^']*)'", e.message.split("(", 1)[-1])
                if len(extra) == 1:
                    path.append(extra[0])
            elif e.validator == "type":
                reason = "FieldValueTypeInvalid"
            elif e.validator == "enum":
                reason = "FieldValueNotSupported"
            out.append(_FieldErr(_field_path(path), reason, e.message))
        return out


def _field_path(path: list) -> str:
    s = ""
    for p in path:
        if isinstance(p, int):
            s += f"[{p}]"
        else:
            s += ("." if s else "") + str(p)
    return s


_SCHEMAS = _SchemaCache()


# --------------------------------------------------------------------------------------
# Label / field selectors
# --------------------------------------------------------------------------------------

_SEL_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_SEL_VAL = r"[-A-Za-z0-9_.]*"
_SEL_EQ_RE = re.compile(rf"^({_SEL_KEY})\s*(==|!=|=)\s*({_SEL_VAL})$")
_SEL_SET_RE = re.compile(rf"^({_SEL_KEY})\s+(in|notin)\s*\((.*)\)$")
_SEL_CMP_RE = re.compile(rf"^({_SEL_KEY})\s*(>|<)\s*(-?[0-9]+)$")
_SEL_EXISTS_RE = re.compile(rf"^({_SEL_KEY})$")
_SEL_NOT_EXISTS_RE = re.compile(rf"^!\s*({_SEL_KEY})$")


def _split_top_level(s: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_label_selector(selector: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """Parse a label selector string into (key, op, values) requirements; raises ValueError."""
    reqs: list[tuple[str, str, tuple[str, ...]]] = []
    if not selector or not selector.strip():
        return reqs
    for raw in _split_top_level(selector):
        part = raw.strip()
        if not part:
            raise ValueError(f"found '', expected: identifier in {selector!r}")
        if m := _SEL_NOT_EXISTS_RE.match(part):
            key, op, vals = m.group(1), "!", ()
        elif m := _SEL_EQ_RE.match(part):
            key, op, vals = m.group(1), "!=" if m.group(2) == "!=" else "=", (m.group(3),)
        elif m := _SEL_SET_RE.match(part):
            vals = tuple(v.strip() for v in m.group(3).split(",")) if m.group(3).strip() else ()
            if not vals:
                raise ValueError(f"for 'in', 'notin' operators, values set can't be empty: {part!r}")
            key, op = m.group(1), m.group(2)
        elif m := _SEL_CMP_RE.match(part):
            key, op, vals = m.group(1), m.group(2), (m.group(3),)
        elif m := _SEL_EXISTS_RE.match(part):
            key, op, vals = m.group(1), "exists", ()
        else:
            raise ValueError(f"unable to parse requirement: {part!r}")
        kerrs = _qualified_name_errs(key)
        if kerrs:
            raise ValueError(f"unable to parse requirement: key {key!r}: {kerrs[0]}")
        for v in vals:
            verrs = _label_value_errs(v) if op not in (">", "<") else []
            if verrs:
                raise ValueError(f"unable to parse requirement: values[0][{key}]: Invalid value: {v!r}: {verrs[0]}")
        reqs.append((key, op, vals))
    return reqs


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
        allowed = {"metadata.name", "metadata.namespace"} | _FIELD_LABELS.get(res.kind, set())
        if key not in allowed:
            raise _bad_request(f'field label not supported: {key}')
        reqs.append((key, "!=" if op == "!=" else "=", val))
    return reqs


# job insight: the field selectors the real server supports beyond metadata.name/namespace
# (pkg/registry/core/pod/strategy.go, pkg/registry/core/event/strategy.go, pkg/registry/batch/job/strategy.go).
_FIELD_LABELS = {
    "Pod": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"},
    "Event": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
              "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
              "reason", "reportingComponent", "source", "type"},
    "Job": {"status.successful"},
}


def _field_value(obj: dict, key: str) -> str:
    if key == "source":   # an event's source is its component
        key = "source.component"
    value: Any = obj
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _fields_match(reqs, obj: dict) -> bool:
    for key, op, val in reqs:
        actual = _field_value(obj, key)
        if (actual == val) != (op == "="):
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
        as_user = headers.get("Impersonate-User")
        as_groups = headers.get_all("Impersonate-Group") or [] if hasattr(headers, "get_all") else []
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
_SYSTEM_FINALIZERS = {"orphan", "foregroundDeletion", "kubernetes", "kubernetes.io/pvc-protection"}


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
                 kube_version: str = "v1.37.0", port: int = 0) -> None:
        """Configure (but do not start) the server; the "default" namespace exists from the start."""
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
            if self.validate:  # warm the schema cache so the first create is fast too
                threading.Thread(target=self._warm_schemas, daemon=True).start()
        return self

    def _warm_schemas(self) -> None:
        try:
            for kind, api_version in (("Job", "batch/v1"), ("Service", "v1"),
                                      ("PersistentVolumeClaim", "v1"), ("Ingress", "networking.k8s.io/v1"),
                                      ("Namespace", "v1")):
                _SCHEMAS.validator(api_version, kind)
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
        """Drop every object except namespaces, all faults and delays, the request log;
        listen again if connections were being refused."""
        with self._lock:
            for kind, objs in self._store.items():
                if kind != "Namespace":
                    objs.clear()
            self._faults.clear()
            self._delays.clear()
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

    def clear_faults(self) -> None:
        """Disarm every fault and delay."""
        with self._lock:
            self._faults.clear()
            self._delays.clear()

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
        md["uid"] = str(uuid.uuid4())
        md["resourceVersion"] = self._next_rv()
        md["generation"] = 1
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
        if route.verb == "create" and not name:
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
            raise _path_not_found()
        if segs[0] == "api":
            if len(segs) < 2:
                raise _path_not_found()
            gv, rest = ("", segs[1]), segs[2:]
        else:
            if len(segs) < 3:
                if len(segs) == 2 and self._gv_served(segs[1], None):
                    return only_get(_Route("get", special="group", group_version=(segs[1], "")))
                raise _path_not_found()
            gv, rest = (segs[1], segs[2]), segs[3:]
        if not self._gv_served(*gv):
            raise _path_not_found()
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
            major, minor = (m.group(1), m.group(2)) if m else ("1", "37")
            return {"major": major, "minor": minor, "emulationMajor": major, "emulationMinor": minor,
                    "minCompatibilityMajor": major, "minCompatibilityMinor": str(max(int(minor) - 1, 0)),
                    "gitVersion": self.kube_version, "gitCommit": "0" * 40, "gitTreeState": "clean",
                    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25.0", "compiler": "gc",
                    "platform": "linux/amd64"}
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
            raise _bad_request(f"unable to parse requirement: {e}" if "unable" not in str(e) else str(e))
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
        return {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(self._rv)}, "items": self._select(res, ns, query)}

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
        dry_run = self._dry_run(query)
        obj = self._decode(res, body)
        md = obj["metadata"]
        if res.namespaced:
            if md.get("namespace") not in (None, "", ns):
                raise _bad_request("the namespace of the provided object does not match the namespace sent "
                                   "on the request")
            if ("", ns) not in self._store["Namespace"]:
                raise _namespace_not_found(ns)
        name = md.get("name") or ""
        gen = md.get("generateName") or ""
        if not name and gen:
            base = gen[:58]
            for _ in range(8):
                name = base + "".join(random.choice(_GEN_ALPHABET) for _ in range(5))
                if (ns, name) not in self._store[res.kind]:
                    break
            md["name"] = name
        # schema first (a decoding-level check on a real server), then semantic validation
        errs: list[_FieldErr] = []
        if self.validate:
            check = obj
            if res.kind == "RunaiJob":
                check = dict(obj, apiVersion="batch/v1", kind="Job")
            errs = _SCHEMAS.errors(check)
            if errs:
                raise _invalid(res, name, errs)
        self._default(res, ns, obj)
        errs = self._validate_semantics(res, obj) if self.validate else self._validate_name(res, obj["metadata"])
        if errs:
            raise _invalid(res, name, errs)
        key = (ns if res.namespaced else "", name)
        if key in self._store[res.kind]:
            raise _already_exists(res, name)
        self._allocate(res, obj)   # may raise 422 (node port / cluster IP taken)
        self._finish_create(res, ns, obj)
        if res.kind == "Job":
            self._job_selector(obj)
        if not dry_run:
            self._store[res.kind][key] = obj
            if self.job_controller and res.kind in ("Job", "RunaiJob"):
                self._sync_job(ns, obj)
                obj = copy.deepcopy(obj)   # the answer shows the object as created, before the controller
                obj["status"] = {}
        return 201, obj, self._pod_security_headers(res, ns, obj)  # policy: PSA warnings

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
    def _dry_run(query: dict[str, str]) -> bool:
        v = query.get("dryRun")
        if v is None or v == "":
            return False
        if v != "All":
            raise _bad_request(f'dryRun: Unsupported value: {json.dumps(v)}: supported values: "All"')
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
            spec.setdefault("completions", 1)
            spec.setdefault("parallelism", 1)
            spec.setdefault("completionMode", "NonIndexed")
            spec.setdefault("suspend", False)
            if not spec.get("podFailurePolicy"):
                spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
            tmpl = spec.get("template")
            if isinstance(tmpl, dict):
                _default_pod_spec(tmpl.get("spec"))
        elif kind == "RunaiJob":
            obj["status"] = {}
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
        uid, name = obj["metadata"]["uid"], obj["metadata"]["name"]
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        tmpl = spec.get("template")
        if not isinstance(tmpl, dict):
            return
        tmpl["metadata"] = tmd = _dl(tmpl.get("metadata"))
        tmd["labels"] = labels = _dl(tmd.get("labels"))
        for k, v in (("batch.kubernetes.io/controller-uid", uid), ("batch.kubernetes.io/job-name", name),
                     ("controller-uid", uid), ("job-name", name)):
            labels.setdefault(k, v)

    # ------------------------------------------------------------------ semantic validation
    def _validate_semantics(self, res: _Resource, obj: dict) -> list[_FieldErr]:
        errs = self._validate_meta(res, obj["metadata"])
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else None
        if res.kind in ("Job", "RunaiJob"):
            errs += _validate_job(obj, spec, is_job=res.kind == "Job")
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
                masked = gen[:-1] + "a" if gen.endswith("-") else gen
                errs += [_fe_invalid("metadata.generateName", gen, m) for m in name_fn(masked)]
            if name and not (gen and errs):
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
        errs: list[_FieldErr] = []
        if spec is None:
            return [_fe_required("spec.ports")]
        stype = spec.get("type", "ClusterIP")
        types = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
        if stype not in types:
            return [_fe_not_supported("spec.type", stype, types)]
        ports = spec.get("ports") or []
        headless = spec.get("clusterIP") == "None"
        if stype == "ExternalName":
            if not spec.get("externalName"):
                errs.append(_fe_required("spec.externalName"))
        elif not ports and not headless:
            errs.append(_fe_required("spec.ports"))
        names: set[str] = set()
        node_ports: set[tuple[int, str]] = set()
        for i, p in enumerate(ports):
            if not isinstance(p, dict):
                continue
            f = f"spec.ports[{i}]"
            pname = p.get("name") or ""
            if len(ports) > 1 and not pname:
                errs.append(_fe_required(f + ".name"))
            elif pname:
                errs += [_fe_invalid(f + ".name", pname, m) for m in _dns1123_label_errs(pname)]
                if pname in names:
                    errs.append(_fe_duplicate(f + ".name", pname))
                names.add(pname)
            port = p.get("port")
            if isinstance(port, int) and not 1 <= port <= 65535:
                errs.append(_fe_invalid(f + ".port", port, "must be between 1 and 65535, inclusive"))
            proto = p.get("protocol", "TCP")
            if proto not in ("TCP", "UDP", "SCTP"):
                errs.append(_fe_not_supported(f + ".protocol", proto, ["SCTP", "TCP", "UDP"]))
            tp = p.get("targetPort")
            if isinstance(tp, int) and not 1 <= tp <= 65535:
                errs.append(_fe_invalid(f + ".targetPort", tp, "must be between 1 and 65535, inclusive"))
            elif isinstance(tp, str) and not tp.isdigit() and (
                    len(tp) > 15 or not _IANA_SVC_NAME_RE.match(tp) or not re.search("[a-z]", tp)
                    or tp.startswith("-") or tp.endswith("-") or "--" in tp):
                errs.append(_fe_invalid(f + ".targetPort", tp, "must contain only alpha-numeric characters "
                                        "(a-z, 0-9), and hyphens (-)"))
            np_ = p.get("nodePort")
            if np_:
                if stype == "ClusterIP":
                    errs.append(_fe_forbidden(f + ".nodePort", "may not be used when `type` is 'ClusterIP'"))
                elif stype == "ExternalName":
                    errs.append(_fe_forbidden(f + ".nodePort", "may not be used when `type` is 'ExternalName'"))
                else:
                    key = (np_, proto)
                    if key in node_ports:
                        errs.append(_fe_duplicate(f + ".nodePort", np_))
                    node_ports.add(key)
        errs += _validate_labels(spec.get("selector"), "spec.selector")
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
            raise _invalid(res, obj["metadata"]["name"], errs)

    # ------------------------------------------------------------------ delete
    def _delete_options(self, query: dict[str, str], body: bytes) -> dict:
        opts: dict[str, Any] = {}
        if body.strip():
            try:
                parsed = json.loads(body)
            except ValueError as e:
                raise _bad_request(f"json parse error: {e}") from None
            if isinstance(parsed, dict):
                opts.update(parsed)
        for k in ("propagationPolicy", "dryRun", "gracePeriodSeconds"):
            if k in query:
                opts[k] = query[k]
        if "orphanDependents" in query:
            opts["orphanDependents"] = query["orphanDependents"].lower() == "true"
        dry = opts.get("dryRun")
        if isinstance(dry, list):
            dry = dry[0] if dry else None
        opts["dryRun"] = self._dry_run({"dryRun": dry} if dry else {})
        pp = opts.get("propagationPolicy")
        if pp is not None and pp not in ("Foreground", "Background", "Orphan"):
            raise _ApiError(422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                            f'Unsupported value: {json.dumps(pp)}: supported values: "Foreground", '
                            f'"Background", "Orphan", "nil"',
                            {"group": "meta.k8s.io", "kind": "DeleteOptions", "causes": [
                                {"reason": "FieldValueNotSupported", "field": "propagationPolicy",
                                 "message": f"Unsupported value: {json.dumps(pp)}"}]})
        if pp is not None and opts.get("orphanDependents") is not None:
            raise _ApiError(422, "Invalid", 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                            'Invalid value: "' + pp + '": orphanDependents and deletionPropagation cannot be both '
                            'set', {"group": "meta.k8s.io", "kind": "DeleteOptions"})
        if pp is None and opts.get("orphanDependents") is not None:
            opts["propagationPolicy"] = "Orphan" if opts["orphanDependents"] else "Background"
        return opts

    def _delete(self, res: _Resource, ns: str, name: str, query: dict[str, str], body: bytes):
        opts = self._delete_options(query, body)
        key = (ns if res.namespaced else "", name)
        obj = self._store[res.kind].get(key)
        if obj is None:
            raise _not_found(res, name)
        pre = opts.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
            raise _ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} "{name}": '
                            f'Precondition failed: UID in precondition: {pre["uid"]}, UID in object meta: '
                            f'{obj["metadata"]["uid"]}', _details(res, name))
        if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise _ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} "{name}": '
                            f'Precondition failed: ResourceVersion in precondition: {pre["resourceVersion"]}, '
                            f'ResourceVersion in object meta: {obj["metadata"]["resourceVersion"]}',
                            _details(res, name))
        headers: dict[str, str] = {}
        policy = opts.get("propagationPolicy")
        if policy is None and res.kind == "Job":
            headers["Warning"] = _JOB_DELETE_WARNING
            policy = self.job_default_propagation
        policy = policy or "Background"
        dry = opts["dryRun"]
        if res.kind == "Namespace":
            out = copy.deepcopy(obj)
            out["metadata"]["deletionTimestamp"] = _now()
            out["metadata"]["deletionGracePeriodSeconds"] = 0
            out["status"] = {"phase": "Terminating"}
            if not dry:
                for kind, objs in self._store.items():
                    if kind != "Namespace":
                        for k in [k for k in objs if k[0] == name]:
                            del objs[k]
                del self._store["Namespace"][key]
                self._rv += 1
            return 200, out, headers
        finalizers = list(obj["metadata"].get("finalizers") or [])
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        user_finalizers = [f for f in finalizers if f not in _SYSTEM_FINALIZERS]
        if finalizers:
            # pending finalizers: the server answers with the object marked for deletion
            out = copy.deepcopy(obj)
            out["metadata"]["finalizers"] = finalizers
            out["metadata"].setdefault("deletionTimestamp", _now())
            out["metadata"].setdefault("deletionGracePeriodSeconds", 0)
            out["metadata"]["resourceVersion"] = str(self._rv + 1)
            if dry:
                return 200, out, headers
            if user_finalizers:   # nobody here removes them: the object stays, marked for deletion
                out["metadata"]["finalizers"] = user_finalizers
                self._store[res.kind][key] = out
                self._next_rv()
            else:
                self._remove(res, key, policy)
            return 200, out, headers
        if res.kind in _RETURNS_DELETED_OBJECT:
            result: dict = obj
        else:
            result = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": dict(_details(res, name), uid=obj["metadata"]["uid"])}
        if not dry:
            self._remove(res, key, policy)
        return 200, result, headers

    def _remove(self, res: _Resource, key: tuple[str, str], policy: str) -> None:
        """Delete one object now and play the garbage collector for its dependents."""
        obj = self._store[res.kind].pop(key)
        self._next_rv()
        uid = obj["metadata"]["uid"]
        ns = key[0]
        for kind, objs in self._store.items():
            if kind == "Namespace":
                continue
            for dkey, dep in list(objs.items()):
                if res.namespaced and dkey[0] != ns:
                    continue
                refs = dep["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == uid for r in refs):
                    continue
                if dkey not in objs:   # already removed by a recursive call
                    continue
                remaining = [r for r in refs if r.get("uid") != uid]
                solid = [r for r in remaining if self._owner_exists(r, dkey[0])]
                if policy == "Orphan" or solid:
                    dep["metadata"]["ownerReferences"] = remaining
                    if not remaining:
                        del dep["metadata"]["ownerReferences"]
                    dep["metadata"]["resourceVersion"] = self._next_rv()
                else:
                    self._remove(_BY_KIND[kind], dkey, "Background")

    def _owner_exists(self, ref: dict, ns: str) -> bool:
        res = _BY_KIND.get(ref.get("kind", ""))
        uid = ref.get("uid")
        if res is None:
            return False   # an owner kind this fake does not serve counts as absent
        key = (ns if res.namespaced else "", ref.get("name", ""))
        owner = self._store[res.kind].get(key)
        return owner is not None and owner["metadata"]["uid"] == uid

    def _delete_collection(self, res: _Resource, ns: str, query: dict[str, str], body: bytes):
        opts = self._delete_options(query, body)
        victims = list(self._select(res, ns, query))
        policy = opts.get("propagationPolicy") or (self.job_default_propagation if res.kind == "Job"
                                                   else "Background")
        items = []
        for obj in victims:
            key = (ns, obj["metadata"]["name"])
            if key in self._store[res.kind]:
                items.append(obj)
                if not opts["dryRun"]:
                    self._remove(res, key, policy)
        return 200, {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                     "metadata": {"resourceVersion": str(self._rv)}, "items": items}, {}

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
        new["status"] = copy.deepcopy(old.get("status"))
        new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
        if self.validate:
            errs = _SCHEMAS.errors(dict(new, apiVersion="batch/v1", kind="Job") if res.kind == "RunaiJob" else new)
            if res.kind == "Job":
                for fld in ("selector", "template", "completions", "completionMode"):
                    if (new.get("spec") or {}).get(fld) != (old.get("spec") or {}).get(fld):
                        errs.append(_fe_invalid(f"spec.{fld}", (new.get("spec") or {}).get(fld), "field is immutable"))
            if errs:
                raise _invalid(res, name, errs)
        if new == old:
            return 200, new, {}   # nothing changed: no new resourceVersion, like the real server
        if new.get("spec") != old.get("spec"):
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        new["metadata"]["resourceVersion"] = self._next_rv()
        if not dry_run:
            self._store[res.kind][key] = new
            if self.job_controller and res.kind in ("Job", "RunaiJob"):
                self._sync_job(ns, new)
        return 200, new, {}

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
                self._remove(_BY_KIND["Pod"], (ns, pod["metadata"]["name"]), "Background")
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


def _validate_pod_spec(ps: Any, fld: str) -> list[_FieldErr]:
    errs: list[_FieldErr] = []
    if not isinstance(ps, dict):
        return [_fe_required(fld + ".containers")]
    volumes: set[str] = set()
    for i, vol in enumerate(ps.get("volumes") or []):
        if not isinstance(vol, dict):
            continue
        vname = vol.get("name") or ""
        vf = f"{fld}.volumes[{i}].name"
        errs += [_fe_invalid(vf, vname, m) for m in _dns1123_label_errs(vname)] if vname else [_fe_required(vf)]
        if vname in volumes:
            errs.append(_fe_duplicate(vf, vname))
        volumes.add(vname)
        pvc = vol.get("persistentVolumeClaim")
        if isinstance(pvc, dict) and not pvc.get("claimName"):
            errs.append(_fe_required(f"{fld}.volumes[{i}].persistentVolumeClaim.claimName"))
    containers = ps.get("containers") or []
    if not containers:
        errs.append(_fe_required(fld + ".containers"))
    names: set[str] = set()
    for section, ctrs in (("initContainers", ps.get("initContainers") or []), ("containers", containers)):
        for i, ctr in enumerate(ctrs):
            if not isinstance(ctr, dict):
                continue
            cf = f"{fld}.{section}[{i}]"
            cname = ctr.get("name") or ""
            if not cname:
                errs.append(_fe_required(cf + ".name"))
            else:
                errs += [_fe_invalid(cf + ".name", cname, m) for m in _dns1123_label_errs(cname)]
                if cname in names:
                    errs.append(_fe_duplicate(cf + ".name", cname))
                names.add(cname)
            if not (ctr.get("image") or "").strip():
                errs.append(_fe_required(cf + ".image"))
            ipp = ctr.get("imagePullPolicy")
            if ipp is not None and ipp not in ("Always", "IfNotPresent", "Never"):
                errs.append(_fe_not_supported(cf + ".imagePullPolicy", ipp, ["Always", "IfNotPresent", "Never"]))
            errs += _validate_resource_requirements(ctr.get("resources"), cf + ".resources")
            port_names: set[str] = set()
            for j, port in enumerate(ctr.get("ports") or []):
                if not isinstance(port, dict):
                    continue
                cp = port.get("containerPort")
                if isinstance(cp, int) and not 1 <= cp <= 65535:
                    errs.append(_fe_invalid(f"{cf}.ports[{j}].containerPort", cp,
                                            "must be between 1 and 65535, inclusive"))
                pn = port.get("name")
                if pn:
                    if pn in port_names:
                        errs.append(_fe_duplicate(f"{cf}.ports[{j}].name", pn))
                    port_names.add(pn)
            for j, vm in enumerate(ctr.get("volumeMounts") or []):
                if isinstance(vm, dict) and vm.get("name") and vm["name"] not in volumes:
                    errs.append(_fe_not_found(f"{cf}.volumeMounts[{j}].name", vm["name"]))
            for j, env in enumerate(ctr.get("env") or []):
                if isinstance(env, dict) and "=" in (env.get("name") or ""):
                    errs.append(_fe_invalid(f"{cf}.env[{j}].name", env["name"],
                                            "a valid environment variable name must consist only of printable "
                                            "ASCII characters other than '='"))
    rp = ps.get("restartPolicy")
    if rp is not None and rp not in ("Always", "OnFailure", "Never"):
        errs.append(_fe_not_supported(fld + ".restartPolicy", rp, ["Always", "OnFailure", "Never"]))
    return errs


def _validate_job(obj: dict, spec: dict | None, is_job: bool) -> list[_FieldErr]:
    errs: list[_FieldErr] = []
    if spec is None:
        return [_fe_required("spec.template.spec.containers")]
    for fname in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds",
                  "ttlSecondsAfterFinished"):
        v = spec.get(fname)
        if isinstance(v, int) and v < 0:
            errs.append(_fe_invalid(f"spec.{fname}", v, "must be greater than or equal to 0"))
    tmpl = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    tmd = tmpl.get("metadata") if isinstance(tmpl.get("metadata"), dict) else {}
    labels = tmd.get("labels") if isinstance(tmd.get("labels"), dict) else {}
    errs += _validate_labels(labels, "spec.template.metadata.labels")
    errs += _validate_annotations(tmd.get("annotations"), "spec.template.metadata.annotations")
    errs += _validate_pod_spec(tmpl.get("spec"), "spec.template.spec")
    if not is_job:
        return errs
    ps = tmpl.get("spec") if isinstance(tmpl.get("spec"), dict) else {}
    rp = ps.get("restartPolicy", "Always")
    if rp in ("Always",):
        errs.append(_fe_not_supported("spec.template.spec.restartPolicy", rp, ["OnFailure", "Never"]))
    name = obj["metadata"].get("name") or ""
    if spec.get("manualSelector"):
        sel = spec.get("selector")
        if not sel:
            errs.append(_fe_required("spec.selector"))
        else:
            ml = (sel or {}).get("matchLabels") or {}
            if any(labels.get(k) != v for k, v in ml.items()):
                errs.append(_fe_invalid("spec.template.metadata.labels", labels,
                                        "`selector` does not match template `labels`"))
    else:
        if spec.get("selector"):
            errs.append(_fe_invalid("spec.selector", spec["selector"], "`selector` not auto-generated"))
        if len(name) > 63:
            # the job-name labels added to the pod template must be valid label values
            errs.append(_fe_invalid("spec.template.labels", name, "must be no more than 63 characters"))
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
    vm = spec.get("volumeMode")
    if vm is not None and vm not in ("Block", "Filesystem"):
        errs.append(_fe_not_supported("spec.volumeMode", vm, ["Block", "Filesystem"]))
    sc = spec.get("storageClassName")
    if sc:
        errs += [_fe_invalid("spec.storageClassName", sc, m) for m in _dns1123_subdomain_errs(sc)]
    return errs


def _validate_ingress_backend(b: Any, fld: str) -> list[_FieldErr]:
    errs: list[_FieldErr] = []
    if not isinstance(b, dict):
        return [_fe_required(fld)]
    svc, resource = b.get("service"), b.get("resource")
    if svc and resource:
        return [_fe_invalid(fld, "", "cannot set both resource and service backends")]
    if not svc and not resource:
        return [_fe_invalid(fld, "", "resource or service backend is required")]
    if svc:
        sname = svc.get("name") or ""
        if not sname:
            errs.append(_fe_required(fld + ".service.name"))
        else:
            errs += [_fe_invalid(fld + ".service.name", sname, m) for m in _dns1035_label_errs(sname)]
        port = svc.get("port") or {}
        has_name, has_num = bool(port.get("name")), port.get("number") is not None
        if has_name and has_num:
            errs.append(_fe_invalid(fld + ".service.port", port, "cannot set both port name & port number"))
        elif not has_name and not has_num:
            errs.append(_fe_invalid(fld + ".service.port", port, "port name or number is required"))
        elif has_num and not 1 <= int(port["number"]) <= 65535:
            errs.append(_fe_invalid(fld + ".service.port.number", port["number"],
                                    "must be between 1 and 65535, inclusive"))
    return errs


def _validate_ingress(spec: dict | None) -> list[_FieldErr]:
    errs: list[_FieldErr] = []
    spec = spec or {}
    rules = spec.get("rules") or []
    if not rules and not spec.get("defaultBackend"):
        errs.append(_fe_invalid("spec", spec, "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend"):
        errs += _validate_ingress_backend(spec["defaultBackend"], "spec.defaultBackend")
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        rf = f"spec.rules[{i}]"
        host = rule.get("host")
        if host:
            try:
                ipaddress.ip_address(host)
                errs.append(_fe_invalid(rf + ".host", host, "must be a DNS name, not an IP address"))
            except ValueError:
                check = host[2:] if host.startswith("*.") else host
                errs += [_fe_invalid(rf + ".host", host, m) for m in _dns1123_subdomain_errs(check)]
        http_ = rule.get("http")
        if http_ is None:
            continue
        paths = (http_ or {}).get("paths") or []
        if not paths:
            errs.append(_fe_required(rf + ".http.paths"))
        for j, p in enumerate(paths):
            if not isinstance(p, dict):
                continue
            pf = f"{rf}.http.paths[{j}]"
            pt = p.get("pathType")
            if not pt:
                errs.append(_fe_required(pf + ".pathType", "pathType must be specified"))
            elif pt not in ("Exact", "ImplementationSpecific", "Prefix"):
                errs.append(_fe_not_supported(pf + ".pathType", pt, ["Exact", "ImplementationSpecific", "Prefix"]))
            path = p.get("path")
            if pt in ("Exact", "Prefix"):
                if not path or not path.startswith("/"):
                    errs.append(_fe_invalid(pf + ".path", path or "", "must be an absolute path"))
            elif path and not path.startswith("/"):
                errs.append(_fe_invalid(pf + ".path", path, "must be an absolute path"))
            errs += _validate_ingress_backend(p.get("backend"), pf + ".backend")
    for i, tls in enumerate(spec.get("tls") or []):
        for j, h in enumerate((tls or {}).get("hosts") or []):
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
