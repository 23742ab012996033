"""The HTTP API: one Flask blueprint per area, thin views, and the handlers that give every error one shape.

Each module in ``API_MODULES`` has a ``blueprint``, the ``OPERATIONS`` of its views for the OpenAPI
document, and the ``COMPONENTS`` (schemas) those operations name.
"""
from __future__ import annotations

from flask import Flask

from . import batch, identity, insight, jobs, policy, system
from .errors import register_error_handlers

API_MODULES = (jobs, system, policy, identity, insight, batch)


def register_blueprints(app: Flask) -> None:
    for module in API_MODULES:
        app.register_blueprint(module.blueprint)


__all__ = ["API_MODULES", "register_blueprints", "register_error_handlers"]
