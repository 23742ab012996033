"""gunicorn settings, from the environment (RUNAI_SUBMIT_* and the usual WEB_CONCURRENCY)."""
import os

bind = os.environ.get("RUNAI_SUBMIT_BIND", f"0.0.0.0:{os.environ.get('RUNAI_SUBMIT_PORT', '8080')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("RUNAI_SUBMIT_THREADS", "4"))
timeout = int(os.environ.get("RUNAI_SUBMIT_WORKER_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("RUNAI_SUBMIT_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
accesslog = "-"
