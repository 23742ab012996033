"""The admin policy file, read at start and re-read when it changes; and the effective-policy use case."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..errors import ConfigError
from ..metrics import POLICY_RELOADS
from ..policy import NO_POLICY, Policy
from ..schemas.policy import PolicyInvalid, load_policy_text
from .base import ServiceBase

log = logging.getLogger(__name__)

class PolicyStore:
    """The policy of ``RUNAI_SUBMIT_POLICY_FILE``, checked for changes at most every ``reload_seconds``.

    A check reads the file and compares its bytes with the last version read: a policy is a few KB, and
    content cannot miss a change the way modification times can (two writes within one timestamp tick,
    or a ConfigMap volume, which swaps a symlink ``..data -> ..2024_01_01_00_00_00.1234`` and leaves
    the path's own mtime alone; ``open`` follows the links to the new file).
    https://kubernetes.io/docs/concepts/configuration/configmap/#mounted-configmaps-are-updated-automatically

    A bad file at start raises ConfigError (the service does not start); a bad file later keeps the last
    good policy, logs an ERROR with every problem and counts ``runai_submit_policy_reloads{result="error"}``.
    One per process: the state is a few dicts, and each gunicorn worker checks the file on its own.
    """

    def __init__(self, path: str, reload_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.reload_seconds = reload_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._policy: Policy = NO_POLICY
        self._content: bytes | None = None  # the version last read, good or bad: read and judged once
        self._last_failure: str | None = None
        self._checked_at = clock()
        if path:
            try:
                self._content = self._read()
                self._policy = load_policy_text(self._content.decode("utf-8"))
            except OSError as exc:
                raise ConfigError([f"policy_file {path!r} cannot be read: {exc.strerror or exc}"]) from None
            except UnicodeDecodeError as exc:
                raise ConfigError([f"policy_file {path!r} is not UTF-8 text: {exc.reason}"]) from None
            except PolicyInvalid as exc:
                raise ConfigError([f"policy_file {path!r}: {problem}" for problem in exc.problems]) from None
            log.info("policy loaded from %s: %d cluster rules, %d project scopes", path,
                     len(self._policy.cluster.rules), len(self._policy.projects))

    def current(self) -> Policy:
        """The policy now: the last good one, re-read first if the check is due and the file changed."""
        if not self.path or self._clock() - self._checked_at < self.reload_seconds:
            return self._policy
        with self._lock:
            now = self._clock()
            if now - self._checked_at >= self.reload_seconds:
                self._checked_at = now
                self._reload()
        return self._policy

    def _reload(self) -> None:
        try:
            content = self._read()
        except OSError as exc:
            self._failed(f"cannot be read: {exc.strerror or exc}", repeat=True)
            return
        self._last_failure = None  # readable again: a later failure to read is news, even the same one
        if content == self._content:
            return
        self._content = content
        try:
            policy = load_policy_text(content.decode("utf-8"))
        except UnicodeDecodeError as exc:
            self._failed(f"is not UTF-8 text: {exc.reason}")
            return
        except PolicyInvalid as exc:
            self._failed("is not valid:\n  " + "\n  ".join(exc.problems))
            return
        self._policy, self._last_failure = policy, None
        POLICY_RELOADS.labels("ok").inc()
        log.info("policy reloaded from %s: %d cluster rules, %d project scopes", self.path,
                 len(policy.cluster.rules), len(policy.projects))

    def _failed(self, reason: str, *, repeat: bool = False) -> None:
        # Each bad version is reported once: its content is remembered, so it is not judged again. A file
        # that cannot be read is tried at every check (``repeat``) but reported once until that changes.
        if repeat and reason == self._last_failure:
            return
        self._last_failure = reason
        POLICY_RELOADS.labels("error").inc()
        log.error("policy file %s %s; keeping the last good policy", self.path, reason)

    def _read(self) -> bytes:
        with open(self.path, "rb") as handle:
            return handle.read()


class Policies(ServiceBase):
    """What the admin policy says for a project (``GET /api/v1/policy?project=P``)."""

    def effective_policy(self, project: str | None) -> dict:
        return self.current_policy().effective(project).to_dict()
