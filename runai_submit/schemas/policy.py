"""The admin policy file (YAML), validated with the same care as a job: every problem, each with a pointer.

    defaults: {cpu: 0.5, memory: 1Gi}          # job fields and values, checked by the job's own field types
    rules:                                      # per job field (nested: pvc.size)
      gpu: {max: 4}
      image: {prefixes: ["nvcr.io/"]}
      hostNetwork: {canEdit: false}
    projects:
      team-a: {rules: {gpu: {max: 8}}, defaults: {}}

Loads into ``policy.Policy``. A rule must suit its field (``max`` on a boolean is a mistake, not a no-op),
and every default must satisfy the rules of every scope it applies in.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..errors import FieldError
from ..policy import (
    DESCRIBED,
    FIELDS,
    NO_DEFAULT,
    NO_POLICY,
    ORDERED,
    OTHER,
    TEXT,
    Policy,
    Rule,
    Scope,
    canonical,
    check_values,
)
from ..render import names
from .fields import MSG_DNS1123, StrictBoolean, StrictString, escape_pointer, flatten_errors
from .job import JobSchema

_JOB_FIELDS = JobSchema().fields


class PolicyInvalid(Exception):
    """The policy file cannot be used; ``problems`` lists every reason, each "pointer: message"."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


_MAP = "must be a map of job field names"


class RuleSchema(Schema):
    """One field's rule. Which keys suit which field is checked after loading (it depends on the field)."""

    class Meta:
        unknown = RAISE

    error_messages = {"type": "must be a map of rule keys: required, canEdit, min, max, options, prefixes",
                      "unknown": "is not a rule key (required, canEdit, min, max, options, prefixes)"}

    required = StrictBoolean()
    canEdit = StrictBoolean()
    min = fields.Raw(metadata={"description": "number, quantity or duration"})
    max = fields.Raw(metadata={"description": "number, quantity or duration"})
    options = fields.List(fields.Raw(), error_messages={"invalid": "must be a list"},
                          metadata={"description": "the allowed values"})
    prefixes = fields.List(StrictString(validate=validate.Length(min=1, error="must not be empty")),
                           error_messages={"invalid": "must be a list"},
                           metadata={"description": "a string value must start with one of these"})


class ScopeSchema(Schema):
    """Defaults and rules of one scope: the cluster, or one project."""

    class Meta:
        unknown = RAISE

    error_messages = {"type": "must be a map with defaults and rules",
                      "unknown": "is not a key of a project's policy (it has defaults and rules)"}

    # Keys are judged by _defaults and _rules (is it a job field?), so the schema checks only the values.
    defaults = fields.Dict(values=fields.Raw(allow_none=True), allow_none=True, error_messages={"invalid": _MAP},
                           metadata={"description": "values for job fields the job leaves out"})
    rules = fields.Dict(values=fields.Nested(RuleSchema, allow_none=True), allow_none=True,
                        error_messages={"invalid": _MAP},
                        metadata={"description": "per job field; nested fields with a dot (pvc.size)"})


class PolicySchema(ScopeSchema):
    """The whole file: cluster-wide defaults and rules, and per-project ones that replace them field by field."""

    error_messages = {"type": "must be a map with defaults, rules and projects",
                      "unknown": "is not a policy key (the file has defaults, rules and projects)"}

    projects = fields.Dict(values=fields.Nested(ScopeSchema, allow_none=True), allow_none=True,
                           error_messages={"invalid": "must be a map of project names to {defaults, rules}"})


class EffectivePolicySchema(Schema):
    """``GET /api/v1/policy?project=P``: the merged policy that applies to P's jobs."""

    project = fields.String(allow_none=True, metadata={"description": "null: the cluster-wide policy"})
    defaults = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)
    rules = fields.Dict(keys=fields.String(), values=fields.Nested(RuleSchema), required=True)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; in a policy that silently drops a rule, so refuse it."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, (str, int, float, bool)) and key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_policy_text(text: str) -> Policy:
    """The policy in ``text`` (YAML or JSON), or PolicyInvalid listing every problem. Empty text: no policy."""
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyInvalid([f"{where}not valid YAML: {problem}"]) from None
    if document is None:
        return NO_POLICY
    return load_policy(document)


