"""The job request: every rule of the contract's parameter table (§2, §3), loading into ``JobSpec``.

Errors of all fields are collected at once (schema validators run even when a field failed) and flattened
to JSON pointers by ``flatten_errors``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from ..errors import BadRequest, FieldError, ValidationFailed
from ..model import JobSpec, PortSpec, PvcSpec, VolumeSpec
from ..render import names
from ..units import POSITIVE_QUANTITY_INPUT, quantity_value
from .fields import (
    HOST_PATH,
    INT32_MAX,
    MSG_DNS1035,
    MSG_DNS1123,
    MSG_LABEL_VALUE,
    MSG_SUBDOMAIN,
    NODE_PORT_RANGE,
    PULL_POLICIES,
    RULE_HOST_PATH_KEY,
    SERVICE_TYPES,
    CaseInsensitiveChoice,
    Command,
    Duration,
    Environment,
    FullMatch,
    Quantity,
    Ref,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    StrictString,
    absolute_path,
    escape_pointer,
    flatten_errors,
    name_rule,
    no_whitespace,
)

# --- the CLI's string forms, as exact grammars (each also the OpenAPI pattern of that form) ----------

# 1-65535, leading zeros allowed (int() reads "080" as 80).
_PORT_NUMBER = r"0*(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
PORT_STRING = re.compile(f"^(?:({_PORT_NUMBER}):)?({_PORT_NUMBER})$")
_SUBDOMAIN = names.DNS1123_SUBDOMAIN.pattern[1:-1]
_MODE = r"(?::(ro|rw))?"
# StorageClass:Size:/path[:ro] (empty class = the default class) or ClaimName:/path[:ro]; the name before the
# first ":" is at most 253 characters (the lookahead).
PVC_STRING = re.compile(
    f"^(?=[^:]{{0,{names.MAX_SUBDOMAIN}}}:)(?:({_SUBDOMAIN})?:({POSITIVE_QUANTITY_INPUT.pattern[1:-1]})|"
    f"({_SUBDOMAIN})):(/[^:]*){_MODE}$"
)
_HOST_SEGMENT = r"(?:[^/.:][^/:]*|\.(?:[^/.:][^/:]*)?|\.\.[^/:]+)?"
VOLUME_STRING = re.compile(f"^(/{_HOST_SEGMENT}(?:/{_HOST_SEGMENT})*):(/[^:]*){_MODE}$")

host_path = FullMatch(HOST_PATH, error="must be an absolute path without '..' segments")

# The API server keeps an extended resource (nvidia.com/gpu) in thousandths in an int64 and calls a larger
# one "not an integer": found by fuzzing the real control plane (gpu 13420929622130728).
GPU_MAX = (2**63 - 1) // 1000

# --- rules the OpenAPI document states in words (see fields.py): each message starts with its rule ---
RULE_AUTOGENERATE = "autoGenerate picks the external port: leave external out"
RULE_NEW_OR_EXISTING = "give size (a new claim) or claimName (an existing claim), not both"
RULE_EXISTING_CLASS = "an existing claim already has its storage class"
RULE_NEW_NEEDS_SIZE = "size is required for a new claim (or give claimName)"
RULE_GPU_WHOLE = "must be a whole number when more than 1 (fractions are for less than one GPU)"
RULE_TTY = "needs stdin: true"
RULE_CPU_LIMIT = "must be at least cpu"
RULE_MEMORY_LIMIT = "must be at least memory"
RULE_INTERACTIVE_BACKOFF = "must be 0 for an interactive job (it is never retried)"
RULE_INTERACTIVE_COMPLETIONS = "must be 1 for an interactive job"
RULE_PARALLELISM_COMPLETIONS = "needs completions when more than 1"
RULE_PARALLELISM_ELASTIC = "cannot be more than 1 for an elastic job"
RULE_PARALLELISM_INTERACTIVE = "cannot be more than 1 for an interactive job"
RULE_PREEMPTIBLE = "applies to interactive jobs only (training jobs are always preemptible)"
RULE_SERVICE_PORTS = "needs ports"
RULE_UNIQUE_CONTAINER_PORTS = "container ports must be unique"
RULE_UNIQUE_EXTERNAL_PORTS = "external ports must be unique"
RULE_NODE_PORT = "with serviceType nodeport, external must be a node port in {}-{}".format(*NODE_PORT_RANGE)
RULE_UNIQUE_MOUNTS = "mount paths must be unique across pvc, volume, volumes, largeShm and createHomeDir"

# --- nested objects, each also accepted in the CLI's string form -----------------------------------


class PortSchema(Schema):
    class Meta:
        unknown = RAISE

    RULES: ClassVar[dict[str, tuple[str, ...]]] = {"autoGenerate": (RULE_AUTOGENERATE,)}

    container = StrictInteger(required=True, validate=validate.Range(1, 65535, error="must be between 1 and 65535"),
                              metadata={"description": "the container's port"})
    external = StrictInteger(allow_none=True, validate=validate.Range(1, 65535, error="must be between 1 and 65535"),
                             metadata={"description": "the Service's port (and, for nodeport, the node port)"})
    autoGenerate = StrictBoolean(allow_none=True,
                                 metadata={"description": "let the API server pick the external (node) port"})

    @validates_schema(skip_on_field_errors=True)
    def _external_or_generated(self, data: dict, **kwargs: Any) -> None:
        if data.get("autoGenerate") and data.get("external") is not None:
            raise ValidationError(RULE_AUTOGENERATE, "autoGenerate")

    @post_load
    def _make(self, data: dict, **kwargs: Any) -> PortSpec:
        return PortSpec(data["container"], data.get("external"), bool(data.get("autoGenerate")))


class PvcSchema(Schema):
    """A new claim (``size``, optional ``storageClass``) or an existing one (``claimName``)."""

    class Meta:
        unknown = RAISE

    RULES: ClassVar[dict[str, tuple[str, ...]]] = {
        "size": (RULE_NEW_NEEDS_SIZE,), "claimName": (RULE_NEW_OR_EXISTING,), "storageClass": (RULE_EXISTING_CLASS,),
    }

    path = StrictString(required=True, validate=absolute_path, metadata={"description": "mount path in the container"})
    readOnly = StrictBoolean(allow_none=True)
    size = Quantity(allow_none=True, metadata={"description": "size of a new claim"})
    storageClass = StrictString(
        allow_none=True, validate=name_rule(names.DNS1123_SUBDOMAIN, MSG_SUBDOMAIN, names.MAX_SUBDOMAIN),
        metadata={"description": "storage class of a new claim (the cluster's default without it)"},
    )
    claimName = StrictString(
        allow_none=True, validate=name_rule(names.DNS1123_SUBDOMAIN, MSG_SUBDOMAIN, names.MAX_SUBDOMAIN),
        metadata={"description": "an existing claim to mount"},
    )

    @validates_schema(skip_on_field_errors=True)
    def _new_or_existing(self, data: dict, **kwargs: Any) -> None:
        claim, size = data.get("claimName"), data.get("size")
        if claim and size:
            raise ValidationError(RULE_NEW_OR_EXISTING, "claimName")
        if claim and data.get("storageClass"):
            raise ValidationError(RULE_EXISTING_CLASS, "storageClass")
        if not claim and not size:
            raise ValidationError(RULE_NEW_NEEDS_SIZE, "size")

    @post_load
    def _make(self, data: dict, **kwargs: Any) -> PvcSpec:
        return PvcSpec(
            path=data["path"],
            read_only=bool(data.get("readOnly")),
            size=data.get("size"),
            storage_class=data.get("storageClass") or None,
            claim_name=data.get("claimName") or None,
        )


class VolumeSchema(Schema):
    class Meta:
        unknown = RAISE

    sourcePath = StrictString(required=True, validate=host_path, metadata={"description": "path on the node"})
    targetPath = StrictString(required=True, validate=absolute_path, metadata={"description": "path in the container"})
    readOnly = StrictBoolean(allow_none=True)

    @post_load
    def _make(self, data: dict, **kwargs: Any) -> VolumeSpec:
        return VolumeSpec(data["sourcePath"], data["targetPath"], bool(data.get("readOnly")))


class VolumeMap(fields.Field):
    """The seed page's ``{"/host/path": "/container/path"}``; errors point at the host path's key."""

    default_error_messages = {"invalid": "must be an object of host paths to container paths"}
    rules = (RULE_HOST_PATH_KEY,)

    def openapi(self, ref: Ref) -> dict:
        return {"type": "object", "additionalProperties": {"type": "string", "pattern": absolute_path.regex.pattern}}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> dict:
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        volumes: dict[str, VolumeSpec] = {}
        errors: dict[str, list[str]] = {}
        for source, target in value.items():
            problems = []
            if not HOST_PATH.fullmatch(source):
                problems.append(RULE_HOST_PATH_KEY)
            if not isinstance(target, str):
                problems.append("the container path must be a string")
            elif not absolute_path.regex.fullmatch(target):
                problems.append(f"container path {target!r} must be an absolute path")
            if problems:
                errors[source] = problems
            else:
                volumes[source] = VolumeSpec(source, target)
        if errors:
            raise ValidationError(errors)
        return volumes


class StringForm:
    """One of the CLI's string forms: its exact ``grammar`` (also the OpenAPI pattern), ``read`` for a match,
    and ``explain`` for a miss (a lenient reading whose own errors say what is wrong)."""

    def __init__(self, grammar: re.Pattern, read: Any, explain: Any, usage: str) -> None:
        self.grammar, self.read, self.explain, self.usage = grammar, read, explain, usage

    def load(self, schema: Schema, text: str) -> Any:
        match = self.grammar.fullmatch(text)
        if match is not None:
            return schema.load(self.read(match))
        schema.load(self.explain(text))  # raises, naming the part that is wrong
        raise ValidationError(f"must be {self.usage}")


class ObjectOrString(fields.Field):
    """A list item given as an object (loaded by ``schema``) or as the CLI's string (``form``); ports also take
    a bare port number."""

    default_error_messages = {"invalid": "must be an object or a string"}

    def __init__(self, schema: Schema, form: StringForm, accept_int: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schema = schema
        self.form = form
        self.accept_int = accept_int

    def openapi(self, ref: Ref) -> dict:
        shapes = [ref(self.schema), {"type": "string", "pattern": self.form.grammar.pattern,
                                     "description": self.form.usage}]
        if self.accept_int:
            shapes.append({"type": "integer", "minimum": 1, "maximum": 65535})
        return {"oneOf": shapes}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, str):
            try:
                return self.form.load(self.schema, value)
            except ValidationError as exc:
                # A string has no members to point at: the error is the item's, naming the part that is wrong.
                raise ValidationError(_member_messages(exc.messages)) from None
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if self.accept_int and whole and not isinstance(value, bool):
            return self.schema.load({"container": value})  # 80.0 is 80, as StrictInteger reads it
        if isinstance(value, dict):
            return self.schema.load(value)
        if self.accept_int:
            raise ValidationError("must be an object, a port number or an \"external:container\" string")
        raise self.make_error("invalid")


def _member_messages(messages: Any, prefix: str = "") -> list[str]:
    """``{"size": ["must be ..."]}`` -> ``["size: must be ..."]``: a member's errors as its item's own."""
    if isinstance(messages, dict):  # "_schema" holds the errors of the member itself, not of a member of it
        return [text for key, value in messages.items()
                for text in _member_messages(value, prefix if key == "_schema" else f"{prefix}.{key}" if prefix
                                             else key)]
    if isinstance(messages, (list, tuple)):
        return [text for item in messages for text in _member_messages(item, prefix)]
    return [f"{prefix}: {messages}" if prefix else str(messages)]


def _member(original: Any, key: str, index: int, member: str) -> tuple:
    """The path of ``member`` of list item ``index``; the item's own when it was given as a string."""
    items = original.get(key) if isinstance(original, dict) else None
    item = items[index] if isinstance(items, list) and index < len(items) else None
    return (key, index, member) if isinstance(item, dict) else (key, index)


