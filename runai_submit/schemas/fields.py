"""Field types shared by every request schema: strict JSON types, quantities, durations, and JSON pointers.

Marshmallow's defaults coerce ("yes" -> True, "1" -> 1, 1.5 -> 1). A job service must not guess, so these
fields accept exactly the JSON types the contract names. ``flatten_errors`` turns marshmallow's nested error
dict into one ``FieldError`` per message, each with a JSON pointer into the request.
"""
from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, validate

from ..errors import FieldError
from ..model import EnvVar
from ..render import names
from ..units import duration_seconds, normalize_quantity, quantity_value

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
SERVICE_TYPES = ("nodeport", "loadbalancer", "clusterip", "portforward", "ingress")
NODE_PORT_RANGE = (30000, 32767)
INT32_MAX = 2**31 - 1  # Kubernetes' int32 fields (backoffLimit, completions, ttlSecondsAfterFinished, ...)
SECRET_PREFIX = "SECRET:"

MSG_DNS1035 = (
    "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter, "
    "ending with a letter or digit"
)
MSG_DNS1123 = "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit"
MSG_SUBDOMAIN = "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.'"
MSG_LABEL_VALUE = "must be a label value: letters, digits, '-', '_' and '.', starting and ending with a letter or digit"


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
    """A string from a fixed set, matched case-insensitively and returned in its canonical spelling."""

    def __init__(self, choices: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.canonical = {choice.lower(): choice for choice in choices}
        self.choices = choices

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self.canonical[text.lower()]
        except KeyError:
            raise ValidationError(f"must be one of {', '.join(self.choices)} (any case)") from None


def absolute_path(value: str) -> None:
    if not value.startswith("/"):
        raise ValidationError("must be an absolute path")


def no_whitespace(value: str) -> None:
    if not value or any(ch.isspace() for ch in value):
        raise ValidationError("must be non-empty and contain no whitespace")


def name_rule(pattern: Any, message: str, max_length: int) -> validate.Validator:
    return validate.And(
        validate.Length(min=1, max=max_length, error=f"must be 1 to {max_length} characters"),
        validate.Regexp(pattern, error=message),
    )


class Quantity(StrictString):
    """A Kubernetes quantity; "3GB"-style decimal byte suffixes are normalised to "3G"."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            text = normalize_quantity(text)
        except ValueError:
            raise ValidationError("must be a quantity such as 512Mi, 4Gi, 3G or 3GB") from None
        if quantity_value(text) <= 0:
            raise ValidationError("must be greater than 0")
        return text


class Command(fields.Field):
    """A string (split like a POSIX shell) or an array of strings."""

    default_error_messages = {"invalid": "must be a string or an array of strings"}

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

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int):
            seconds = value
        elif isinstance(value, str):
            try:
                seconds = duration_seconds(value.strip())
            except ValueError:
                raise self.make_error("invalid") from None
        else:
            raise self.make_error("invalid")
        if seconds < 0:
            raise ValidationError("must be 0 or more (a duration or whole seconds)")
        if seconds > INT32_MAX:
            raise ValidationError(f"must be at most {INT32_MAX} seconds")
        return seconds


class Environment(fields.Field):
    """A map of variable name to string, number or boolean; ``SECRET:<name>,<key>`` reads a secret."""

    default_error_messages = {"invalid": "must be an object of variable names to values"}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> tuple:
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        variables: list[EnvVar] = []
        errors: dict[str, list[str]] = {}
        for key, raw in value.items():
            problems = []
            if not names.ENV_NAME.match(key):
                problems.append("is not a valid variable name (letters, digits, '_', '-', '.'; not starting with a digit)")
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
    if len(secret) > names.MAX_SUBDOMAIN or not names.DNS1123_SUBDOMAIN.match(secret):
        problems.append(f"secret name {secret!r} {MSG_SUBDOMAIN}")
    if not names.SECRET_KEY.match(secret_key):
        problems.append(f"secret key {secret_key!r} may hold only letters, digits, '-', '_' and '.'")
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
        text = "unknown field (not a job parameter; check its spelling)"
    elif text == "Missing data for required field.":
        text = "is required"
    elif text == "Field may not be null.":
        text = "may not be null"
    return FieldError(pointer or "/", text)


def escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")
