"""Admin policy, pure: defaults and per-field rules at cluster and project scope, applied to a raw job.

A policy has ``defaults`` (values for fields a job leaves out) and ``rules`` (``required``, ``canEdit``,
``min``, ``max``, ``options``, ``prefixes``) per job field; nested fields of list items are named with a
dot (``pvc.size``). A project's rule for a field replaces the cluster-wide rule for that field; a
project's defaults override the cluster's (``Policy.effective``).

Applying it to a job happens in two steps around the job schema, so that the schema judges the job
*with* its defaults and every error keeps a natural JSON pointer:

1. ``apply_defaults`` (before the schema): ``required`` and ``canEdit`` judge what the caller gave;
   defaults fill in what it left out.
2. ``check_values`` (on the same merged job): ``min``, ``max``, ``options`` and ``prefixes`` judge the
   values, normalised by the job's own field types (``3GB`` is ``3G``, ``1h`` is 3600 s).

The field types come from the job schema itself, so a rule on a field is checked exactly as the field is.
No I/O here: the file is read by ``service.policy.PolicyStore`` and validated by ``schemas.policy``.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError
from marshmallow import fields as ma_fields

from .errors import FieldError
from .model import PortSpec, PvcSpec, VolumeSpec
from .schemas.fields import (
    CaseInsensitiveChoice,
    Duration,
    Quantity,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    StrictString,
    escape_pointer,
)
from .schemas.job import JobSchema, PortSchema, PvcSchema, VolumeSchema
from .units import quantity_value

# --- the job's fields, as rules see them ------------------------------------------------------------

NUMBER, INTEGER, QUANTITY, DURATION, STRING, CHOICE, BOOLEAN, OTHER = (
    "number", "integer", "quantity", "duration", "string", "choice", "boolean", "other")
ORDERED = (NUMBER, INTEGER, QUANTITY, DURATION)       # kinds that take min and max
TEXT = (STRING, CHOICE)                               # kinds that take prefixes
DESCRIBED = {NUMBER: "a number", INTEGER: "a whole number", QUANTITY: "a quantity", DURATION: "a duration",
             STRING: "a string", CHOICE: "a string", BOOLEAN: "a boolean", OTHER: "a list or map"}

# `volume` (a map) and `volumes` (a list) are two spellings of the same thing: host path volumes.
# Rules and defaults name the pair by `volume`; a job giving either one has given it.
ALIASES = {"volumes": "volume"}
GROUPS = {"volume": ("volume", "volumes")}
# A default never names the job or its project.
NO_DEFAULT = ("name", "project")
# Fields whose item schema nested rules (`pvc.size`) reach into.
ITEM_SCHEMAS: dict[str, Schema] = {"pvc": PvcSchema(), "volume": VolumeSchema(), "ports": PortSchema()}
# The model attribute of each nested wire name, and which items a nested field applies to.
ITEM_ATTRIBUTES = {
    "pvc": {"path": "path", "readOnly": "read_only", "size": "size", "storageClass": "storage_class",
            "claimName": "claim_name"},
    "volume": {"sourcePath": "source_path", "targetPath": "target_path", "readOnly": "read_only"},
    "ports": {"container": "container", "external": "external", "autoGenerate": "auto_generate"},
}
NEW_CLAIM_ONLY = ("pvc.size", "pvc.storageClass")  # an existing claim has neither

# min/max wording where a bare number would be unclear; the issue's own example reads
# "at most 4 GPUs per job in project team-b (policy)".
NOUNS = {"gpu": ("GPU per job", "GPUs per job"), "cpu": ("CPU", "CPUs"), "cpuLimit": ("CPU", "CPUs"),
         "completions": ("completion", "completions"), "parallelism": ("pod at once", "pods at once"),
         "backoffLimit": ("retry", "retries")}

_JOB_SCHEMA = JobSchema()


def kind_of_field(schema_field: ma_fields.Field) -> str:
    """The rule kind of a schema field, from its type (the order matters: subclasses first)."""
    for field_type, kind in ((Quantity, QUANTITY), (CaseInsensitiveChoice, CHOICE), (StrictString, STRING),
                             (Duration, DURATION), (StrictInteger, INTEGER), (StrictNumber, NUMBER),
                             (StrictBoolean, BOOLEAN)):
        if isinstance(schema_field, field_type):
            return kind
    return OTHER


@dataclass(frozen=True)
class FieldInfo:
    """One field a rule can name: its kind and how to turn a JSON value into a comparable one."""

    name: str
    kind: str
    schema_field: ma_fields.Field
    parent: str | None = None  # "pvc" for "pvc.size"

    def load(self, value: Any) -> Any:
        """The field's value as the job schema loads it; raises ValidationError like the schema would."""
        return self.schema_field.deserialize(value)

    def comparable(self, loaded: Any) -> Any:
        """A value that compares the way the field means it: quantities by amount, choices canonically."""
        if self.kind == QUANTITY:
            return quantity_value(loaded)
        if self.kind in (NUMBER, INTEGER):
            return Decimal(repr(loaded)) if isinstance(loaded, float) else Decimal(loaded)
        return loaded