def read_port_string(match: re.Match) -> dict:
    external, container = match.groups()
    if external is None:
        return {"container": int(container)}
    return {"external": int(external), "container": int(container)}


def explain_port_string(text: str) -> dict:
    parts = text.strip().split(":")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        raise ValidationError("must be \"container\" or \"external:container\" with port numbers") from None
    if len(numbers) == 1:
        return {"container": numbers[0]}
    if len(numbers) == 2:
        return {"external": numbers[0], "container": numbers[1]}
    raise ValidationError("must be \"container\" or \"external:container\"")


def read_volume_string(match: re.Match) -> dict:
    source, target, mode = match.groups()
    return {"sourcePath": source, "targetPath": target, "readOnly": mode == "ro"}


def explain_volume_string(text: str) -> dict:
    parts = text.split(":")
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        parts.pop()
    if len(parts) != 2:
        raise ValidationError("must be \"/host/path:/container/path[:ro]\"")
    return {"sourcePath": parts[0], "targetPath": parts[1]}


def read_pvc_string(match: re.Match) -> dict:
    storage_class, size, claim, path, mode = match.groups()
    item: dict = {"path": path, "readOnly": mode == "ro"}
    if claim is not None:
        item["claimName"] = claim
    else:
        item["size"] = size
        if storage_class:
            item["storageClass"] = storage_class
    return item


