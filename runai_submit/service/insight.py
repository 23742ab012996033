"""Job insight: why a job is (not) running, what it printed, and suspending or resuming it.

The reasons themselves are pure functions (``reasons.py``); this module reads what they need from the cluster
in a bounded number of API calls, opens logs, and patches ``spec.suspend``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..cluster import LogStream
from ..cluster.kinds import EVENT, POD
from ..errors import Conflict, Forbidden, JobNotFound, NotFound
from ..metrics import LOG_STREAMS, LOG_STREAMS_ACTIVE
from .jobs import JOB_SELECTOR, Jobs, job_view
from .reasons import (
    FAILED,
    PENDING,
    SUCCEEDED,
    Explanation,
    explain_job,
    pod_explanation,
    pod_view,
    pods_of,
    recent_events,
    started_at,
)

log = logging.getLogger(__name__)

#: The job view shows at most this many events, newest first.
MAX_EVENTS = 50
#: Events are read for the workload and for at most this many of its newest pods (one call each), so a job
#: with a hundred pods costs what a job with five does.
PODS_WITH_EVENTS = 5


@dataclass(frozen=True)
class LogRequest:
    """What ``GET .../logs`` asks for; ``pod`` None means the newest pod that has started."""

    follow: bool = False
    tail: int | None = None
    pod: str | None = None
    container: str | None = None
    previous: bool = False


@dataclass
class OpenLog:
    """A log ready to stream: which pod and container it is, and the stream itself (close it when done)."""

    pod: str
    container: str
    stream: LogStream
    max_seconds: float


class NoLogYet(Conflict):
    """No pod of the job has ever started a container, so there is no log; the message says why (409)."""

    def __init__(self, project: str, name: str, explanation: Explanation, pod: str | None = None) -> None:
        subject = f"Pod {pod!r} of job {name!r}" if pod else f"Job {name!r}"
        reason = f"{explanation.reason}: {explanation.message}" if explanation.reason else ""
        super().__init__(
            reason or f"{subject} has not started a container yet.",
            details=f"{subject} in project {project!r} has no container that ever started, so there is no log yet.",
        )
        self.explanation = explanation


class JobFinished(Conflict):
    """Suspending or resuming a job that has finished means nothing (409)."""

    def __init__(self, project: str, name: str, status: str, action: str) -> None:
        super().__init__(f"Job {name!r} in project {project!r} has already {status.lower()}; there is nothing to "
                         f"{action}.")


class Insight(Jobs):
    """Reading jobs in depth (status reasons, pods, events, logs) and suspending or resuming them."""

    # --- the job view ------------------------------------------------------------------------------

    def describe_job(self, project: str, name: str) -> dict:
        """The job with status, reason, pods and events: at most 4 + PODS_WITH_EVENTS API calls."""
        namespace = self._existing_namespace(project)
        return self._describe(self._workload(namespace, project, name))

    def _describe(self, workload: dict) -> dict:
        pods = self._pods(workload)
        events = self._events(workload, pods)
        explanation = explain_job(workload, pods, events)
        view = job_view(workload)
        view.update(status=explanation.status, statusReason=explanation.reason, statusMessage=explanation.message,
                    pods=[pod_view(pod) for pod in pods], events=recent_events(events, MAX_EVENTS))
        return view

    def _job_views(self, workloads: list[dict], selector: str) -> list[dict]:
        """The list view, with status from the pods and statusReason: one pod list per namespace, not per job.

        A namespace whose pods this identity may not list (RBAC confined to some projects) keeps the
        workload's own status and an empty reason rather than failing the whole list.
        """
        pods_by_namespace: dict[str, list[dict] | None] = {}
        for namespace in sorted({(w.get("metadata") or {}).get("namespace", "") for w in workloads}):
            try:
                pods_by_namespace[namespace] = self.cluster.list(POD, namespace, label_selector=selector)
            except (Forbidden, NotFound) as exc:
                log.warning("listing without pod states in %s: %s %s", namespace, exc.message, exc.details)
                pods_by_namespace[namespace] = None
        views = []
        for workload in workloads:
            pods = pods_by_namespace[(workload.get("metadata") or {}).get("namespace", "")]
            explanation = explain_job(workload, None if pods is None else pods_of(workload, pods))
            view = job_view(workload)
            view.update(status=explanation.status, statusReason=explanation.reason)
            views.append(view)
        return views

    # --- suspend and resume ------------------------------------------------------------------------

    def suspend_job(self, project: str, name: str) -> dict:
        """Set ``spec.suspend``: the job controller removes the job's pods. Idempotent."""
        return self._set_suspend(project, name, True)

    def resume_job(self, project: str, name: str) -> dict:
        """Clear ``spec.suspend``: the job controller creates its pods again. Idempotent."""
        return self._set_suspend(project, name, False)

    def _set_suspend(self, project: str, name: str, suspend: bool) -> dict:
        namespace = self._existing_namespace(project)
        workload = self._workload(namespace, project, name)
        finished = explain_job(workload, None)
        if finished.status in (SUCCEEDED, FAILED):
            raise JobFinished(project, name, finished.status, "suspend" if suspend else "resume")
        if bool((workload.get("spec") or {}).get("suspend")) != suspend:
            # https://kubernetes.io/docs/concepts/workloads/controllers/job/#suspending-a-job
            patched = self.cluster.patch(namespace, self.cluster.workload_kind(), name, {"spec": {"suspend": suspend}})
            if patched is None:
                raise JobNotFound(project, name)
            workload = patched
        return self._describe(workload)

    # --- logs --------------------------------------------------------------------------------------

    def open_job_log(self, project: str, name: str, request: LogRequest) -> OpenLog:
        """Open the log of the job's newest started pod (or of ``request.pod``); NoLogYet when none started."""
        namespace = self._existing_namespace(project)
        workload = self._workload(namespace, project, name)
        pods = self._pods(workload)
        if request.pod is not None:
            pod = next((p for p in pods if p["metadata"]["name"] == request.pod), None)
            if pod is None:
                raise NotFound(f"Job {name!r} in project {project!r} has no pod {request.pod!r}.",
                               details="The job view lists its pods.")
            if started_at(pod) is None:
                reason, message = pod_explanation(pod)
                raise NoLogYet(project, name, Explanation(PENDING, reason, message), pod=request.pod)
        else:
            pod = next((p for p in pods if started_at(p) is not None), None)
            if pod is None:
                raise NoLogYet(project, name, explain_job(workload, pods, self._events(workload, pods)))
        pod_name = pod["metadata"]["name"]
        containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
        container = request.container or (containers[0] if containers else name)
        if container not in containers:
            raise NotFound(f"Pod {pod_name!r} of job {name!r} has no container {container!r}.",
                           details=f"Its containers: {', '.join(containers)}.")
        max_seconds = self.settings.log_follow_max_seconds
        # While following, the container may print nothing for a long time: only the deadline ends the read.
        read_timeout = max_seconds + self.settings.request_timeout if request.follow else self.settings.request_timeout
        stream = self.cluster.open_log(namespace, pod_name, container=container, follow=request.follow,
                                       tail_lines=request.tail, previous=request.previous, read_timeout=read_timeout)
        return OpenLog(pod_name, container, stream, max_seconds)

    # --- reads -------------------------------------------------------------------------------------

    def _pods(self, workload: dict) -> list[dict]:
        """The workload's pods, newest first: one list call by the job's labels."""
        meta = workload["metadata"]
        selector = f"{JOB_SELECTOR},release={meta['name']}"
        return pods_of(workload, self.cluster.list(POD, meta["namespace"], label_selector=selector))

    def _events(self, workload: dict, pods: list[dict]) -> list[dict]:
        """Events of the workload and of its newest pods, by uid: never those of an earlier job of that name."""
        namespace = workload["metadata"]["namespace"]
        subjects = [workload, *pods[:PODS_WITH_EVENTS]]
        events: list[dict] = []
        for subject in subjects:
            # https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/
            events += self.cluster.list(EVENT, namespace, field_selector=f"involvedObject.uid={subject['metadata']['uid']}")
        return events