def _field_table() -> dict[str, FieldInfo]:
    table = {name: FieldInfo(name, kind_of_field(f), f)
             for name, f in _JOB_SCHEMA.fields.items() if name not in ALIASES}
    for parent, item_schema in ITEM_SCHEMAS.items():
        for name, f in item_schema.fields.items():
            dotted = f"{parent}.{name}"
            table[dotted] = FieldInfo(dotted, kind_of_field(f), f, parent)
    return table


FIELDS = _field_table()


def canonical(name: str) -> str:
    """``volumes`` -> ``volume``, ``volumes.sourcePath`` -> ``volume.sourcePath``; others unchanged."""
    head, dot, rest = name.partition(".")
    return ALIASES.get(head, head) + dot + rest


# --- the policy ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """The rule of one field. Bounds and options are comparable values; ``source`` is the rule as written."""

    required: bool = False
    can_edit: bool = True
    min: Any = None
    max: Any = None
    options: tuple | None = None
    prefixes: tuple[str, ...] | None = None
    source: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Scope:
    """The defaults (keyed by wire name, as written) and rules (keyed by canonical name) of one scope."""

    defaults: dict[str, Any] = field(default_factory=dict)
    rules: dict[str, Rule] = field(default_factory=dict)


@dataclass(frozen=True)
class EffectivePolicy:
    """What applies in one project: merged defaults and rules, and where each rule came from."""

    project: str | None
    defaults: dict[str, Any]
    rules: dict[str, Rule]
    project_rules: frozenset[str] = frozenset()  # fields whose rule is the project's own

    def scope_words(self, name: str) -> tuple[str, str]:
        """("in project team-b", "policy") for a cluster-wide rule; ("...", "project policy") for a project's."""
        where = f"in project {self.project}" if self.project else "cluster-wide"
        return where, "project policy" if name in self.project_rules else "policy"

    def to_dict(self) -> dict:
        """The merged policy as the effective-policy endpoint answers it: rules and defaults as written."""
        return {"project": self.project, "defaults": copy.deepcopy(self.defaults),
                "rules": {name: copy.deepcopy(rule.source) for name, rule in self.rules.items()}}


@dataclass(frozen=True)
class Policy:
    """The whole policy file: a cluster-wide scope and project scopes."""

    cluster: Scope = field(default_factory=Scope)
    projects: dict[str, Scope] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.cluster.defaults or self.cluster.rules or self.projects)

    def effective(self, project: str | None) -> EffectivePolicy:
        """The project's rules replace the cluster's field by field; its defaults override the cluster's."""
        own = self.projects.get(project or "") or Scope()
        overridden = {canonical(name) for name in own.defaults}  # a project's `volumes` replaces `volume`
        defaults = {name: value for name, value in self.cluster.defaults.items() if canonical(name) not in overridden}
        defaults.update(own.defaults)
        return EffectivePolicy(project, defaults, {**self.cluster.rules, **own.rules}, frozenset(own.rules))


