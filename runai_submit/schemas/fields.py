"""Field types shared by every request schema: strict JSON types, quantities, durations, and JSON pointers.

Marshmallow's defaults coerce ("yes" -> True, "1" -> 1, 1.5 -> 1). A job service must not guess, so these
fields accept exactly the JSON types the contract names. ``flatten_errors`` turns marshmallow's nested error
dict into one ``FieldError`` per message, each with a JSON pointer into the request.
"""
from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import ValidationError, fields, validate

from ..errors import FieldError
from ..model import EnvVar
from ..render import names
from ..units import DURATION_INPUT, POSITIVE_QUANTITY_INPUT, ZERO_QUANTITY, duration_seconds, normalize_quantity

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
SERVICE_TYPES = ("nodeport", "loadbalancer", "clusterip", "portforward", "ingress")
NODE_PORT_RANGE = (30000, 32767)
INT32_MAX = 2**31 - 1  # Kubernetes' int32 fields (backoffLimit, completions, ttlSecondsAfterFinished, ...)

MSG_DNS1035 = (
    "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter, "
    "ending with a letter or digit"
)
MSG_DNS1123 = "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit"
MSG_SUBDOMAIN = "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.'"
MSG_LABEL_VALUE = "must be a label value: letters, digits, '-', '_' and '.', starting and ending with a letter or digit"

# Every pattern below is written for both Python's ``re`` and ECMA-262 (the dialect of OpenAPI's ``pattern``):
# explicit character classes instead of \d, \s and \w, whose meaning differs between the two, and anchors
# at both ends. The service applies them with ``fullmatch`` so that ``$`` never accepts a trailing newline.
# Exactly the characters Python's str.isspace() and str.strip() treat as whitespace.
SPACE_CHARS = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NO_WHITESPACE = re.compile(f"^[^{SPACE_CHARS}]+$")
ABSOLUTE_PATH = re.compile(r"^/[\s\S]*$")  # [\s\S] is "any character" in both dialects
# A hostPath: absolute, and no segment is ".." (the API server refuses it: validatePathNoBacktracking).
_SEGMENT = r"(?:[^/.][^/]*|\.(?:[^/.][^/]*)?|\.\.[^/]+)?"
HOST_PATH = re.compile(f"^/{_SEGMENT}(?:/{_SEGMENT})*$")
_SPACES = f"[{SPACE_CHARS}]*"
SECRET_PREFIX = "SECRET:"
# An environment value: any string not starting with SECRET:, or SECRET:<secret name>,<key> (spaces around
# each part are dropped, as str.strip() does).
ENV_VALUE = re.compile(
    f"^(?!{SECRET_PREFIX})[\\s\\S]*$|^{SECRET_PREFIX}{_SPACES}{names.DNS1123_SUBDOMAIN.pattern[1:-1]}{_SPACES},"
    f"{_SPACES}{names.SECRET_KEY.pattern[1:-1]}{_SPACES}$"
)
# What ``shlex.split`` (POSIX mode) accepts: every quote closed, no lone trailing backslash.
SHELL_WORDS = re.compile(r"""^(?:[^'"\\]|\\[\s\S]|'[^']*'|"(?:[^"\\]|\\[\s\S])*")*$""")


