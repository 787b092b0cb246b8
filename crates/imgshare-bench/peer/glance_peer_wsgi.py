"""Glance's WSGI application with writes taken one at a time.

Glance on SQLite reads a row and then updates it in one deferred transaction.
When two such transactions overlap, SQLite refuses the second one's upgrade to a
write lock at once, without waiting (the busy timeout does not apply, since
waiting could deadlock), and Glance answers 500 "database is locked": about a
third of PATCHes from 16 concurrent connections failed that way. Production
Glance runs on MySQL, whose row locks make such writers wait. An exclusive
flock around each request that may write gives SQLite the same: writers wait
their turn across every gunicorn process, while reads (GET, HEAD, OPTIONS) run
concurrently as before. Glance's own code and configuration are unchanged.
"""

import fcntl
import os

from glance.wsgi.api import application as glance_application

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOCK_PATH = os.environ["GLANCE_PEER_WRITE_LOCK"]


def application(environ, start_response):
    if environ.get("REQUEST_METHOD", "GET") in READ_METHODS:
        return glance_application(environ, start_response)
    # A new open file description per request: flock then excludes other
    # threads of this process as well as the other processes.
    with open(LOCK_PATH, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = glance_application(environ, start_response)
        try:
            # The transaction may end only as the body is produced; keep the
            # lock until then. Write responses are small JSON documents.
            body = list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    return body