NO_POLICY = Policy()


# --- step 1, before the schema: required, canEdit and defaults ---------------------------------------


@dataclass
class Applied:
    """The job with defaults filled in, the fields they filled, and what the caller was not allowed."""

    job: dict
    defaulted: list[str]
    errors: list[FieldError]


def given(job: dict, name: str) -> list[str]:
    """The wire names under which ``job`` gives the (canonical, top-level) field ``name``."""
    return [wire for wire in GROUPS.get(name, (name,)) if job.get(wire) is not None]


def default_applies(name: str, job: dict) -> bool:
    """A default fills a field only where the field means something for this job (contract §3).

    Interactive jobs are never retried and run once, so retry and completion defaults are for training
    jobs; ``preemptible`` is for interactive ones; a service type needs ports; ``tty`` needs ``stdin``.
    """
    interactive = job.get("interactive") is True
    if name in ("backoffLimit", "completions", "parallelism"):
        return not interactive
    if name == "preemptible":
        return interactive
    if name == "serviceType":
        return bool(job.get("ports"))
    if name == "tty":
        return job.get("stdin") is True
    return True


def default_of(name: str, defaults: dict[str, Any]) -> str | None:
    """The wire name under which ``defaults`` hold a default for the canonical field ``name``."""
    return next((wire for wire in GROUPS.get(name, (name,)) if wire in defaults), None)


def apply_defaults(job: dict, policy: EffectivePolicy) -> Applied:
    """Judge what the caller gave (required, canEdit) and fill in defaults; ``job`` is not changed."""
    merged = dict(job)
    errors: list[FieldError] = []
    for name, rule in policy.rules.items():
        if "." in name or not (rule.required or not rule.can_edit):
            continue
        where, scope = policy.scope_words(name)
        wires = given(job, name)
        if rule.required and not wires:
            errors.append(FieldError(f"/job/{name}", f"is required {where} ({scope})"))
        if not rule.can_edit:
            imposed = default_of(name, policy.defaults)
            for wire in wires:
                if not _same_as_unset(wire, job[wire], imposed, policy.defaults):
                    sets = f": the policy sets it to {_show(policy.defaults[imposed])}" if imposed else ""
                    errors.append(FieldError(f"/job/{wire}", f"may not be set {where}{sets} ({scope})"))
                    del merged[wire]  # judged: the other checks see the value the policy imposes
    missing = {wire: value for wire, value in policy.defaults.items() if not given(merged, canonical(wire))}
    # Whether a default means something is judged against the job with every missing default filled in,
    # so the order of the defaults in the file does not matter (interactive: true and backoffLimit: 3).
    context = {**merged, **missing}
    defaulted = [wire for wire in missing if default_applies(wire, context)]
    merged.update({wire: copy.deepcopy(missing[wire]) for wire in defaulted})
    return Applied(merged, defaulted, errors)


def _same_as_unset(wire: str, value: Any, imposed: str | None, defaults: dict[str, Any]) -> bool:
    """True when a value the job may not set equals what applies anyway (the default, or nothing at all).

    Clients that send every field (``hostNetwork: false``) are not refused for repeating the policy.
    """
    if imposed is None:
        return value is False or value in ([], {}, "")
    if wire != imposed:
        return False  # the other spelling of an aliased field: a different shape, so not the same value
    try:
        return comparable_value(wire, value) == comparable_value(wire, defaults[imposed])
    except ValidationError:
        return False


def comparable_value(wire: str, value: Any) -> Any:
    """A job field's JSON value, loaded by the job schema's field and made comparable."""
    loaded = _JOB_SCHEMA.fields[wire].deserialize(value)
    info = FIELDS[canonical(wire)]
    return info.comparable(loaded) if info.kind != OTHER else loaded


# --- step 2, on the merged job: min, max, options, prefixes (and the rules of nested fields) ---------


