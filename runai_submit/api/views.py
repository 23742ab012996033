"""Views: read the request, call the service, answer. Errors are raised and mapped by api.errors."""
from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, request

from ..errors import BadRequest, PayloadTooLarge, Unauthorized
from ..schemas import load_submit_request

blueprint = Blueprint("api", __name__)

USER_HEADER = "RA-USER"
_TRUE = ("true", "1", "all", "yes")
_FALSE = ("false", "0", "no", "")


def _state() -> Any:
    return current_app.extensions["runai_submit"]


def _user() -> str:
    user = (request.headers.get(USER_HEADER) or "").strip()
    if not user:
        raise Unauthorized("The RA-USER header is required and must name the submitting user.")
    return user


def _json_body() -> Any:
    # Werkzeug answers 413 for a declared Content-Length over the limit; a chunked body has none,
    # so read one byte past the limit and refuse it here.
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    chunks, size = [], 0
    while size <= limit:
        chunk = request.stream.read(limit + 1 - size)  # reads may come back short: loop to EOF
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    raw = b"".join(chunks)
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The request body is not valid JSON.", details=str(exc)) from None
    except RecursionError:
        raise BadRequest("The request body is nested too deeply.") from None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _flag(name: str) -> bool:
    value = request.args.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadRequest(f"Query parameter {name} must be true or false, not {value!r}.")


@blueprint.post("/api/job")
@blueprint.post("/api/v1/job")
@blueprint.post("/api/v1/jobs")
def submit_job() -> tuple[dict, int]:
    """Submit one job; answers its final name (and, with ?dryRun=true, the manifests it would create)."""
    user = _user()
    dry_run = _flag("dryRun")
    spec = load_submit_request(_json_body())
    result = _state().service.submit(spec, user, dry_run=dry_run)
    return result.to_dict(with_manifests=dry_run), 200
