"""The service's gunicorn worker: gthread that takes a new connection only while one of its threads is free.

Every worker of a replica polls the one listening socket, and gunicorn's gthread worker accepts whenever that
socket is readable, busy or not. A connection stays with the worker that accepted it for as long as it is kept
alive (a load balancer keeps its connections to the pods for minutes), so a burst of new connections can pile
onto one worker, whose two threads then serve them in turn while another worker idles: the benchmark saw 8
kept-alive connections split ``[6, 2, 0]`` and ``[4, 4, 0]`` over 3 workers. Taking a new connection only
with a free thread leaves it to a worker that can serve it at once; when every thread of every worker is busy,
it waits in the listen backlog, as it would have waited in a busy worker's queue, and the first worker to free
a thread takes it.
"""
from __future__ import annotations

from typing import Any

from gunicorn.workers.gthread import ThreadWorker


class BalancedThreadWorker(ThreadWorker):
    """``gthread``, accepting only while fewer requests are in its threads than it has threads.

    ``in_flight`` counts the connections handed to the thread pool and not yet finished (a new one, or a
    kept-alive one with its next request); all three methods run on the worker's main thread, so the count
    needs no lock.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = 0

    def has_free_thread(self) -> bool:
        return self.in_flight < self.cfg.threads

    def set_accept_enabled(self, enabled: bool) -> None:
        # gthread's loop re-enables accepting on every turn while it holds fewer connections than
        # worker_connections; a worker without a free thread keeps the listening socket out of its poller.
        super().set_accept_enabled(enabled and self.has_free_thread())

    def enqueue_req(self, conn: Any) -> None:
        self.in_flight += 1
        if not self.has_free_thread():
            self.set_accept_enabled(False)
        super().enqueue_req(conn)

    def finish_request(self, conn: Any, fs: Any) -> None:
        self.in_flight -= 1
        try:
            super().finish_request(conn, fs)
        finally:
            # A stopping worker accepts nothing more (gthread's run() has switched accepting off for good).
            self.set_accept_enabled(self.alive and self.nr_conns < self.worker_connections)