class FullMatch(validate.Regexp):
    """``validate.Regexp`` that must match the whole value (``re.fullmatch``); apispec documents its pattern."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


# --- rules the OpenAPI document can only state in words ---------------------------------------------
# OpenAPI 3.0 cannot constrain an object's keys nor relate one field to another. Each such rule is a sentence
# that starts every error message the service gives for it; the document lists the sentences under the
# field's ``x-rules`` and in its description, and the fuzzing gate accepts a refusal of schema-valid data only
# when every error it names starts with one of them.
RULE_AT_MOST_INT32_SECONDS = f"must be at most {2**31 - 1} seconds"
RULE_ENV_NAME = ("names must be variable names: letters, digits, '_', '-' and '.', not starting with a digit, "
                 "not '.' and not starting with '..'")
RULE_SECRET_NAME_LENGTH = "a secret name and a secret key must each be at most 253 characters"
RULE_HOST_PATH_KEY = "keys (host paths) must be absolute paths without '..' segments"

# A custom field's OpenAPI shape: ``openapi(ref)`` returns the schema object of what the field accepts
# (``ref`` turns a nested Schema into a $ref); ``rules`` are its word-only rules (above).
Ref = Callable[[Any], dict]


class StrictBoolean(fields.Field):
    default_error_messages = {"invalid": "must be true or false"}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictNumber(fields.Field):
    default_error_messages = {"invalid": "must be a number"}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.make_error("invalid")
        return value


class StrictInteger(fields.Field):
    default_error_messages = {"invalid": "must be a whole number"}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return value


class StrictString(fields.String):
    default_error_messages = {"invalid": "must be a string"}


class CaseInsensitiveChoice(StrictString):
    """A string from a fixed set, matched case-insensitively (ASCII) and returned in its canonical spelling."""

    def __init__(self, choices: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.canonical = {choice.lower(): choice for choice in choices}
        self.choices = choices

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        # ASCII only: str.lower() would also fold the Kelvin sign into "k".
        found = self.canonical.get(text.lower()) if text.isascii() else None
        if found is None:
            raise ValidationError(f"must be one of {', '.join(self.choices)} (any case)")
        return found

    def openapi(self, ref: Ref) -> dict:
        # OpenAPI's enum is case-sensitive: it lists the canonical spellings (what generated clients send and
        # what the service answers with); the description says any other case is accepted too.
        return {"enum": [*self.choices, *([None] if self.allow_none else [])],
                "x-case-insensitive": True,
                "description": f"One of {', '.join(self.choices)}; any letter case is accepted and answered in "
                               "this spelling."}


absolute_path = FullMatch(ABSOLUTE_PATH, error="must be an absolute path")
no_whitespace = FullMatch(NO_WHITESPACE, error="must be non-empty and contain no whitespace")


def name_rule(pattern: re.Pattern, message: str, max_length: int) -> list[validate.Validator]:
    """A length and a pattern, both reported when both fail, both in the OpenAPI document."""
    return [
        validate.Length(min=1, max=max_length, error=f"must be 1 to {max_length} characters"),
        FullMatch(pattern, error=message),
    ]


class Quantity(StrictString):
    """A Kubernetes quantity more than zero; "3GB"-style decimal byte suffixes are normalised to "3G"."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalize_quantity(text)
        except ValueError:
            if ZERO_QUANTITY.fullmatch(text):
                raise ValidationError("must be greater than 0") from None
            raise ValidationError("must be a quantity such as 512Mi, 4Gi, 3G or 3GB") from None

    def openapi(self, ref: Ref) -> dict:
        return {"pattern": POSITIVE_QUANTITY_INPUT.pattern, "example": "4Gi"}


class Command(fields.Field):
    """A string (split like a POSIX shell) or an array of strings."""

    default_error_messages = {"invalid": "must be a string or an array of strings"}

    def openapi(self, ref: Ref) -> dict:
        return {"oneOf": [
            {"type": "string", "pattern": SHELL_WORDS.pattern,
             "description": "split into words as a POSIX shell would: every quote closed"},
            {"type": "array", "items": {"type": "string"}},
        ]}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> tuple:
        if isinstance(value, str):
            try:
                return tuple(shlex.split(value))
            except ValueError as exc:
                raise ValidationError(f"is not a valid shell command: {exc}") from None
        if isinstance(value, list):
            bad = {i: ["must be a string"] for i, item in enumerate(value) if not isinstance(item, str)}
            if bad:
                raise ValidationError(bad)
            return tuple(value)
        raise self.make_error("invalid")


class Duration(fields.Field):
    """Integer seconds, or a Go duration string with an optional ``d`` unit."""

    default_error_messages = {"invalid": "must be a duration such as 90s, 1h30m or 2d, or whole seconds"}
    rules = (RULE_AT_MOST_INT32_SECONDS,)

    def openapi(self, ref: Ref) -> dict:
        return {"oneOf": [
            {"type": "string", "pattern": DURATION_INPUT.pattern, "example": "1h30m",
             "description": "Go duration syntax plus d for days; rounded to whole seconds, half away from zero"},
            {"type": "integer", "minimum": 0, "maximum": INT32_MAX},
        ]}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int):
            seconds = value
        elif isinstance(value, str):
            if value.startswith("-"):
                raise ValidationError("must be 0 or more (a duration or whole seconds)")
            try:
                seconds = duration_seconds(value)
            except ValueError:
                raise self.make_error("invalid") from None
        else:
            raise self.make_error("invalid")
        if seconds < 0:
            raise ValidationError("must be 0 or more (a duration or whole seconds)")
        if seconds > INT32_MAX:
            raise ValidationError(RULE_AT_MOST_INT32_SECONDS)
        return seconds