# --- streaming a log within its deadline ------------------------------------------------------------------


class BoundedLog:
    """The log's chunks, ended at ``opened.max_seconds`` at the latest, whatever the container does.

    A watchdog thread interrupts the read at the deadline (a quiet container would otherwise block it), and
    until then calls ``heartbeat`` every ``tick_seconds``: a sync gunicorn worker only tells its master it is
    alive between requests, and would be killed as hung by a followed log longer than its timeout.

    An iterator with ``close`` (which WSGI servers call when the client goes away or the body is sent) rather
    than a generator: a generator never started would not run its ``finally`` on close, and the upstream
    connection would stay open.
    """

    def __init__(self, opened: OpenLog, *, heartbeat: Callable[[], None] | None = None,
                 tick_seconds: float = 1.0) -> None:
        self._opened = opened
        self._chunks = iter(opened.stream)
        self._heartbeat = heartbeat
        self._tick = tick_seconds
        self._deadline = time.monotonic() + opened.max_seconds
        self._done = threading.Event()
        self._closed = False
        self._end = "client_gone"
        LOG_STREAMS_ACTIVE.inc()
        threading.Thread(target=self._watchdog, name=f"log-deadline-{opened.pod}", daemon=True).start()

    def _watchdog(self) -> None:
        while not self._done.wait(max(0.0, min(self._tick, self._deadline - time.monotonic()))):
            if time.monotonic() >= self._deadline:
                self._opened.stream.interrupt()
                return
            if self._heartbeat is not None:
                self._heartbeat()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except StopIteration:
            stream = self._opened.stream
            self._end = "deadline" if stream.interrupted else "error" if stream.broken else "eof"
            self.close()
            raise
        except BaseException:
            self._end = "error"
            self.close()
            raise

    def close(self) -> None:
        """Stop the watchdog and give the upstream connection back; counted once, however often called."""
        if self._closed:
            return
        self._closed = True
        self._done.set()
        self._opened.stream.close()
        LOG_STREAMS_ACTIVE.dec()
        LOG_STREAMS.labels(self._end).inc()
        if self._end == "deadline":
            log.info("log of pod %s ended at the %gs limit", self._opened.pod, self._opened.max_seconds)