def explain_pvc_string(text: str) -> dict:
    parts = text.split(":")
    if parts and parts[-1] in ("ro", "rw"):
        parts.pop()
    if len(parts) == 3:
        return {"size": parts[1], "path": parts[2], **({"storageClass": parts[0]} if parts[0] else {})}
    if len(parts) == 2:
        return {"claimName": parts[0], "path": parts[1]}
    raise ValidationError("must be \"StorageClass:Size:Path[:ro]\" (new claim) or \"ClaimName:Path[:ro]\"")


PORT_FORM = StringForm(PORT_STRING, read_port_string, explain_port_string,
                       "\"container\" or \"external:container\": port numbers 1-65535")
VOLUME_FORM = StringForm(VOLUME_STRING, read_volume_string, explain_volume_string,
                         "\"/host/path:/container/path\" with an optional \":ro\" or \":rw\"")
PVC_FORM = StringForm(PVC_STRING, read_pvc_string, explain_pvc_string,
                      "\"StorageClass:Size:/path\" (a new claim; empty class = default) or \"ClaimName:/path\", "
                      "with an optional \":ro\" or \":rw\"")


# --- the job --------------------------------------------------------------------------------------


class JobSchema(Schema):
    """A job as the Run:AI Researcher REST API sends it; loads into ``JobSpec``."""

    class Meta:
        unknown = RAISE

    RULES: ClassVar[dict[str, tuple[str, ...]]] = {
        "gpu": (RULE_GPU_WHOLE,),
        "tty": (RULE_TTY,),
        "cpuLimit": (RULE_CPU_LIMIT,),
        "memoryLimit": (RULE_MEMORY_LIMIT,),
        "backoffLimit": (RULE_INTERACTIVE_BACKOFF,),
        "completions": (RULE_INTERACTIVE_COMPLETIONS,),
        "parallelism": (RULE_PARALLELISM_COMPLETIONS, RULE_PARALLELISM_ELASTIC, RULE_PARALLELISM_INTERACTIVE),
        "preemptible": (RULE_PREEMPTIBLE,),
        "serviceType": (RULE_SERVICE_PORTS,),
        "ports": (RULE_UNIQUE_CONTAINER_PORTS, RULE_UNIQUE_EXTERNAL_PORTS, RULE_NODE_PORT),
        "pvc": (RULE_UNIQUE_MOUNTS,),
        "volume": (RULE_UNIQUE_MOUNTS,),
        "volumes": (RULE_UNIQUE_MOUNTS,),
    }

    name = StrictString(allow_none=True, validate=name_rule(names.DNS1035_LABEL, MSG_DNS1035, names.MAX_LABEL),
                        metadata={"description": "the job's name (workload, container, Service, Ingress); "
                                                 "generated when absent"})
    jobNamePrefix = StrictString(
        allow_none=True, validate=name_rule(names.DNS1035_LABEL, MSG_DNS1035, names.MAX_PREFIX),
        metadata={"description": "without name: the job is named <jobNamePrefix>-<5 random characters>"},
    )
    project = StrictString(required=True, validate=name_rule(names.DNS1123_LABEL, MSG_DNS1123, names.MAX_LABEL),
                           metadata={"description": "the project; its namespace is the one labelled "
                                                    "runai/queue=<project>, else runai-<project>"})
    interactive = StrictBoolean(allow_none=True, metadata={"description": "an interactive (build) job instead of "
                                                                          "a training job"})

    image = StrictString(required=True, validate=no_whitespace, metadata={"description": "the container image"})
    command = Command(allow_none=True, metadata={"description": "the container's command"})
    arguments = fields.List(StrictString(), allow_none=True, metadata={"description": "the container's args"})
    environment = Environment(allow_none=True, metadata={
        "description": "variables of the container; numbers and booleans are written as JSON prints them"})
    imagePullPolicy = CaseInsensitiveChoice(PULL_POLICIES, allow_none=True)
    stdin = StrictBoolean(allow_none=True, metadata={"description": "keep the container's stdin open"})
    tty = StrictBoolean(allow_none=True, metadata={"description": "give the container a terminal"})
    workingDir = StrictString(allow_none=True, validate=absolute_path,
                              metadata={"description": "the container's working directory"})
    createHomeDir = StrictBoolean(allow_none=True, metadata={
        "description": "mount an empty home directory at /home/runai-home and set HOME (a given HOME wins)"})

    gpu = StrictNumber(allow_none=True, validate=[validate.Range(min=0, error="must be 0 or more"),
                                                  validate.Range(max=GPU_MAX, error=f"must be at most {GPU_MAX}")],
                       metadata={
        "description": "GPUs: a whole number, or a fraction below 1 of one GPU (annotation gpu-fraction)"})
    cpu = StrictNumber(allow_none=True, validate=validate.Range(min=0, min_inclusive=False, error="must be > 0"),
                       metadata={"description": "CPU request, in cores"})
    cpuLimit = StrictNumber(allow_none=True, validate=validate.Range(min=0, min_inclusive=False, error="must be > 0"),
                            metadata={"description": "CPU limit, in cores"})
    memory = Quantity(allow_none=True, metadata={"description": "memory request, a Kubernetes quantity (GB, MB, "
                                                                "KB, TB are read as G, M, k, T)"})
    memoryLimit = Quantity(allow_none=True, metadata={"description": "memory limit, a Kubernetes quantity"})
    largeShm = StrictBoolean(allow_none=True, metadata={"description": "a memory-backed /dev/shm"})

    pvc = fields.List(ObjectOrString(PvcSchema(), PVC_FORM), allow_none=True, metadata={
        "description": "claims to mount: objects, or the CLI's StorageClass:Size:/path[:ro] (a new claim) and "
                       "ClaimName:/path[:ro] (an existing one)"})
    volume = VolumeMap(allow_none=True, metadata={"description": "host paths to mount: host path -> container path"})
    volumes = fields.List(ObjectOrString(VolumeSchema(), VOLUME_FORM), allow_none=True,
                          metadata={"description": "host paths to mount: objects, or the CLI's "
                                                   "/host:/container[:ro]"})

    hostIpc = StrictBoolean(allow_none=True, metadata={"description": "use the node's IPC namespace"})
    hostNetwork = StrictBoolean(allow_none=True, metadata={"description": "use the node's network"})
    ports = fields.List(ObjectOrString(PortSchema(), PORT_FORM, accept_int=True),
                        allow_none=True, metadata={"description": "container ports: objects, port numbers, or the "
                                                                  "CLI's \"external:container\" strings"})
    serviceType = CaseInsensitiveChoice(SERVICE_TYPES, allow_none=True, metadata={
        "description": "expose the ports: a Service of this type; ingress adds an Ingress at /<project>-<name>"})

    backoffLimit = StrictInteger(allow_none=True, validate=validate.Range(0, INT32_MAX, error=f"must be 0 or more (at most {INT32_MAX})"),
                                 metadata={"description": "retries before the job fails"})
    completions = StrictInteger(allow_none=True, validate=validate.Range(1, INT32_MAX, error=f"must be 1 or more (at most {INT32_MAX})"),
                                metadata={"description": "successful pods the job needs"})
    parallelism = StrictInteger(allow_none=True, validate=validate.Range(1, INT32_MAX, error=f"must be 1 or more (at most {INT32_MAX})"),
                                metadata={"description": "pods running at once"})
    elastic = StrictBoolean(allow_none=True, metadata={"description": "an elastic job (pod annotation elastic)"})
    preemptible = StrictBoolean(allow_none=True, metadata={"description": "an interactive job that may be preempted"})
    ttlAfterFinish = Duration(allow_none=True, metadata={"description": "delete the job this long after it finished"})

    preventPrivilegeEscalation = StrictBoolean(allow_none=True, metadata={
        "description": "the container may not gain privileges (allowPrivilegeEscalation: false)"})
    nodeType = StrictString(allow_none=True, validate=name_rule(names.LABEL_VALUE, MSG_LABEL_VALUE, names.MAX_LABEL),
                            metadata={"description": "run on nodes labelled run.ai/type=<nodeType>"})

    # Cross-field rules run even when single fields failed, so one answer lists every problem.
    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _cross_field_rules(self, data: dict, original: dict, **kwargs: Any) -> None:
        errors: dict = {}

        def fail(path: tuple, message: str) -> None:
            node = errors
            for step in path[:-1]:
                node = node.setdefault(step, {})
            node.setdefault(path[-1], []).append(message)

        interactive = bool(data.get("interactive"))
        gpu = data.get("gpu")
        if gpu is not None and gpu > 1 and not float(gpu).is_integer():
            fail(("gpu",), RULE_GPU_WHOLE)
        if data.get("tty") and not data.get("stdin"):
            fail(("tty",), RULE_TTY)
        cpu, cpu_limit = data.get("cpu"), data.get("cpuLimit")
        if cpu is not None and cpu_limit is not None and cpu_limit < cpu:
            fail(("cpuLimit",), f"{RULE_CPU_LIMIT} ({cpu})")
        memory, memory_limit = data.get("memory"), data.get("memoryLimit")
        if memory and memory_limit and quantity_value(memory_limit) < quantity_value(memory):
            fail(("memoryLimit",), f"{RULE_MEMORY_LIMIT} ({memory})")
        if interactive and data.get("backoffLimit"):
            fail(("backoffLimit",), RULE_INTERACTIVE_BACKOFF)
        completions, parallelism = data.get("completions"), data.get("parallelism")
        if interactive and completions is not None and completions != 1:
            fail(("completions",), RULE_INTERACTIVE_COMPLETIONS)
        if parallelism is not None and parallelism > 1:
            if completions is None:
                fail(("parallelism",), RULE_PARALLELISM_COMPLETIONS)
            if data.get("elastic"):
                fail(("parallelism",), RULE_PARALLELISM_ELASTIC)
            if interactive:
                fail(("parallelism",), RULE_PARALLELISM_INTERACTIVE)
        if data.get("preemptible") and not interactive:
            fail(("preemptible",), RULE_PREEMPTIBLE)
        if data.get("serviceType") and not original.get("ports"):
            fail(("serviceType",), RULE_SERVICE_PORTS)
        self._check_ports(data.get("ports") or [], data.get("serviceType"), original, fail)
        self._check_mounts(data, original, fail)
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def _check_ports(ports: list, service_type: str | None, original: Any, fail: Any) -> None:
        seen_container: dict[int, int] = {}
        seen_external: dict[int, int] = {}
        low, high = NODE_PORT_RANGE

        def at(index: int, member: str, message: str) -> None:
            path = _member(original, "ports", index, member)
            fail(path, message if len(path) == 3 else f"{member}: {message}")

        for index, port in enumerate(ports):
            if not isinstance(port, PortSpec):
                continue  # this item failed on its own and is reported already
            if port.container in seen_container:
                at(index, "container",
                   f"{RULE_UNIQUE_CONTAINER_PORTS}: {port.container} is also at ports/{seen_container[port.container]}")
            seen_container.setdefault(port.container, index)
            if port.external is None:
                continue
            if port.external in seen_external:
                at(index, "external",
                   f"{RULE_UNIQUE_EXTERNAL_PORTS}: {port.external} is also at ports/{seen_external[port.external]}")
            seen_external.setdefault(port.external, index)
            if service_type == "nodeport" and not low <= port.external <= high:
                at(index, "external", RULE_NODE_PORT)

    @staticmethod
    def _check_mounts(data: dict, original: Any, fail: Any) -> None:
        """Every mount path of the container is unique (the API server refuses duplicates)."""
        seen: dict[str, str] = {}
        if data.get("largeShm"):
            seen[names.SHM_DIR] = "largeShm"
        if data.get("createHomeDir"):
            seen[names.HOME_DIR] = "createHomeDir"
        mounts: list[tuple[tuple, str]] = []
        for index, pvc in enumerate(data.get("pvc") or []):
            if isinstance(pvc, PvcSpec):
                mounts.append((_member(original, "pvc", index, "path"), pvc.path))
        for source, volume in (data.get("volume") or {}).items():
            mounts.append((("volume", source), volume.target_path))
        for index, volume in enumerate(data.get("volumes") or []):
            if isinstance(volume, VolumeSpec):
                mounts.append((_member(original, "volumes", index, "targetPath"), volume.target_path))
        for path, mount in mounts:
            normalized = mount.rstrip("/") or "/"
            if normalized in seen:
                fail(path, f"{RULE_UNIQUE_MOUNTS}: {mount} is already used by {seen[normalized]}")
            else:  # where, as a pointer below /job (a volume's key is a path: /data is ~1data)
                seen[normalized] = "/".join(escape_pointer(str(step)) for step in path)

    @post_load
    def _make(self, data: dict, **kwargs: Any) -> JobSpec:
        volumes = tuple((data.get("volume") or {}).values()) + tuple(data.get("volumes") or ())
        gpu = data.get("gpu") or 0
        return JobSpec(
            project=data["project"],
            image=data["image"],
            name=data.get("name"),
            job_name_prefix=data.get("jobNamePrefix"),
            interactive=bool(data.get("interactive")),
            command=data.get("command") or (),
            arguments=tuple(data.get("arguments") or ()),
            environment=data.get("environment") or (),
            image_pull_policy=data.get("imagePullPolicy") or "Always",
            stdin=bool(data.get("stdin")),
            tty=bool(data.get("tty")),
            working_dir=data.get("workingDir"),
            create_home_dir=bool(data.get("createHomeDir")),
            gpu=int(gpu) if float(gpu).is_integer() else gpu,
            cpu=data.get("cpu"),
            cpu_limit=data.get("cpuLimit"),
            memory=data.get("memory"),
            memory_limit=data.get("memoryLimit"),
            large_shm=bool(data.get("largeShm")),
            pvcs=tuple(data.get("pvc") or ()),
            volumes=volumes,
            host_ipc=bool(data.get("hostIpc")),
            host_network=bool(data.get("hostNetwork")),
            ports=tuple(data.get("ports") or ()),
            service_type=data.get("serviceType"),
            backoff_limit=data.get("backoffLimit"),
            completions=data.get("completions"),
            parallelism=data.get("parallelism"),
            elastic=bool(data.get("elastic")),
            preemptible=bool(data.get("preemptible")),
            ttl_after_finish=data.get("ttlAfterFinish"),
            prevent_privilege_escalation=bool(data.get("preventPrivilegeEscalation")),
            node_type=data.get("nodeType"),
        )


