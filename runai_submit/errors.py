"""Exceptions of the service, each carrying the HTTP status it answers with.

This module imports nothing from the package, so every layer can raise these.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one request field; ``field`` is a JSON pointer into the request body."""

    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class ServiceError(Exception):
    """Base of every error the API answers with a status other than 500."""

    status: int = 500
    default_message: str = "Internal error."
    # True when a failed create may have been persisted (HTTP 500, timeout): the rollback deletes it too.
    maybe_applied: bool = False
    # True when the API server may still be working on it (timeout, 504): a 404 on that delete proves nothing.
    may_land_late: bool = False
    # Set by the applier when a submit failed part-way: which object failed, which could not be rolled back.
    failed_object: str | None = None
    left_behind: list[str] = []

    def __init__(
        self,
        message: str | None = None,
        *,
        details: str = "",
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.errors = list(errors or [])
        self.headers = dict(headers or {})
        super().__init__(self.message)

    def caused_by(self, cause: ServiceError) -> ServiceError:
        """Keep what the applier recorded on ``cause`` (failed object, leftovers) when re-raising as self."""
        self.failed_object = cause.failed_object
        self.left_behind = list(cause.left_behind)
        return self

    def to_dict(self) -> dict:
        """The error envelope of the contract (§6)."""
        envelope = {
            "status": self.status,
            "message": self.message,
            "details": self.details,
            "errors": [error.to_dict() for error in self.errors],
        }
        if self.failed_object:
            envelope["failedObject"] = self.failed_object
            envelope["leftBehind"] = list(self.left_behind)
        return envelope


class BadRequest(ServiceError):
    status = 400
    default_message = "The request body is not valid."


class Unauthorized(ServiceError):
    status = 401
    default_message = "The RA-USER header is required."


class Forbidden(ServiceError):
    status = 403
    default_message = "The cluster refused the request."


class NotFound(ServiceError):
    status = 404
    default_message = "Not found."


class ProjectNotFound(NotFound):
    def __init__(self, project: str, namespace: str, *, pointer: str = "/job/project", details: str = "") -> None:
        super().__init__(
            f"Project {project!r} does not exist.",
            details=details or f"No namespace is labelled runai/queue={project} and namespace {namespace!r} does "
                               "not exist.",
            errors=[FieldError(pointer, f"unknown project {project!r}")],
        )
        self.project = project
        self.namespace = namespace

    def at(self, pointer: str) -> ProjectNotFound:
        """The same answer, its field error at ``pointer`` (``/project`` of a path rather than a job's)."""
        return ProjectNotFound(self.project, self.namespace, pointer=pointer, details=self.details)


class JobNotFound(NotFound):
    def __init__(self, project: str, name: str) -> None:
        super().__init__(f"Job {name!r} does not exist in project {project!r}.")
        self.project = project
        self.name = name


class Conflict(ServiceError):
    status = 409
    default_message = "The object already exists."


class NameTaken(Conflict):
    """An object the job needs already exists; nothing was overwritten."""

    def __init__(self, project: str, name: str, *, details: str = "", holder: str = "") -> None:
        """``holder`` is the object that has the name ("Kind name"), when it is not the job's workload: a claim
        an earlier job of that name kept, or something else's Service or Ingress."""
        hint = "Choose another name, or omit it to have one generated."
        if not holder:
            message = f"A job named {name!r} already exists in project {project!r}."
        elif holder.startswith("PersistentVolumeClaim "):
            claim = holder.split(" ", 1)[1]
            message = (f"The name {name!r} is taken in project {project!r}: {holder} exists, a claim an earlier "
                       "job of that name kept.")
            hint = (f"Mount it by name ({{\"claimName\": \"{claim}\", \"path\": ...}} in pvc), delete it, or "
                    "choose another name.")
        else:
            message = f"The name {name!r} is taken in project {project!r}: {holder} exists and is not this job's."
        super().__init__(
            message,
            details=f"{hint} {details}".strip() if holder else details or hint,
            errors=[FieldError("/job/name", f"{name!r} is taken in project {project!r}"
                                            + (f" by {holder}" if holder else ""))],
        )
        self.project = project
        self.name = name


class PayloadTooLarge(ServiceError):
    status = 413
    default_message = "The request body is too large."


class ValidationFailed(ServiceError):
    status = 422
    default_message = "The job is not valid."


class ClusterRejected(ServiceError):
    """The API server refused an object as invalid (its 400/422)."""

    status = 422
    default_message = "The cluster rejected the job."


class ClusterError(ServiceError):
    """The API server answered something this service does not expect."""

    status = 502
    default_message = "The cluster answered with an unexpected error."


class ClusterUnavailable(ServiceError):
    """The API server could not be reached, timed out, or asked us to back off."""

    status = 503
    default_message = "The cluster is unavailable; try again later."

    def __init__(self, message: str | None = None, *, retry_after: int = 5, details: str = "") -> None:
        super().__init__(message, details=details, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class ConfigError(Exception):
    """Settings that cannot be used; the service refuses to start."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid configuration:\n  " + "\n  ".join(problems))

