"""The job request: every rule of the contract's parameter table (§2, §3), loading into ``JobSpec``.

Errors of all fields are collected at once (schema validators run even when a field failed) and flattened
to JSON pointers by ``flatten_errors``.
"""
from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from ..errors import BadRequest, FieldError, ValidationFailed
from ..model import JobSpec, PortSpec, PvcSpec, VolumeSpec
from ..render import names
from .fields import (
    INT32_MAX,
    MSG_DNS1035,
    MSG_DNS1123,
    MSG_LABEL_VALUE,
    MSG_SUBDOMAIN,
    NODE_PORT_RANGE,
    PULL_POLICIES,
    SERVICE_TYPES,
    CaseInsensitiveChoice,
    Command,
    Duration,
    Environment,
    Quantity,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    StrictString,
    absolute_path,
    escape_pointer,
    name_rule,
    no_whitespace,
    flatten_errors,
)
from ..units import quantity_value

# --- nested objects, each also accepted in the CLI's string form -----------------------------------


class PortSchema(Schema):
    class Meta:
        unknown = RAISE

    container = StrictInteger(required=True, validate=validate.Range(1, 65535, error="must be between 1 and 65535"))
    external = StrictInteger(allow_none=True, validate=validate.Range(1, 65535, error="must be between 1 and 65535"))
    autoGenerate = StrictBoolean(allow_none=True)

    @validates_schema(skip_on_field_errors=True)
    def _external_or_generated(self, data: dict, **kwargs: Any) -> None:
        if data.get("autoGenerate") and data.get("external") is not None:
            raise ValidationError("autoGenerate picks the external port: leave external out", "autoGenerate")

    @post_load
    def _make(self, data: dict, **kwargs: Any) -> PortSpec:
        return PortSpec(data["container"], data.get("external"), bool(data.get("autoGenerate")))


class PvcSchema(Schema):
    class Meta:
        unknown = RAISE

    path = StrictString(required=True, validate=absolute_path)
    readOnly = StrictBoolean(allow_none=True)
    size = Quantity(allow_none=True)
    storageClass = StrictString(
        allow_none=True, validate=name_rule(names.DNS1123_SUBDOMAIN, MSG_SUBDOMAIN, names.MAX_SUBDOMAIN)
    )
    claimName = StrictString(
        allow_none=True, validate=name_rule(names.DNS1123_SUBDOMAIN, MSG_SUBDOMAIN, names.MAX_SUBDOMAIN)
    )

    @validates_schema(skip_on_field_errors=True)
    def _new_or_existing(self, data: dict, **kwargs: Any) -> None:
        claim, size = data.get("claimName"), data.get("size")
        if claim and size:
            raise ValidationError("give size (a new claim) or claimName (an existing claim), not both", "claimName")
        if claim and data.get("storageClass"):
            raise ValidationError("an existing claim already has its storage class", "storageClass")
        if not claim and not size:
            raise ValidationError("size is required for a new claim (or give claimName)", "size")

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

    sourcePath = StrictString(required=True, validate=absolute_path)
    targetPath = StrictString(required=True, validate=absolute_path)
    readOnly = StrictBoolean(allow_none=True)

    @post_load
    def _make(self, data: dict, **kwargs: Any) -> VolumeSpec:
        return VolumeSpec(data["sourcePath"], data["targetPath"], bool(data.get("readOnly")))


class VolumeMap(fields.Field):
    """The seed page's ``{"/host/path": "/container/path"}``; errors point at the host path's key."""

    default_error_messages = {"invalid": "must be an object of host paths to container paths"}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> dict:
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        volumes: dict[str, VolumeSpec] = {}
        errors: dict[str, list[str]] = {}
        for source, target in value.items():
            problems = []
            if not source.startswith("/"):
                problems.append(f"host path {source!r} must be absolute")
            if not isinstance(target, str):
                problems.append("the container path must be a string")
            elif not target.startswith("/"):
                problems.append(f"container path {target!r} must be an absolute path")
            if problems:
                errors[source] = problems
            else:
                volumes[source] = VolumeSpec(source, target)
        if errors:
            raise ValidationError(errors)
        return volumes


