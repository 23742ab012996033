"""Job insight end to end through the fake API server: the job view, the list's statusReason, logs, suspend and
resume, for both workload kinds. The fake plays the job controller (``job_controller = True``), the scheduler
(``bind_pod``) and the kubelet (pod statuses and logs) where a test needs them.
"""
from __future__ import annotations

import logging
import threading

import pytest
from prometheus_client import REGISTRY

from runai_submit.api.insight import HEARTBEAT
from runai_submit.app import create_app
from runai_submit.service.insight import PODS_WITH_EVENTS, BoundedLog, OpenLog
from tests.conftest import SEED_JOB, TEAM_A, TEAM_B, make_app, submit

USER = {"RA-USER": "john"}
NO_NODES = "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."
QUOTA = ('Error creating: pods "x" is forbidden: exceeded quota: q, requested: pods=1, used: pods=0, '
         "limited: pods=0")


class Env:
    """The app (client) in front of a fake API server that runs the job controller, with its workload kind."""

    def __init__(self, client, fake, kind: str) -> None:
        self.client, self.fake, self.kind = client, fake, kind

    def submit(self, name: str, project: str = "team-a", **job):
        response = submit(self.client, {**SEED_JOB, "name": name, "project": project, **job})
        assert response.status_code == 200, response.json
        return response.json

    def pods(self, job: str, namespace: str = TEAM_A) -> list[dict]:
        return sorted((p for p in self.fake.objects("Pod", namespace) if p["metadata"]["labels"]["release"] == job),
                      key=lambda p: p["metadata"]["name"])

    def pod(self, job: str, namespace: str = TEAM_A) -> str:
        (pod,) = self.pods(job, namespace)
        return pod["metadata"]["name"]

    def run(self, pod: str, namespace: str = TEAM_A, *, container: str | None = None, log: str = "") -> None:
        """Schedule the pod and start its container, as the scheduler and the kubelet would."""
        self.fake.bind_pod(namespace, pod, "gpu-1")
        self.fake.set_status("Pod", namespace, pod, running(container or pod.rsplit("-", 1)[0]))
        if log:
            self.fake.set_pod_log(namespace, pod, log)

    def view(self, job: str, project: str = "team-a") -> dict:
        response = self.client.get(f"/api/v1/job/{project}/{job}")
        assert response.status_code == 200, response.json
        return response.json

    def calls(self) -> list[tuple[str, str, dict]]:
        return list(self.fake.requests)


def container(name: str, state: dict, **extra) -> dict:
    return {"name": name, "image": "busybox", "imageID": "", "ready": "running" in state, "restartCount": 0,
            "state": state, **extra}


def running(name: str) -> dict:
    return {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [container(name, {"running": {"startedAt": "2026-01-01T10:00:00Z"}})]}


def finished(name: str, code: int = 0) -> dict:
    reason = "Completed" if code == 0 else "Error"
    return {"phase": "Succeeded" if code == 0 else "Failed", "containerStatuses": [container(name, {"terminated": {
        "exitCode": code, "reason": reason, "startedAt": "2026-01-01T10:00:00Z",
        "finishedAt": "2026-01-01T10:01:00Z"}})]}


@pytest.fixture(params=["RunaiJob", "Job"])
def env(request) -> Env:
    if request.param == "RunaiJob":
        client, fake = request.getfixturevalue("client"), request.getfixturevalue("fake_api")
    else:
        client, fake = request.getfixturevalue("batch_client"), request.getfixturevalue("fake_batch_api")
    fake.job_controller = True
    yield Env(client, fake, request.param)
    fake.job_controller = False


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- the job view ------------------------------------------------------------------------------------------


def test_job_view_explains_a_pod_no_scheduler_has_taken(env):
    env.submit("train")
    pod = env.pod("train")

    view = env.view("train")

    assert (view["status"], view["statusReason"]) == ("Pending", "WaitingForScheduler")
    assert "'runai-scheduler'" in view["statusMessage"] and pod in view["statusMessage"]
    assert view["uid"] == env.fake.get_object(env.kind, TEAM_A, "train")["metadata"]["uid"]
    assert view["pods"] == [{"name": pod, "phase": "Pending", "node": "", "ready": False, "restarts": 0,
                             "reason": "WaitingForScheduler", "message": view["statusMessage"], "startedAt": None,
                             "exitCode": None}]
    assert [(e["type"], e["reason"], e["message"], e["object"], e["count"]) for e in view["events"]] == [
        ("Normal", "SuccessfulCreate", f"Created pod: {pod}", f"{env.kind}/train", 1)]
    assert isinstance(view["events"][0]["lastSeen"], int)