_JOB_SCHEMA = JobSchema()

# --- issue 13: a JobSchema per set of fields a job has -------------------------------------------------
# marshmallow walks every declared field on every load, present or not (about 45 here, where a job names a
# dozen). A schema limited with ``only`` to the fields present, plus the required ones, loads the same job to
# the same JobSpec with the same errors: absent fields have no default (no load_default) and the cross-field
# rules read them with data.get; a key that is not a field is still unknown. Clients send the same shape of job
# again and again, so the schemas are kept, up to a bound (a schema is about 40 µs to build).
_FIELD_ORDER = tuple(JobSchema._declared_fields)
_REQUIRED = frozenset(name for name, field in JobSchema._declared_fields.items() if field.required)
_SCHEMAS_BY_FIELDS: dict[frozenset, JobSchema] = {}
_MAX_SCHEMAS = 256


def _schema_for(job: dict) -> JobSchema:
    present = frozenset(job)
    schema = _SCHEMAS_BY_FIELDS.get(present)
    if schema is None:
        schema = JobSchema(only=tuple(name for name in _FIELD_ORDER if name in present or name in _REQUIRED))
        if len(_SCHEMAS_BY_FIELDS) < _MAX_SCHEMAS:
            _SCHEMAS_BY_FIELDS[present] = schema
    return schema


