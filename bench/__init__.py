"""``make bench``: runai-submit under gunicorn against a Kubernetes API server, beside that API server alone.

Modules, in the order a run uses them:
- ``cli``: the command line, the plan, the run from start to report (``python -m bench``);
- ``micro``: validate + render in-process, µs per job;
- ``servers``: what a run starts or connects to (the kit's control plane, the fake, an external cluster,
  gunicorn), and stopping all of it;
- ``admin``: the RunaiJob CRD, a namespace per measured run, clean-up (as the cluster's administrator);
- ``runner``: one gunicorn configuration end to end; ``Bench``, what scenarios work with;
- ``scenarios``: what is measured (``floor``: service vs floor per job, issue 13's ratios); add new ones there;
- ``jobs`` / ``submits``: the jobs, the service's requests and the floor's POSTs;
- ``loadgen``: the keep-alive raw-socket HTTP/1.1 client (plain or TLS with a client certificate) and the driver;
- ``probes``: CPU (and RSS) per process group from /proc;
- ``report``: tables, ratios with PASS/FAIL, JSON, plot; ``soak``: the soak mode.
"""
from pathlib import Path

#: The project's root: where gunicorn.conf.py, wsgi.py and bench/results live.
ROOT = Path(__file__).resolve().parent.parent
