"""One error envelope for every non-2xx answer (contract §6): JSON, never a traceback."""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from ..errors import ServiceError

log = logging.getLogger(__name__)


def error_response(status: int, message: str, details: str = "", errors: list | None = None,
                   headers: dict | None = None, extra: dict | None = None) -> Response:
    body = {"status": status, "message": message, "details": details, "errors": errors or []}
    body.update(extra or {})
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def handle_service_error(exc: ServiceError) -> Response:
    envelope = exc.to_dict()
    if exc.status >= 500:
        log.warning("answering %s: %s %s", exc.status, exc.message, exc.details)
    response = jsonify(envelope)
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


def handle_http_exception(exc: HTTPException) -> Response:
    """Werkzeug's own errors (404 route, 405 method, 413 body) in our envelope."""
    status = exc.code or 500
    message = {
        404: "No such endpoint.",
        405: "This endpoint does not take that method.",
        413: "The request body is too large.",
    }.get(status, exc.name + ".")
    headers = {}
    if status == 405 and exc.get_response().headers.get("Allow"):
        headers["Allow"] = exc.get_response().headers["Allow"]
    return error_response(status, message, details=exc.description or "", headers=headers)


def handle_unexpected(exc: Exception) -> Response:
    log.exception("unexpected error")
    return error_response(500, "Internal error.", details="The error was logged; nothing of it is shown here.")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ServiceError, handle_service_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