def load_policy(document: Any) -> Policy:
    """A parsed policy document -> Policy, or PolicyInvalid listing every problem."""
    if not isinstance(document, dict):
        raise PolicyInvalid(["/: the policy must be a map with defaults, rules and projects"])
    problems: list[FieldError] = []
    try:
        PolicySchema().load(document)
    except ValidationError as exc:
        problems.extend(flatten_errors(_without_key_errors(exc.messages)))
    cluster = _scope(document, "", problems)
    projects: dict[str, Scope] = {}
    raw_projects = document.get("projects")
    if isinstance(raw_projects, dict):
        for project, body in raw_projects.items():
            pointer = f"/projects/{escape_pointer(str(project))}"
            if not isinstance(project, str) or not names.DNS1123_LABEL.match(project) or len(project) > 63:
                problems.append(FieldError(pointer, f"a project name {MSG_DNS1123}"))
                continue
            if body is None:
                body = {}
            if isinstance(body, dict):
                projects[project] = _scope(body, pointer, problems)
    policy = Policy(cluster, projects)
    if not problems:
        problems.extend(_defaults_within_rules(policy))
    if problems:
        raise PolicyInvalid(_unique(f"{p.field}: {p.message}" for p in problems))
    return policy


def _without_key_errors(messages: Any) -> Any:
    """Drop marshmallow's Dict error layer ({"gpu": {"value": {...}}}) so pointers read /rules/gpu/max."""
    if isinstance(messages, dict):
        if set(messages) <= {"key", "value"} and messages:
            return _without_key_errors(messages.get("value", messages.get("key")))
        return {key: _without_key_errors(value) for key, value in messages.items()}
    return messages


def _scope(body: dict, pointer: str, problems: list[FieldError]) -> Scope:
    """Defaults and rules of one scope; problems are added to ``problems``, the good parts kept."""
    defaults = _defaults(body.get("defaults"), f"{pointer}/defaults", problems)
    rules = _rules(body.get("rules"), f"{pointer}/rules", problems)
    return Scope(defaults, rules)


