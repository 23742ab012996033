"""gunicorn settings, from the environment. See README "Operating" for the reasons behind each default."""
import logging
import os
import shutil
import tempfile

from gunicorn.glogging import Logger

_env = os.environ.get

bind = _env("RUNAI_SUBMIT_BIND", f"0.0.0.0:{_env('RUNAI_SUBMIT_PORT', '8080')}")
# gthread workers, 3 x 2 threads: chosen by measurement against the real control plane (issue 13, README
# "Performance"): with the same CPU per submit and the same tail as 3 sync workers, 12-13 % more submits per
# second at concurrency 8 and 32, because a kept-alive connection (a load balancer's, a client's) stays open,
# where a sync worker closes every one. Six submits in flight per replica, each thread waiting on the API
# server without holding the others; against a slow API server raise RUNAI_SUBMIT_THREADS or WEB_CONCURRENCY.
worker_class = _env("RUNAI_SUBMIT_WORKER_CLASS", "gthread")
workers = int(_env("WEB_CONCURRENCY", "3"))
threads = int(_env("RUNAI_SUBMIT_THREADS", "2"))
# A worker silent this long is killed; a submit is bounded far below this by the API call timeouts.
timeout = int(_env("RUNAI_SUBMIT_WORKER_TIMEOUT", "60"))
# On SIGTERM a worker stops accepting and finishes the submits in flight (each one completes or rolls
# back). A submit normally takes milliseconds; the worst case, every call of a maximal job waiting out its
# connect + request timeout, is about (objects * 2) * 12 s = 96 s with the defaults (README "Scale").
graceful_timeout = int(_env("RUNAI_SUBMIT_GRACEFUL_TIMEOUT", "45"))
keepalive = int(_env("RUNAI_SUBMIT_KEEPALIVE", "5"))
worker_tmp_dir = _env("RUNAI_SUBMIT_WORKER_TMP_DIR") or None
# The service logs one JSON line per request itself (with the request id); gunicorn's would repeat it.
accesslog = None


class ServiceLogger(Logger):
    """gunicorn's logger without its access log, which the service writes itself (runai_submit.api.observability).

    With ``logconfig_dict`` set, gunicorn builds every request's access-log atoms and hands them to the
    ``gunicorn.access`` logger, whose lines go nowhere (no handler, see below): about 3 % of a submit's CPU.
    """

    def access(self, resp, req, environ, request_time):  # noqa: ARG002 - gunicorn's signature
        return None


logger_class = ServiceLogger

# No log line of the service shows the source file, line, thread or process of the call that logged it (see
# the formats above and runai_submit.app.configure_logging), so the workers need not look them up for each
# record: https://docs.python.org/3/howto/logging.html#optimization (set here, before the workers fork).
logging._srcfile = None
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False
errorlog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "pythonjsonlogger.json.JsonFormatter",
                            "fmt": "{levelname}{name}{message}", "style": "{", "timestamp": "time",
                            "rename_fields": {"levelname": "level", "name": "logger"}}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    # The root logger is the application's (JSON, with request ids); see runai_submit.app.configure_logging.
    "root": {"level": "INFO", "handlers": []},
    "loggers": {"gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
                "gunicorn.access": {"handlers": [], "level": "INFO", "propagate": False}},
}

# Prometheus multiprocess mode: every worker writes its samples under one folder, /metrics merges them.
# The folder must exist and be empty before the workers start, and be known before prometheus_client loads.
_own_metrics_dir = not _env("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="runai-submit-metrics-")


def on_starting(server):
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder, exist_ok=True)


def on_exit(server):
    if _own_metrics_dir:  # a folder we made up ourselves is ours to remove; a configured one is not
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def post_worker_init(worker):
    """Job insight: hand the app this worker's heartbeat. A sync worker tells the master it is alive only
    between requests, so a followed log longer than ``timeout`` would get it killed as hung; the log stream
    beats this heartbeat until RUNAI_SUBMIT_LOG_FOLLOW_MAX_SECONDS, then ends (runai_submit.service.insight)."""
    extensions = getattr(worker.wsgi, "extensions", None)
    if extensions is not None:
        extensions["runai_submit.heartbeat"] = worker.notify


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# gunicorn's control socket lives in $HOME: it would clash between instances on one host and needs a
# writable home (the image's root filesystem is read-only). Nothing here uses it.
control_socket_disable = _env("RUNAI_SUBMIT_CONTROL_SOCKET", "off") != "on"