def check_values(job: dict, policy: EffectivePolicy) -> list[FieldError]:
    """Every value rule the merged ``job`` breaks. Values the schema refuses are left to the schema."""
    errors: list[FieldError] = []
    for name, rule in policy.rules.items():
        info = FIELDS[name]
        if info.parent is not None:
            errors.extend(_check_items(job, info, rule, policy))
            continue
        for wire in given(job, name):
            try:
                loaded = _JOB_SCHEMA.fields[wire].deserialize(job[wire])
            except ValidationError:
                continue
            message = _value_problem(info, rule, loaded, policy)
            if message:
                errors.append(FieldError(f"/job/{wire}", message))
    return errors


def _check_items(job: dict, info: FieldInfo, rule: Rule, policy: EffectivePolicy) -> list[FieldError]:
    """A nested rule (``pvc.size``) judges each item of the list (or map) that holds the field."""
    errors = []
    where, scope = policy.scope_words(info.name)
    attribute = ITEM_ATTRIBUTES[info.parent][info.name.partition(".")[2]]
    for pointer, raw, item in _items(job, info.parent):
        if info.name in NEW_CLAIM_ONLY and not item.is_new:
            continue
        value = getattr(item, attribute)
        # A string item ("fast:10Gi:/data") has no member to point at: point at the item itself.
        at = pointer if not isinstance(raw, dict) else f"{pointer}/{escape_pointer(info.name.partition('.')[2])}"
        present = value is not None and value is not False
        if rule.required and not present:
            errors.append(FieldError(at, f"is required {where} ({scope})"))
        if not rule.can_edit and present:
            errors.append(FieldError(at, f"may not be set {where} ({scope})"))
        if present:
            message = _value_problem(info, rule, value, policy)
            if message:
                errors.append(FieldError(at, message))
    return errors


def _items(job: dict, parent: str) -> list[tuple[str, Any, Any]]:
    """(pointer, raw item, loaded item) of each well-formed item of ``parent`` (pvc, volume(s), ports)."""
    found: list[tuple[str, Any, Any]] = []
    for wire in GROUPS.get(parent, (parent,)):
        raw = job.get(wire)
        if raw is None:
            continue
        try:
            loaded = _JOB_SCHEMA.fields[wire].deserialize(raw)
        except ValidationError as exc:
            loaded = exc.valid_data if isinstance(exc.valid_data, (list, dict)) else None
            if loaded is None:
                continue  # the schema reports it
        if isinstance(raw, dict) and isinstance(loaded, dict):  # the volume map: host path -> item
            found += [(f"/job/{wire}/{escape_pointer(key)}", raw[key], item)
                      for key, item in loaded.items() if isinstance(item, VolumeSpec)]
        elif isinstance(raw, list) and isinstance(loaded, list) and len(loaded) == len(raw):
            found += [(f"/job/{wire}/{index}", raw[index], item) for index, item in enumerate(loaded)
                      if isinstance(item, (PvcSpec, VolumeSpec, PortSpec))]
    return found


def _value_problem(info: FieldInfo, rule: Rule, loaded: Any, policy: EffectivePolicy) -> str | None:
    """The message for the first value rule ``loaded`` breaks, naming the rule and its scope."""
    where, scope = policy.scope_words(info.name)
    source = rule.source
    nouns = NOUNS.get(info.name)

    def amount(key: str) -> str:
        shown = _show(source[key])
        return f"{shown} {nouns[0] if shown == '1' else nouns[1]}" if nouns else shown

    if info.kind in ORDERED:
        value = info.comparable(loaded)
        if rule.min is not None and value < rule.min:
            return f"at least {amount('min')} {where} ({scope})"
        if rule.max is not None and value > rule.max:
            return f"at most {amount('max')} {where} ({scope})"
    if rule.options is not None and info.comparable(loaded) not in rule.options:
        return f"must be one of {', '.join(_show(option) for option in source['options'])} {where} ({scope})"
    if rule.prefixes is not None and not any(str(loaded).startswith(prefix) for prefix in rule.prefixes):
        return f"must start with one of {', '.join(rule.prefixes)} {where} ({scope})"
    return None


def _show(value: Any) -> str:
    """A policy value as a person reads it: true, 4, 1Gi, 7d (not Python's True or '1Gi')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