def _defaults(raw: Any, pointer: str, problems: list[FieldError]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        return {}  # the schema reported it
    defaults: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for name, value in raw.items():
        at = f"{pointer}/{escape_pointer(str(name))}"
        if not isinstance(name, str) or "." in name or canonical(name) not in FIELDS:
            problems.append(FieldError(at, "is not a job field (check its spelling; nested fields take no default)"))
            continue
        if name in NO_DEFAULT:
            problems.append(FieldError(at, f"a default cannot give the job's {name}"))
            continue
        if canonical(name) in seen:
            problems.append(FieldError(at, f"{seen[canonical(name)]} and {name} are the same field: give one"))
            continue
        seen[canonical(name)] = name
        if value is None:
            problems.append(FieldError(at, "may not be null (leave the default out instead)"))
            continue
        try:
            _JOB_FIELDS[name].deserialize(value)
        except ValidationError as exc:
            problems.extend(flatten_errors(exc.messages, at))
            continue
        defaults[name] = value
    return defaults


def _rules(raw: Any, pointer: str, problems: list[FieldError]) -> dict[str, Rule]:
    if not isinstance(raw, dict):
        return {}  # absent, or reported by the schema
    rules: dict[str, Rule] = {}
    seen: dict[str, str] = {}
    for name, body in raw.items():
        at = f"{pointer}/{escape_pointer(str(name))}"
        key = canonical(name) if isinstance(name, str) else ""
        if key not in FIELDS:
            problems.append(FieldError(at, "is not a job field (check its spelling; nested fields read pvc.size)"))
            continue
        if key in seen:
            problems.append(FieldError(at, f"{seen[key]} and {name} are the same field: give one rule"))
            continue
        seen[key] = name
        if body is None:
            body = {}
        if not isinstance(body, dict):
            continue  # the schema reported it
        try:
            body = RuleSchema().load(body)
        except ValidationError as exc:
            # The schema reported what it refused (with this pointer); judge what it accepted too.
            body = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        rule = _rule(key, name, body, at, problems)
        if rule is not None:
            rules[key] = rule
    return rules


def _rule(key: str, name: str, body: dict, at: str, problems: list[FieldError]) -> Rule | None:
    """One rule, checked against its field's kind; None when it has a problem (already reported)."""
    info = FIELDS[key]
    before = len(problems)
    what = f"{name} is {DESCRIBED[info.kind]}"
    bounds: dict[str, Any] = {}
    for bound in ("min", "max"):
        if bound not in body:
            continue
        if info.kind not in ORDERED:
            problems.append(FieldError(f"{at}/{bound}", f"applies to numbers, quantities and durations; {what}"))
            continue
        try:
            bounds[bound] = info.comparable(info.load(body[bound]))
        except ValidationError as exc:
            problems.extend(flatten_errors(exc.messages, f"{at}/{bound}"))
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        problems.append(FieldError(f"{at}/max", f"must be at least min ({body['min']})"))
    options = None
    if "options" in body:
        if info.kind == OTHER:
            problems.append(FieldError(f"{at}/options", f"applies to single values; {what}"))
        elif not body["options"]:
            problems.append(FieldError(f"{at}/options", "must list at least one value"))
        else:
            loaded = []
            for index, option in enumerate(body["options"]):
                try:
                    loaded.append(info.comparable(info.load(option)))
                except ValidationError as exc:
                    problems.extend(flatten_errors(exc.messages, f"{at}/options/{index}"))
            options = tuple(loaded)
    prefixes = None
    if "prefixes" in body:
        if info.kind not in TEXT:
            problems.append(FieldError(f"{at}/prefixes", f"applies to strings; {what}"))
        elif not body["prefixes"]:
            problems.append(FieldError(f"{at}/prefixes", "must list at least one prefix"))
        else:
            prefixes = tuple(body["prefixes"])
    required, can_edit = body.get("required", False), body.get("canEdit", True)
    if required and not can_edit:
        problems.append(FieldError(f"{at}/canEdit", "a required field the job may not set could never be given"))
    if len(problems) > before:
        return None
    return Rule(required, can_edit, bounds.get("min"), bounds.get("max"), options, prefixes, dict(body))


def _defaults_within_rules(policy: Policy) -> list[FieldError]:
    """Each default must satisfy the rules wherever it applies: cluster-wide, and in every project.

    In a project only the pairs the project changes are judged again (its own defaults against every
    rule; the cluster's defaults against its own rules), so one cluster-wide mistake is reported once.
    """
    problems = []
    cluster = policy.effective(None)
    problems += _located(check_values(cluster.defaults, cluster), "/defaults")
    for project, scope in policy.projects.items():
        effective = policy.effective(project)
        own = {name: value for name, value in effective.defaults.items() if name in scope.defaults}
        inherited = {name: value for name, value in effective.defaults.items() if name not in scope.defaults}
        own_rules = replace(effective, rules={name: effective.rules[name] for name in scope.rules})
        problems += _located(check_values(own, effective), f"/projects/{escape_pointer(project)}/defaults")
        problems += _located(check_values(inherited, own_rules), "/defaults")
    return problems


def _located(errors: list[FieldError], base: str) -> list[FieldError]:
    """Errors of defaults judged as a job (/job/gpu) pointed at the defaults in the file (/defaults/gpu)."""
    return [FieldError(base + error.field[len("/job"):], f"the default breaks a rule: {error.message}")
            for error in errors]


def _unique(items: Any) -> list[str]:
    return list(dict.fromkeys(items))


__all__ = ["EffectivePolicySchema", "PolicyInvalid", "PolicySchema", "RuleSchema", "ScopeSchema",
           "load_policy", "load_policy_text"]