def load_submit_request(payload: Any) -> JobSpec:
    """``{"job": {...}}`` -> JobSpec, or BadRequest (wrong shape) / ValidationFailed (every field error)."""
    job, problems = job_of_request(payload)
    spec, job_problems = load_job(job)
    problems.extend(job_problems)
    if problems:
        raise validation_failed(problems)
    return spec


def job_of_request(payload: Any) -> tuple[dict, list[FieldError]]:
    """The ``job`` object of a submit body, and the body's other (unknown) keys as problems.

    A body that is not ``{"job": {...}}`` at all is a BadRequest, raised here.
    """
    if not isinstance(payload, dict):
        raise BadRequest("The request body must be a JSON object such as {\"job\": {...}}.")
    if "job" not in payload:
        raise BadRequest("The request body has no \"job\" object.", errors=[FieldError("/job", "is required")])
    if not isinstance(payload["job"], dict):
        raise BadRequest("\"job\" must be a JSON object.", errors=[FieldError("/job", "must be an object")])
    problems = [
        FieldError(f"/{escape_pointer(key)}", "unknown field (the body holds only \"job\")")
        for key in payload
        if key != "job"
    ]
    return payload["job"], problems


def load_job(job: dict) -> tuple[JobSpec | None, list[FieldError]]:
    """A job object -> (JobSpec, []) or (None, every field error with its pointer under /job)."""
    try:
        return _schema_for(job).load(job), []
    except ValidationError as exc:
        return None, flatten_errors(exc.messages, "/job")


