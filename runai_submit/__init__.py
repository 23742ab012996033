"""runai-submit: a Run:AI-compatible job submission REST service for plain Kubernetes."""
from __future__ import annotations

__version__ = "0.1.0"
