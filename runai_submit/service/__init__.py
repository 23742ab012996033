"""The use cases of the API, one module per capability, none of them importing Flask.

``JobService`` gathers them over one cluster handle; the API builds one per request (cheap: it holds
references only) so that every call a request makes goes through the caller's handle.
"""
from __future__ import annotations

from .batch import Batches, BatchResult
from .insight import Insight
from .jobs import Jobs, job_status, job_view
from .policy import Policies, PolicyStore
from .submit import Submitter, SubmitResult


class JobService(Batches, Submitter, Insight, Policies):
    """Every use case, over one cluster handle and the settings. ``Insight`` builds on ``Jobs``."""


__all__ = ["BatchResult", "Batches", "Insight", "JobService", "Jobs", "Policies", "PolicyStore", "SubmitResult",
           "Submitter", "job_status", "job_view"]
