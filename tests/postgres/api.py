"""One request to an imgshare server, for the scripts that drive several of them on one
PostgreSQL database (servers.py, tasks_servers.py)."""

import json
import sys
import urllib.error
import urllib.request


def call(base_url, token, method, path, body=None, timeout=30, label=""):
    """(status, parsed JSON or None); a refused connection or a timeout is status 0 (reported on
    stderr with `label`)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data, method=method)
    request.add_header("X-Auth-Token", token)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    except OSError as error:
        print(f"{method} {path} on {label or base_url}: {error}", file=sys.stderr)
        status, text = 0, b""
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, None
