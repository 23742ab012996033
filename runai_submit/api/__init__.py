"""The HTTP API: a Flask blueprint of thin views, and the handlers that give every error one shape."""
from __future__ import annotations

from .errors import register_error_handlers
from .views import blueprint

__all__ = ["blueprint", "register_error_handlers"]
