"""gunicorn.conf.py plus a cProfile switch, for ``python -m bench.profile --tool cprofile``.

Every setting is the service's own (this file runs gunicorn.conf.py first); each worker additionally profiles
with a CPU clock (``time.process_time``) between two SIGUSR2 and writes ``$RUNAI_SUBMIT_PROFILE_DIR/cprofile.<pid>``.
"""
import cProfile
import os
import signal
import time
from pathlib import Path

_conf = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
exec(compile(_conf.read_text(), str(_conf), "exec"))  # noqa: S102 - the service's own settings

_service_post_worker_init = post_worker_init  # noqa: F821 - defined by gunicorn.conf.py


def post_worker_init(worker):  # noqa: F811
    _service_post_worker_init(worker)
    state = {"profile": None}

    def toggle(signum, frame):  # noqa: ARG001
        if state["profile"] is None:
            state["profile"] = cProfile.Profile(time.process_time)
            state["profile"].enable()
        else:
            state["profile"].disable()
            state["profile"].dump_stats(os.path.join(os.environ["RUNAI_SUBMIT_PROFILE_DIR"], f"cprofile.{os.getpid()}"))
            state["profile"] = None

    signal.signal(signal.SIGUSR2, toggle)
    signal.siginterrupt(signal.SIGUSR2, False)