def validation_failed(problems: list[FieldError]) -> ValidationFailed:
    """The 422 of a job with ``problems``: a count, every problem in ``details``, and the field errors."""
    summary = "; ".join(f"{problem.field}: {problem.message}" for problem in problems)
    count = len(problems)
    return ValidationFailed(
        f"The job is not valid ({count} problem{'s' if count > 1 else ''}).", details=summary, errors=problems
    )


# --- the other bodies of the API: request of DELETE, and every answer (for the OpenAPI document) ----


class SubmitRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    job = fields.Nested(JobSchema, required=True)


class JobRefSchema(Schema):
    """One item of ``DELETE /api/job``."""

    class Meta:
        unknown = RAISE

    name = StrictString(required=True, validate=name_rule(names.DNS1123_SUBDOMAIN, MSG_SUBDOMAIN, names.MAX_SUBDOMAIN))
    project = StrictString(required=True, validate=name_rule(names.DNS1123_LABEL, MSG_DNS1123, names.MAX_LABEL))



_JOB_REF_SCHEMA = JobRefSchema()


def load_job_ref(item: Any) -> tuple[str, str]:
    """One ``{name, project}`` of a delete request, or ValidationFailed naming what is wrong."""
    if not isinstance(item, dict):
        raise ValidationFailed("Each item must be an object {\"name\": ..., \"project\": ...}.",
                               errors=[FieldError("/", "must be an object")])
    try:
        data = _JOB_REF_SCHEMA.load(item)
    except ValidationError as exc:
        problems = flatten_errors(exc.messages)
        raise ValidationFailed("The item is not valid.", details="; ".join(
            f"{p.field}: {p.message}" for p in problems), errors=problems) from None
    return data["project"], data["name"]


def load_job_refs(items: list) -> list[tuple[str, str]]:
    """Every ``(project, name)`` of a delete request's array, or one ValidationFailed naming each bad item
    (``/2/name``): a malformed request deletes nothing."""
    refs: list[tuple[str, str]] = []
    problems: list[FieldError] = []
    for index, item in enumerate(items):
        try:
            refs.append(load_job_ref(item))
        except ValidationFailed as exc:
            problems.extend(FieldError(f"/{index}{error.field.rstrip('/')}", error.message) for error in exc.errors)
    if problems:
        count = len({problem.field.split("/")[1] for problem in problems})
        raise ValidationFailed(f"{count} item{'s' if count > 1 else ''} of the request {'are' if count > 1 else 'is'} "
                               "not {\"name\": ..., \"project\": ...}; nothing was deleted.",
                               details="; ".join(f"{p.field}: {p.message}" for p in problems), errors=problems)
    return refs