class ObjectOrString(fields.Field):
    """A list item given as an object (loaded by ``schema``) or as the CLI's string (parsed by ``parse``)."""

    default_error_messages = {"invalid": "must be an object or a string"}

    def __init__(self, schema: Schema, parse: Any, accept_int: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schema = schema
        self.parse = parse
        self.accept_int = accept_int

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return self.schema.load(self.parse(value))
        if self.accept_int and isinstance(value, int) and not isinstance(value, bool):
            return self.schema.load({"container": value})
        if isinstance(value, dict):
            return self.schema.load(value)
        if self.accept_int:
            raise ValidationError("must be an object, a port number or an \"external:container\" string")
        raise self.make_error("invalid")


def parse_port_string(text: str) -> dict:
    """The CLI's ``"external:container"`` or ``"container"``."""
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


def parse_volume_string(text: str) -> dict:
    """The CLI's ``/host/path:/container/path[:ro]``."""
    parts = text.split(":")
    read_only = False
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        read_only = parts.pop() == "ro"
    if len(parts) != 2:
        raise ValidationError("must be \"/host/path:/container/path[:ro]\"")
    return {"sourcePath": parts[0], "targetPath": parts[1], "readOnly": read_only}


def parse_pvc_string(text: str) -> dict:
    """The CLI's ``StorageClass:Size:Path[:ro]`` (new claim; empty class = default) or ``Claim:Path[:ro]``."""
    parts = text.split(":")
    read_only = False
    if parts and parts[-1] in ("ro", "rw"):
        read_only = parts.pop() == "ro"
    if len(parts) == 3:
        storage_class, size, path = parts
        item: dict = {"size": size, "path": path}
        if storage_class:
            item["storageClass"] = storage_class
    elif len(parts) == 2:
        item = {"claimName": parts[0], "path": parts[1]}
    else:
        raise ValidationError("must be \"StorageClass:Size:Path[:ro]\" (new claim) or \"ClaimName:Path[:ro]\"")
    item["readOnly"] = read_only
    return item


# --- the job --------------------------------------------------------------------------------------


class JobSchema(Schema):
    """A job as the Run:AI Researcher REST API sends it; loads into ``JobSpec``."""

    class Meta:
        unknown = RAISE

    name = StrictString(allow_none=True, validate=name_rule(names.DNS1035_LABEL, MSG_DNS1035, names.MAX_LABEL))
    jobNamePrefix = StrictString(
        allow_none=True, validate=name_rule(names.DNS1035_LABEL, MSG_DNS1035, names.MAX_PREFIX)
    )
    project = StrictString(required=True, validate=name_rule(names.DNS1123_LABEL, MSG_DNS1123, names.MAX_LABEL))
    interactive = StrictBoolean(allow_none=True)

    image = StrictString(required=True, validate=no_whitespace)
    command = Command(allow_none=True)
    arguments = fields.List(StrictString(), allow_none=True)
    environment = Environment(allow_none=True)
    imagePullPolicy = CaseInsensitiveChoice(PULL_POLICIES, allow_none=True)
    stdin = StrictBoolean(allow_none=True)
    tty = StrictBoolean(allow_none=True)
    workingDir = StrictString(allow_none=True, validate=absolute_path)
    createHomeDir = StrictBoolean(allow_none=True)

    gpu = StrictNumber(allow_none=True)
    cpu = StrictNumber(allow_none=True, validate=validate.Range(min=0, min_inclusive=False, error="must be > 0"))
    cpuLimit = StrictNumber(allow_none=True, validate=validate.Range(min=0, min_inclusive=False, error="must be > 0"))
    memory = Quantity(allow_none=True)
    memoryLimit = Quantity(allow_none=True)
    largeShm = StrictBoolean(allow_none=True)

    pvc = fields.List(ObjectOrString(PvcSchema(), parse_pvc_string), allow_none=True)
    volume = VolumeMap(allow_none=True)
    volumes = fields.List(ObjectOrString(VolumeSchema(), parse_volume_string), allow_none=True)

    hostIpc = StrictBoolean(allow_none=True)
    hostNetwork = StrictBoolean(allow_none=True)
    ports = fields.List(ObjectOrString(PortSchema(), parse_port_string, accept_int=True), allow_none=True)
    serviceType = CaseInsensitiveChoice(SERVICE_TYPES, allow_none=True)

    backoffLimit = StrictInteger(allow_none=True, validate=validate.Range(0, INT32_MAX, error=f"must be 0 or more (at most {INT32_MAX})"))
    completions = StrictInteger(allow_none=True, validate=validate.Range(1, INT32_MAX, error=f"must be 1 or more (at most {INT32_MAX})"))
    parallelism = StrictInteger(allow_none=True, validate=validate.Range(1, INT32_MAX, error=f"must be 1 or more (at most {INT32_MAX})"))
    elastic = StrictBoolean(allow_none=True)
    preemptible = StrictBoolean(allow_none=True)
    ttlAfterFinish = Duration(allow_none=True)

    preventPrivilegeEscalation = StrictBoolean(allow_none=True)
    nodeType = StrictString(allow_none=True, validate=name_rule(names.LABEL_VALUE, MSG_LABEL_VALUE, names.MAX_LABEL))

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
        if gpu is not None:
            if gpu < 0:
                fail(("gpu",), "must be 0 or more")
            elif gpu > 1 and not float(gpu).is_integer():
                fail(("gpu",), "must be a whole number when more than 1 (fractions are for less than one GPU)")
        if data.get("tty") and not data.get("stdin"):
            fail(("tty",), "needs stdin: true")
        cpu, cpu_limit = data.get("cpu"), data.get("cpuLimit")
        if cpu is not None and cpu_limit is not None and cpu_limit < cpu:
            fail(("cpuLimit",), f"must be at least cpu ({cpu})")
        memory, memory_limit = data.get("memory"), data.get("memoryLimit")
        if memory and memory_limit and quantity_value(memory_limit) < quantity_value(memory):
            fail(("memoryLimit",), f"must be at least memory ({memory})")
        if interactive and data.get("backoffLimit"):
            fail(("backoffLimit",), "must be 0 for an interactive job (it is never retried)")
        completions, parallelism = data.get("completions"), data.get("parallelism")
        if interactive and completions is not None and completions != 1:
            fail(("completions",), "must be 1 for an interactive job")
        if parallelism is not None and parallelism > 1:
            if completions is None:
                fail(("parallelism",), "needs completions when more than 1")
            if data.get("elastic"):
                fail(("parallelism",), "cannot be more than 1 for an elastic job")
            if interactive:
                fail(("parallelism",), "cannot be more than 1 for an interactive job")
        if data.get("preemptible") and not interactive:
            fail(("preemptible",), "applies to interactive jobs only (training jobs are always preemptible)")
        if data.get("serviceType") and not original.get("ports"):
            fail(("serviceType",), "needs ports")
        self._check_ports(data.get("ports") or [], data.get("serviceType"), fail)
        self._check_mounts(data, fail)
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def _check_ports(ports: list, service_type: str | None, fail: Any) -> None:
        seen_container: dict[int, int] = {}
        seen_external: dict[int, int] = {}
        low, high = NODE_PORT_RANGE
        for index, port in enumerate(ports):
            if not isinstance(port, PortSpec):
                continue  # this item failed on its own and is reported already
            if port.container in seen_container:
                fail(("ports", index, "container"),
                     f"container port {port.container} is already listed at ports/{seen_container[port.container]}")
            seen_container.setdefault(port.container, index)
            if port.external is None:
                continue
            if port.external in seen_external:
                fail(("ports", index, "external"),
                     f"external port {port.external} is already listed at ports/{seen_external[port.external]}")
            seen_external.setdefault(port.external, index)
            if service_type == "nodeport" and not low <= port.external <= high:
                fail(("ports", index, "external"), f"must be a node port in {low}-{high} for serviceType nodeport")

    @staticmethod
    def _check_mounts(data: dict, fail: Any) -> None:
        """Every mount path of the container is unique (the API server refuses duplicates)."""
        seen: dict[str, str] = {}
        if data.get("largeShm"):
            seen[names.SHM_DIR] = "largeShm"
        if data.get("createHomeDir"):
            seen[names.HOME_DIR] = "createHomeDir"
        mounts: list[tuple[tuple, str]] = []
        for index, pvc in enumerate(data.get("pvc") or []):
            if isinstance(pvc, PvcSpec):
                mounts.append((("pvc", index, "path"), pvc.path))
        for source, volume in (data.get("volume") or {}).items():
            mounts.append((("volume", source), volume.target_path))
        for index, volume in enumerate(data.get("volumes") or []):
            if isinstance(volume, VolumeSpec):
                mounts.append((("volumes", index, "targetPath"), volume.target_path))
        for path, mount in mounts:
            normalized = mount.rstrip("/") or "/"
            if normalized in seen:
                fail(path, f"mount path {mount} is already used by {seen[normalized]}")
            else:
                seen[normalized] = "/".join(str(step) for step in path)

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
        return _JOB_SCHEMA.load(job), []
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