def test_job_view_gives_the_scheduler_message_and_its_events_newest_first(env):
    env.submit("train")
    pod = env.pod("train")
    env.fake.set_status("Pod", TEAM_A, pod, {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": NO_NODES}]})
    (stored,) = env.pods("train")
    env.fake.add_event(TEAM_A, stored, "FailedScheduling", NO_NODES, type="Warning", component="default-scheduler",
                       count=None, event_time="2099-01-01T00:00:00.500000Z",
                       series={"count": 4, "lastObservedTime": "2099-01-01T00:03:00.000000Z"})

    view = env.view("train")

    assert (view["status"], view["statusReason"], view["statusMessage"]) == ("Pending", "Unschedulable", NO_NODES)
    newest = view["events"][0]
    assert (newest["reason"], newest["object"], newest["count"], newest["type"]) == (
        "FailedScheduling", f"Pod/{pod}", 4, "Warning")
    assert newest["lastSeen"] == 4070908980000
    assert [e["reason"] for e in view["events"]] == ["FailedScheduling", "SuccessfulCreate"]


def test_job_view_reports_the_controller_failing_to_create_pods(env):
    env.fake.job_controller = False   # as under a quota of pods: 0, no pod is ever created
    env.submit("train")
    # A controller is at work (it has a status to report: none of its pods yet); a new RunaiJob has no status
    # of its own, as on a real cluster, where only its controller writes one.
    env.fake.set_status(env.kind, TEAM_A, "train", {})
    workload = env.fake.get_object(env.kind, TEAM_A, "train")
    env.fake.add_event(TEAM_A, workload, "FailedCreate", QUOTA, type="Warning", component="job-controller")

    view = env.view("train")

    assert (view["status"], view["statusReason"], view["statusMessage"]) == ("Pending", "FailedCreate", QUOTA)
    assert view["pods"] == []


def test_job_view_of_a_running_then_finished_job(env):
    env.submit("train")
    pod = env.pod("train")
    env.run(pod)
    view = env.view("train")
    assert (view["status"], view["statusReason"], view["statusMessage"]) == ("Running", "", "")
    assert view["pods"][0]["ready"] is True and view["pods"][0]["node"] == "gpu-1"
    assert view["pods"][0]["startedAt"] == 1767261600000

    env.fake.set_status("Pod", TEAM_A, pod, finished("train", 0))
    env.fake.set_status(env.kind, TEAM_A, "train", {"succeeded": 1, "conditions": [
        {"type": "Complete", "status": "True"}]})
    view = env.view("train")
    assert (view["status"], view["statusReason"]) == ("Succeeded", "Completed")
    assert (view["pods"][0]["phase"], view["pods"][0]["exitCode"]) == ("Succeeded", 0)


def test_job_view_ignores_events_of_an_earlier_job_of_the_same_name(env):
    env.fake.job_controller = False
    env.submit("train")
    earlier = {"kind": env.kind, "name": "train", "uid": "uid-of-an-earlier-train", "namespace": TEAM_A}
    env.fake.add_event(TEAM_A, earlier, "FailedCreate", QUOTA, type="Warning")
    view = env.view("train")
    assert (view["statusReason"], view["events"]) == ("", [])


def test_job_view_costs_a_bounded_number_of_api_calls(env):
    def cost(name: str, pods: int) -> list[tuple[str, str]]:
        env.submit(name, parallelism=pods, completions=pods)
        assert len(env.pods(name)) == pods
        env.fake.clear_requests()
        env.view(name)
        return [(method, path) for method, path, _ in env.calls()]

    one, many, more = cost("one", 1), cost("many", PODS_WITH_EVENTS + 1), cost("more", 20)
    assert len(one) == 5   # namespace, workload, pods, events of the workload and of its pod
    assert len(many) == len(more) == 4 + PODS_WITH_EVENTS
    assert all(method == "GET" for method, _ in more)
    assert sum(path.endswith("/events") for _, path in more) == 1 + PODS_WITH_EVENTS


def test_job_view_of_unknown_job_project_and_invalid_names(env):
    assert env.client.get("/api/v1/job/team-a/nope").status_code == 404
    unknown_project = env.client.get("/api/v1/job/nope/train")
    assert unknown_project.status_code == 404 and "nope" in unknown_project.json["message"]
    assert env.client.get("/api/v1/job/team-a/Not_A_Name").status_code == 422  # the path pattern (README)
    assert env.client.get("/api/v1/job/Team_A/train").status_code == 422


# --- the list ----------------------------------------------------------------------------------------------


def test_list_adds_status_reason_with_one_pod_list_per_namespace(env):
    def listing() -> tuple[dict, list[tuple[str, str]]]:
        env.fake.clear_requests()
        response = env.client.get("/api/job")
        assert response.status_code == 200, response.json
        return ({job["name"]: (job["status"], job["statusReason"]) for job in response.json["data"]},
                [(method, path) for method, path, _ in env.calls()])

    env.submit("a-0")
    env.submit("b-0", project="team-b")
    _, calls_for_two = listing()

    for index in range(1, 6):
        env.submit(f"a-{index}")
        env.submit(f"b-{index}", project="team-b")
    env.run(env.pod("a-1"))
    env.fake.set_status("Pod", TEAM_B, env.pod("b-1", TEAM_B), {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": NO_NODES}]})
    jobs, calls_for_twelve = listing()

    assert jobs["a-1"] == ("Running", "")
    assert jobs["b-1"] == ("Pending", "Unschedulable")
    assert jobs["a-2"] == ("Pending", "WaitingForScheduler")
    assert len(jobs) == 12
    # one list of the workloads, and one of the pods per namespace listed: never one per job
    assert sorted(calls_for_twelve) == sorted(calls_for_two)
    assert sorted(path for _, path in calls_for_twelve if path.endswith("/pods")) == [
        f"/api/v1/namespaces/{TEAM_A}/pods", f"/api/v1/namespaces/{TEAM_B}/pods"]
    assert len(calls_for_twelve) == 3


def test_list_of_one_project_costs_one_pod_list(env):
    for index in range(4):
        env.submit(f"job-{index}")
    env.fake.clear_requests()
    response = env.client.get("/api/v1/job/team-a")
    assert response.status_code == 200
    assert [path for _, path, _ in env.calls() if path.endswith("/pods")] == [f"/api/v1/namespaces/{TEAM_A}/pods"]
    assert {job["statusReason"] for job in response.json["data"]} == {"WaitingForScheduler"}


def test_list_where_pods_may_not_be_read_keeps_the_workload_status(env, caplog):
    env.submit("train")
    env.fake.set_status(env.kind, TEAM_A, "train", {"active": 1, "ready": 1})
    env.fake.fail_request(verb="list", kind="Pod", status=403)
    with caplog.at_level(logging.WARNING, logger="runai_submit.service.insight"):
        response = env.client.get("/api/job?project=team-a")
    assert response.status_code == 200
    assert [(j["name"], j["status"], j["statusReason"]) for j in response.json["data"]] == [("train", "Running", "")]
    assert "listing without pod states" in caplog.text


def test_list_fails_honestly_when_the_cluster_does_not_answer_for_pods(env):
    env.submit("train")
    env.fake.fail_request(verb="list", kind="Pod", status=503, times=5)
    response = env.client.get("/api/job?project=team-a")
    assert response.status_code == 503 and response.headers["Retry-After"]


# --- logs --------------------------------------------------------------------------------------------------


def test_logs_of_an_unknown_job_is_404(env):
    response = env.client.get("/api/v1/job/team-a/nope/logs")
    assert response.status_code == 404 and response.json["message"] == "Job 'nope' does not exist in project 'team-a'."


def test_logs_of_a_job_whose_pod_never_started_is_409_with_the_reason(env):
    env.submit("train")
    env.fake.clear_requests()
    response = env.client.get("/api/v1/job/team-a/train/logs")
    assert response.status_code == 409
    view = env.view("train")
    assert response.json["message"] == f"WaitingForScheduler: {view['statusMessage']}"
    assert "no container that ever started" in response.json["details"]
    assert not [path for _, path, _ in env.calls() if path.endswith("/log")], "no log was asked for"


def test_logs_of_a_job_without_any_pod_say_why(env):
    env.fake.job_controller = False
    env.submit("train")
    env.fake.add_event(TEAM_A, env.fake.get_object(env.kind, TEAM_A, "train"), "FailedCreate", QUOTA, type="Warning")
    response = env.client.get("/api/v1/job/team-a/train/logs")
    assert (response.status_code, response.json["message"]) == (409, f"FailedCreate: {QUOTA}")


def test_logs_are_plain_text_with_tail_and_name_what_they_show(env):
    env.submit("train")
    pod = env.pod("train")
    env.run(pod, log="epoch 1\nepoch 2\nepoch 3\n")

    response = env.client.get("/api/v1/job/team-a/train/logs?tail=2")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.data == b"epoch 2\nepoch 3\n"
    assert (response.headers["X-Pod-Name"], response.headers["X-Container-Name"]) == (pod, "train")
    assert response.headers["X-Log-Max-Seconds"] == "300"
    assert env.client.get("/api/v1/job/team-a/train/logs").data == b"epoch 1\nepoch 2\nepoch 3\n"
    assert env.client.get("/api/v1/job/team-a/train/logs?tail=0").data == b""


def test_logs_default_to_the_newest_pod_that_started(env):
    env.submit("train")
    first = env.pod("train")
    env.run(first, log="from the first pod\n")
    env.fake.set_status("Pod", TEAM_A, first, finished("train", 1))
    env.fake.age_object("Pod", TEAM_A, first, 60)
    env.fake.set_status(env.kind, TEAM_A, "train", {"failed": 1})
    env.fake.resync_job(TEAM_A, env.kind, "train")   # the controller's retry: a new pod for the failed one
    second = next(p["metadata"]["name"] for p in env.pods("train") if p["metadata"]["name"] != first)

    response = env.client.get("/api/v1/job/team-a/train/logs")
    assert (response.status_code, response.data, response.headers["X-Pod-Name"]) == (
        200, b"from the first pod\n", first)

    explicit = env.client.get(f"/api/v1/job/team-a/train/logs?pod={second}")
    assert explicit.status_code == 409 and explicit.json["message"].startswith("WaitingForScheduler: ")
    assert second in explicit.json["details"]
    view = env.view("train")
    assert [p["name"] for p in view["pods"]] == [second, first]


def test_logs_of_the_previous_instance_and_when_there_is_none(env):
    env.submit("train")
    pod = env.pod("train")
    env.run(pod, log="now\n")
    response = env.client.get("/api/v1/job/team-a/train/logs?previous=true")
    assert response.status_code == 409
    assert "previous terminated container" in response.json["details"]

    status = running("train")
    status["containerStatuses"][0]["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error",
                                                                  "startedAt": "2026-01-01T09:00:00Z"}}
    env.fake.set_status("Pod", TEAM_A, pod, status)
    env.fake.set_pod_log(TEAM_A, pod, "before\n", previous=True)
    assert env.client.get("/api/v1/job/team-a/train/logs?previous=true").data == b"before\n"


@pytest.mark.parametrize("query, status, words", [
    ("tail=-1", 400, "tail"), ("tail=ten", 400, "tail"), ("tail=1000001", 400, "tail"), ("tail=" + "9" * 5000, 400, "tail"),
    ("tail=%D9%A3", 400, "tail"),
    ("follow=maybe", 400, "follow"), ("previous=2", 400, "previous"),
    ("pod=Bad_Name", 400, "pod"), ("container=a/b", 400, "container"),
    ("pod=train-zzzzz", 404, "has no pod 'train-zzzzz'"), ("container=sidecar", 404, "no container 'sidecar'"),
])
def test_log_parameters_are_checked(env, query, status, words):
    env.submit("train")
    env.run(env.pod("train"), log="x\n")
    response = env.client.get(f"/api/v1/job/team-a/train/logs?{query}")
    assert response.status_code == status, response.json
    assert words in response.json["message"]


def test_follow_streams_what_is_printed_until_the_pod_ends(env):
    env.submit("train")
    pod = env.pod("train")
    env.run(pod, log="line 1\n")

    response = env.client.get("/api/v1/job/team-a/train/logs?follow=true", buffered=False)
    chunks = iter(response.response)
    assert next(chunks) == b"line 1\n"   # here before the pod printed anything more: nothing is preloaded
    env.fake.append_pod_log(TEAM_A, pod, "line 2\n")
    assert next(chunks) == b"line 2\n"
    ends = counter("runai_submit_log_streams_total", end="eof")
    env.fake.append_pod_log(TEAM_A, pod, "line 3\n")
    env.fake.set_status("Pod", TEAM_A, pod, finished("train"))
    assert b"".join(chunks) == b"line 3\n"
    response.close()
    assert counter("runai_submit_log_streams_total", end="eof") == ends + 1


def test_follow_ends_at_the_limit_even_when_the_container_is_quiet(env, tmp_path):
    client = make_app(env.fake, tmp_path, log_follow_max_seconds=0.5).test_client()
    env.submit("train")
    env.run(env.pod("train"), log="only line\n")
    before = counter("runai_submit_log_streams_total", end="deadline")

    response = client.get("/api/v1/job/team-a/train/logs?follow=true")   # buffered: returns when the stream ends

    assert response.status_code == 200
    assert response.data == b"only line\n"
    assert response.headers["X-Log-Max-Seconds"] == "0.5"
    assert counter("runai_submit_log_streams_total", end="deadline") == before + 1


def test_a_client_that_goes_away_releases_the_stream(env):
    env.submit("train")
    env.run(env.pod("train"), log="hello\n")
    active = counter("runai_submit_log_streams_active")
    gone = counter("runai_submit_log_streams_total", end="client_gone")

    response = env.client.get("/api/v1/job/team-a/train/logs?follow=true", buffered=False)
    assert next(iter(response.response)) == b"hello\n"
    assert counter("runai_submit_log_streams_active") == active + 1
    response.close()

    assert counter("runai_submit_log_streams_active") == active
    assert counter("runai_submit_log_streams_total", end="client_gone") == gone + 1


class QuietStream:
    """A log stream whose container prints nothing: its read blocks until it is interrupted."""

    def __init__(self) -> None:
        self.interrupted = self.broken = self.closed = False
        self._stop = threading.Event()

    def __iter__(self):
        yield b"started\n"
        self._stop.wait(60)

    def interrupt(self) -> None:
        self.interrupted = True
        self._stop.set()

    def close(self) -> None:
        self.closed = True


def test_bounded_log_beats_the_heartbeat_until_the_deadline_then_interrupts():
    beats: list[float] = []
    stream = QuietStream()
    chunks = list(BoundedLog(OpenLog("p", "c", stream, max_seconds=0.6), heartbeat=lambda: beats.append(1),
                              tick_seconds=0.05))
    assert chunks == [b"started\n"]
    assert stream.interrupted and stream.closed
    assert len(beats) >= 2, "the worker's heartbeat was not kept while streaming"
    for watchdog in [t for t in threading.enumerate() if t.name == "log-deadline-p"]:
        watchdog.join(10)
        assert not watchdog.is_alive(), "the heartbeat goes on after the stream ended"


def test_a_log_closed_before_its_first_chunk_still_releases_the_upstream_stream():
    stream = QuietStream()
    active = counter("runai_submit_log_streams_active")
    log = BoundedLog(OpenLog("early", "c", stream, max_seconds=60))
    assert counter("runai_submit_log_streams_active") == active + 1
    log.close()
    log.close()
    assert stream.closed and not stream.interrupted
    assert counter("runai_submit_log_streams_active") == active


def test_the_log_view_uses_the_heartbeat_gunicorn_hands_the_app(env, tmp_path):
    app = make_app(env.fake, tmp_path, log_follow_max_seconds=2.5)
    beats: list[int] = []
    app.extensions[HEARTBEAT] = lambda: beats.append(1)
    env.submit("train")
    env.run(env.pod("train"), log="x\n")
    response = app.test_client().get("/api/v1/job/team-a/train/logs?follow=true")   # a quiet container
    assert response.data == b"x\n"
    assert len(beats) >= 1   # beaten every second until the limit


# --- suspend and resume ------------------------------------------------------------------------------------


def test_suspend_removes_the_pods_and_answers_suspended_then_resume_brings_them_back(env, caplog):
    env.submit("train")
    (first,) = env.pods("train")

    with caplog.at_level(logging.INFO, logger="runai_submit.audit"):
        suspended = env.client.post("/api/v1/job/team-a/train/suspend", headers=USER)
    assert suspended.status_code == 200, suspended.json
    assert (suspended.json["status"], suspended.json["statusReason"]) == ("Suspended", "Suspended")
    assert suspended.json["pods"] == [] and env.pods("train") == []
    assert [e["reason"] for e in suspended.json["events"]][:2] == ["Suspended", "SuccessfulDelete"]
    assert env.fake.get_object(env.kind, TEAM_A, "train")["spec"]["suspend"] is True
    record = next(r for r in caplog.records if getattr(r, "event", None) == "suspend")
    assert (record.user, record.project, record.job, record.status, record.outcome, record.job_status) == (
        "john", "team-a", "train", 200, "ok", "Suspended")

    with caplog.at_level(logging.INFO, logger="runai_submit.audit"):
        resumed = env.client.post("/api/v1/job/team-a/train/resume", headers=USER)
    assert resumed.status_code == 200
    assert (resumed.json["status"], resumed.json["statusReason"]) == ("Pending", "WaitingForScheduler")
    (second,) = env.pods("train")
    assert second["metadata"]["name"] != first["metadata"]["name"]
    assert [p["name"] for p in resumed.json["pods"]] == [second["metadata"]["name"]]
    assert any(getattr(r, "event", None) == "resume" and r.status == 200 for r in caplog.records)


def test_suspend_and_resume_are_idempotent(env):
    env.submit("train")
    env.fake.clear_requests()
    first = env.client.post("/api/v1/job/team-a/train/suspend", headers=USER)
    again = env.client.post("/api/v1/job/team-a/train/suspend", headers=USER)
    assert first.status_code == again.status_code == 200
    assert first.json["status"] == again.json["status"] == "Suspended"
    assert [method for method, _, _ in env.calls()].count("PATCH") == 1   # the second one had nothing to change
    env.client.post("/api/v1/job/team-a/train/resume", headers=USER)
    twice = env.client.post("/api/v1/job/team-a/train/resume", headers=USER)
    assert twice.status_code == 200 and len(env.pods("train")) == 1
    assert [method for method, _, _ in env.calls()].count("PATCH") == 2


def test_a_suspended_job_is_listed_as_suspended_and_deletes_as_usual(env):
    env.submit("train")
    env.client.post("/api/v1/job/team-a/train/suspend", headers=USER)
    listed = env.client.get("/api/job?project=team-a").json["data"]
    assert [(j["status"], j["statusReason"]) for j in listed] == [("Suspended", "Suspended")]
    deleted = env.client.delete("/api/job", json=[{"name": "train", "project": "team-a"}], headers=USER)
    assert deleted.status_code == 200 and deleted.json[0]["ok"] is True
    assert env.fake.get_object(env.kind, TEAM_A, "train") is None


@pytest.mark.parametrize("action", ["suspend", "resume"])
def test_suspend_and_resume_refusals(env, action):
    env.submit("train")
    assert env.client.post(f"/api/v1/job/team-a/train/{action}").status_code == 401
    assert env.client.post(f"/api/v1/job/team-a/nope/{action}", headers=USER).status_code == 404
    assert env.client.post(f"/api/v1/job/nope/train/{action}", headers=USER).status_code == 404
    env.fake.set_status(env.kind, TEAM_A, "train", {"succeeded": 1, "conditions": [
        {"type": "Complete", "status": "True"}]})
    finished_job = env.client.post(f"/api/v1/job/team-a/train/{action}", headers=USER)
    assert finished_job.status_code == 409
    assert finished_job.json["message"] == (f"Job 'train' in project 'team-a' has already succeeded; there is "
                                            f"nothing to {action}.")


def test_a_job_deleted_between_read_and_patch_is_404(env):
    env.submit("train")
    env.fake.fail_request(verb="patch", kind=env.kind, status=404)
    response = env.client.post("/api/v1/job/team-a/train/suspend", headers=USER)
    assert response.status_code == 404


def test_each_insight_endpoint_has_its_own_http_metrics(env):
    env.submit("train")
    env.client.post("/api/v1/job/team-a/train/suspend", headers=USER)
    env.client.get("/api/v1/job/team-a/train/logs")
    page = env.client.get("/metrics").get_data(as_text=True)
    for endpoint, code in (("/api/v1/job/<project>/<name>/suspend", "200"), ("/api/v1/job/<project>/<name>/logs",
                                                                             "409")):
        assert f'code="{code}",endpoint="{endpoint}"' in page, endpoint


# --- the offline backend (make run) --------------------------------------------------------------------------


def test_offline_backend_has_no_pods_but_answers_every_insight_endpoint(tmp_path):
    client = create_app({"backend": "offline", "offline_dir": str(tmp_path)}).test_client()
    assert submit(client, {**SEED_JOB, "name": "train"}).status_code == 200

    view = client.get("/api/v1/job/team-a/train").json
    assert (view["status"], view["statusReason"], view["pods"], view["events"]) == ("Unknown", "", [], [])
    suspended = client.post("/api/v1/job/team-a/train/suspend", headers=USER)
    assert (suspended.status_code, suspended.json["status"]) == (200, "Suspended")
    assert "suspend: true" in (tmp_path / "runai-team-a" / "runaijobs" / "train.yaml").read_text()
    assert client.post("/api/v1/job/team-a/train/resume", headers=USER).json["status"] == "Unknown"
    logs = client.get("/api/v1/job/team-a/train/logs")
    assert logs.status_code == 409 and "no container that ever started" in logs.json["details"]
