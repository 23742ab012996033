"""What every view needs: the app's collaborators, the caller, and strict reading of bodies and flags."""
from __future__ import annotations

import json
from typing import Any

from flask import current_app, g, request

from marshmallow import Schema, ValidationError

from ..config import Settings
from ..errors import BadRequest, PayloadTooLarge, ServiceError, ValidationFailed
from ..identity import Caller
from ..schemas import flatten_errors
from ..schemas.params import JobPathSchema, ProjectPathSchema, QueryFlag
from ..service import JobService


def state() -> Any:
    """The per-app collaborators (``app.AppState``), kept in ``app.extensions``."""
    return current_app.extensions["runai_submit"]


def settings() -> Settings:
    return state().settings


def caller(*, require_user: bool = True) -> Caller:
    """The identity this request acts with, in the configured auth mode; resolved once per request.

    ``require_user=False`` lets a read go without RA-USER in ``header`` mode only: in ``token`` and
    ``impersonate`` modes every call is made as the caller, so every request needs the caller's identity.
    """
    found = g.get("caller")
    if found is None or (require_user and not found.user):
        found = g.caller = state().authenticator.caller(request.headers, require_user=require_user)
    return found


def service(*, require_user: bool = True) -> JobService:
    """The use cases, bound to this request's caller: every API call goes out with the caller's identity."""
    return state().service_for(caller(require_user=require_user))


def identity_fields(who: Caller) -> dict:
    """The caller in an audit record: user and groups, the mode, and an RA-USER the token disagreed with."""
    fields = {"user": who.user or None, "groups": list(who.groups), "auth_mode": who.mode}
    if who.claimed_user:
        fields["claimed_user"] = who.claimed_user
    return fields


def json_body() -> Any:
    """The request body as JSON, with the body limit enforced even for chunked bodies."""
    # Werkzeug answers 413 for a declared Content-Length over the limit; a chunked body has none,
    # so read one byte past the limit and refuse it here.
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    req = request._get_current_object()  # type: ignore[attr-defined]
    stream, declared = req.stream, req.content_length
    chunks, size = [], 0
    while size <= limit:
        chunk = stream.read(limit + 1 - size)  # reads may come back short: loop to EOF
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if declared is not None and size >= declared:
            break  # the whole declared body (the stream ends there): no read only to find its end
    if size > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    raw = b"".join(chunks)
    try:
        # json.loads(raw, parse_constant=...) without building a decoder per request
        return _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The request body is not valid JSON.", details=str(exc)) from None
    except RecursionError:
        raise BadRequest("The request body is nested too deeply.") from None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # NaN, Infinity: not JSON (RFC 8259)


_NO_PARAMETERS: dict[Schema, dict] = {}  # what each (module-level) schema loads from no parameters at all


def parameters(schema: Schema, values: Any, *, error: type[ServiceError] = ValidationFailed) -> dict:
    """Path or query parameters read by ``schema`` (the schema the OpenAPI document shows); every problem at once.

    Each problem points at the parameter by name (``/project``), as a field error points into a body.
    """
    if not values:  # issue 13: most requests have no query; the schema's answer to none is always the same
        found = _NO_PARAMETERS.get(schema)
        if found is not None:
            return dict(found)
    try:
        loaded = schema.load(values)
        if not values and len(_NO_PARAMETERS) < 64:  # bounded, should a schema ever be made per request
            _NO_PARAMETERS[schema] = dict(loaded)
        return loaded
    except ValidationError as exc:
        problems = flatten_errors(exc.messages)
        summary = "; ".join(f"{problem.field.lstrip('/')} {problem.message}" for problem in problems)
        raise error(f"Invalid parameters: {summary}.", errors=problems) from None


_FLAG = QueryFlag()


def flag(name: str) -> bool:
    """A boolean query parameter: exactly true or false (absent is false); anything else is a 400.

    The OpenAPI document shows it as a boolean (``schemas.params.QueryFlag``): generated clients send true/false.
    """
    if name not in request.args:
        return False
    try:
        return _FLAG.deserialize(request.args[name])
    except ValidationError as exc:
        raise BadRequest(f"Query parameter {name} must be true or false, not {request.args[name]!r}.",
                         errors=flatten_errors(exc.messages, f"/{name}")) from None


_PROJECT, _JOB = ProjectPathSchema(), JobPathSchema()


def check_project(project: str, pointer: str = "/project") -> None:
    """A project name as the path and query parameters take it (a DNS-1123 label), or a 422 at ``pointer``."""
    try:
        _PROJECT.load({"project": project})
    except ValidationError as exc:
        raise ValidationFailed(f"{project!r} is not a project name.",
                               errors=flatten_errors(exc.messages["project"], pointer)) from None


def check_job_ref(project: str, name: str) -> None:
    """``/{project}/{name}`` as the OpenAPI document shows them (``JobPathSchema``): a 422 naming each one broken."""
    parameters(_JOB, {"project": project, "name": name})