class Environment(fields.Field):
    """A map of variable name to string, number or boolean; ``SECRET:<name>,<key>`` reads a secret."""

    default_error_messages = {"invalid": "must be an object of variable names to values"}
    rules = (RULE_ENV_NAME, RULE_SECRET_NAME_LENGTH)

    def openapi(self, ref: Ref) -> dict:
        return {"type": "object", "additionalProperties": {"oneOf": [
            {"type": "string", "pattern": ENV_VALUE.pattern,
             "description": "a literal value, or SECRET:<secret name>,<key> for a key of a secret"},
            {"type": "number"},
            {"type": "boolean"},
        ]}}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> tuple:
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        variables: list[EnvVar] = []
        errors: dict[str, list[str]] = {}
        for key, raw in value.items():
            problems = []
            if not names.ENV_NAME.fullmatch(key):
                problems.append(RULE_ENV_NAME)
            if isinstance(raw, str):
                variable = _secret_or_literal(key, raw, problems)
            elif isinstance(raw, (bool, int, float)) and (isinstance(raw, bool) or math.isfinite(raw)):
                # Stringified as JSON prints it: true, 50, 0.2 (not Python's True).
                variable = EnvVar(name=key, value=json.dumps(raw))
            else:
                problems.append("must be a string, number or boolean")
                variable = None
            if problems:
                errors[key] = problems
            elif variable is not None:
                variables.append(variable)
        if errors:
            raise ValidationError(errors)
        return tuple(variables)


def _secret_or_literal(key: str, raw: str, problems: list[str]) -> EnvVar | None:
    if not raw.startswith(SECRET_PREFIX):
        return EnvVar(name=key, value=raw)
    secret, _, secret_key = raw[len(SECRET_PREFIX) :].partition(",")
    secret, secret_key = secret.strip(), secret_key.strip()
    if not (secret and secret_key):
        problems.append("must be SECRET:<secret name>,<key>")
        return None
    if not names.DNS1123_SUBDOMAIN.fullmatch(secret):
        problems.append(f"secret name {secret!r} {MSG_SUBDOMAIN}")
    elif len(secret) > names.MAX_SUBDOMAIN:
        problems.append(f"{RULE_SECRET_NAME_LENGTH} ({len(secret)})")
    if not names.SECRET_KEY.fullmatch(secret_key):
        problems.append(f"secret key {secret_key!r} may hold only letters, digits, '-', '_' and '.', "
                        "and may not start with '..'")
    elif len(secret_key) > names.MAX_SUBDOMAIN:
        problems.append(f"{RULE_SECRET_NAME_LENGTH} ({len(secret_key)})")
    return EnvVar(name=key, secret_name=secret, secret_key=secret_key)



# --- errors as JSON pointers ----------------------------------------------------------------------


def flatten_errors(messages: Any, pointer: str = "") -> list[FieldError]:
    """Marshmallow's nested error dict -> one FieldError per message, each with a JSON pointer."""
    if isinstance(messages, dict):
        result: list[FieldError] = []
        for key, value in messages.items():
            child = pointer if key == "_schema" else f"{pointer}/{escape_pointer(str(key))}"
            result.extend(flatten_errors(value, child))
        return result
    if isinstance(messages, (list, tuple)):
        result = []
        for item in messages:
            result.extend(flatten_errors(item, pointer) if isinstance(item, (dict, list)) else [_field_error(pointer, item)])
        return result
    return [_field_error(pointer, messages)]


def _field_error(pointer: str, message: Any) -> FieldError:
    text = str(message)
    if text == "Unknown field.":
        inside_a_job = pointer.startswith(("/job/", "/jobs/"))
        text = f"unknown field ({'not a job parameter; ' if inside_a_job else ''}check its spelling)"
    elif text == "Missing data for required field.":
        text = "is required"
    elif text == "Field may not be null.":
        text = "may not be null"
    return FieldError(pointer or "/", text)


def escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")
