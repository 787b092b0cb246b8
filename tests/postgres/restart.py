"""One `imgshare serve` on PostgreSQL while PostgreSQL restarts, then stops and starts again.

Usage: restart.py TOKENS_JSON SERVER_URL OUT_JSON, with the environment variables
  PG_RESTART, PG_STOP, PG_START  bash commands that restart (-m fast), stop (-m fast), start it;
  PSQL                           a shell command that runs psql on the server's database.

Writer threads create images, share each with new members and PATCH a new property onto it;
reader threads GET images and lists; a third kind polls /healthcheck. Every request goes over a
keep-alive connection of its thread and has a client timeout. Every acknowledged (2xx) write is
recorded. The main thread runs: a steady phase, `pg_ctl restart -m fast`, a steady phase, a stop,
DOWN_SECONDS down, a start, a steady phase. Then it checks:

- while PostgreSQL was down (requests begun after the stop returned and answered before the
  start began): every answer is 503 with Retry-After and the API's JSON error body, within
  DOWN_BOUND seconds, and /healthcheck is 503;
- at no moment a 500, another 5xx than 503, or a dropped connection; no request longer than
  ANY_BOUND;
- after each restart the same server answers 2xx again to writes, reads and /healthcheck within
  RECOVERY_BOUND seconds (printed);
- every acknowledged write is there, read back through the API and counted in SQL;
- an import task created after the restart runs to success.

Writes OUT_JSON with the figures. Exits 1 on any failed check. Standard library only.
"""

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

tokens_file, server_url, out_file = sys.argv[1:4]
tokens = json.load(open(tokens_file))["tokens"]
by_tenant = {identity["tenant_id"]: token for token, identity in tokens.items()}
OWNER = by_tenant["111111"]
ADMIN = by_tenant["999999"]
url = urllib.parse.urlsplit(server_url)

WRITERS = 4
READERS = 2
STEADY_SECONDS = 3.0
DOWN_SECONDS = 4.0
# While PostgreSQL is down its port is closed: each request's reconnect attempt is refused at
# once on loopback, so an answer has no reason to take long; 2 s leaves room for a loaded CI
# machine. (An unreachable host would take the driver's connect_timeout, 10 s, per attempt.)
DOWN_BOUND = 2.0
# Any request at all, also one caught mid-restart: a connect that meets a server half up is bounded
# by the connect_timeout (10 s); one more second for the rest of the request.
ANY_BOUND = 11.0
# The client's own timeout, past which a request counts as hung.
CLIENT_TIMEOUT = 30.0
RECOVERY_BOUND = 5.0
SHARES_PER_IMAGE = 5

lock = threading.Lock()
stop_event = threading.Event()
# (kind, method, path, started, ended, status, retry_after, body_ok, phase) per request.
requests = []
acked_images = set()
acked_members = set()
acked_properties = {}  # (image, key) -> value
unacked_writes = []  # (kind, key) of attempts answered 503: they may or may not have committed
committed_on_retry = []  # (kind, key) whose retry after a 503 found the first attempt committed
failures = []
phase = {"name": "steady", "since": time.monotonic()}
marks = {}


def fail(message):
    with lock:
        failures.append(message)
    print(f"FAIL: {message}", file=sys.stderr)


class Client:
    """One keep-alive connection; reopened after a drop (which is recorded as a failure)."""

    def __init__(self, kind):
        self.kind = kind
        self.conn = None

    def call(self, token, method, path, body=None, content_type="application/json"):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Connection": "keep-alive"}
        if token:
            headers["X-Auth-Token"] = token
        if data is not None:
            headers["Content-Type"] = content_type
        started = time.monotonic()
        with lock:
            at_start = phase["name"]
        status, text, retry_after = 0, b"", None
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(url.hostname, url.port,
                                                       timeout=CLIENT_TIMEOUT)
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            status, text = response.status, response.read()
            retry_after = response.getheader("Retry-After")
            if response.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
        except (OSError, http.client.HTTPException) as error:
            fail(f"{method} {path} ({at_start}): connection dropped or timed out: {error!r}")
            if self.conn is not None:
                self.conn.close()
            self.conn = None
        ended = time.monotonic()
        parsed = None
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            pass
        body_ok = False
        if status >= 400 and isinstance(parsed, dict) and len(parsed) == 1:
            (inner,) = parsed.values()
            body_ok = (isinstance(inner, dict) and inner.get("code") == status
                       and bool(inner.get("message")) and bool(inner.get("error_code")))
        with lock:
            requests.append((self.kind, method, path, started, ended, status, retry_after,
                             body_ok, at_start))
        if status >= 500 and status != 503:
            fail(f"{method} {path} ({at_start}): {status} {text[:300]!r}")
        return status, parsed, text


def ok(status):
    return 200 <= status < 300


def retried(client, kind, key, method, path, body, content_type="application/json"):
    """Sends the request until it is answered with something else than 503, as a client told
    `Retry-After` does. A 409 after a 503 means the first attempt did commit (its answer was
    lost with the connection): the retry must be refused as a duplicate, and nothing doubled."""
    first = True
    while True:
        status, parsed, _ = client.call(OWNER, method, path, body, content_type)
        if status != 503:
            break
        first = False
        with lock:
            unacked_writes.append((kind, key))
        time.sleep(0.1)
    if not first and status == 409:
        with lock:
            committed_on_retry.append((kind, key))
        return True, parsed
    if not ok(status):
        fail(f"{method} {path}: {status} {parsed}")
    return ok(status), parsed


def writer(n):
    client = Client("write")
    count = 0
    while not stop_event.is_set():
        # The id is the client's, so a retry of the same request names the same image.
        image = str(uuid.uuid4())
        count += 1
        done, _ = retried(client, "image", image, "POST", "/v2/images", {
            "id": image, "name": f"restart-{n}-{count}", "visibility": "shared",
            "container_format": "bare", "disk_format": "raw"})
        if not done:
            continue
        with lock:
            acked_images.add(image)
        for share in range(SHARES_PER_IMAGE):
            if stop_event.is_set():
                break
            member = f"m{n}x{count}x{share}"
            done, _ = retried(client, "member", (image, member), "POST",
                              f"/v2/images/{image}/members", {"member": member})
            if done:
                with lock:
                    acked_members.add((image, member))
            key, value = f"p{share}", f"v{n}-{count}-{share}"
            # JSON-patch `add` of an existing key replaces it: a retry is idempotent.
            done, _ = retried(client, "property", (image, key, value), "PATCH",
                              f"/v2/images/{image}",
                              [{"op": "add", "path": f"/{key}", "value": value}],
                              "application/openstack-images-v2.1-json-patch")
            if done:
                with lock:
                    acked_properties[(image, key)] = value


def reader(n):
    client = Client("read")
    while not stop_event.is_set():
        with lock:
            some = next(iter(acked_images), None)
        client.call(OWNER, "GET", "/v2/images?limit=5")
        if some:
            client.call(OWNER, "GET", f"/v2/images/{some}")
        time.sleep(0.02)


def health():
    client = Client("health")
    while not stop_event.is_set():
        client.call(None, "GET", "/healthcheck")
        time.sleep(0.1)


def set_phase(name):
    with lock:
        phase["name"] = name
    marks[name] = time.monotonic()
    print(f"{time.strftime('%H:%M:%S')} {name}", flush=True)


def run(command_var):
    completed = subprocess.run(os.environ[command_var], shell=True, executable="/bin/bash",
                               timeout=60, capture_output=True, text=True)
    if completed.returncode != 0:
        fail(f"{command_var} failed: {completed.stdout} {completed.stderr}")


threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
threads += [threading.Thread(target=reader, args=(n,)) for n in range(READERS)]
threads.append(threading.Thread(target=health))
set_phase("steady")
for thread in threads:
    thread.start()
time.sleep(STEADY_SECONDS)
set_phase("restarting")
run("PG_RESTART")
set_phase("restarted")
time.sleep(STEADY_SECONDS)
set_phase("stopping")
run("PG_STOP")
set_phase("down")
time.sleep(DOWN_SECONDS)
set_phase("starting")
run("PG_START")
set_phase("started")
time.sleep(STEADY_SECONDS)
set_phase("done")
stop_event.set()
for thread in threads:
    thread.join(timeout=CLIENT_TIMEOUT + 5)
    if thread.is_alive():
        fail("a client thread did not finish: a request hung")

# --- while down
down = [r for r in requests if r[3] >= marks["down"] and r[4] <= marks["starting"]]
by_kind = {kind: [r for r in down if r[0] == kind] for kind in ("write", "read", "health")}
for kind, rows in by_kind.items():
    if not rows:
        fail(f"no {kind} request was answered while PostgreSQL was down")
for kind, method, path, started, ended, status, retry_after, body_ok, _ in down:
    if status != 503:
        fail(f"while down: {method} {path} answered {status}, not 503")
    elif kind != "health" and (retry_after is None or not body_ok):
        fail(f"while down: {method} {path}: 503 without Retry-After ({retry_after!r}) "
             f"or the API's error body")
    if ended - started > DOWN_BOUND:
        fail(f"while down: {method} {path} took {ended - started:.2f} s (bound {DOWN_BOUND} s)")
down_max = max((r[4] - r[3] for r in down), default=0.0)
any_max = max((r[4] - r[3] for r in requests), default=0.0)
if any_max > ANY_BOUND:
    fail(f"a request took {any_max:.2f} s (bound {ANY_BOUND} s)")


# --- recovery: the first 2xx of each kind among requests begun after PostgreSQL was back
def recovery(since):
    times = {}
    for kind in ("write", "read", "health"):
        answered = [r[4] for r in requests if r[0] == kind and r[3] >= since and ok(r[5])]
        times[kind] = (min(answered) - since) if answered else None
        if times[kind] is None or times[kind] > RECOVERY_BOUND:
            fail(f"{kind}: no 2xx within {RECOVERY_BOUND} s of PostgreSQL being back "
                 f"(after {since:.1f}: {times[kind]})")
    return times


after_restart = recovery(marks["restarted"])
after_start = recovery(marks["started"])

# --- every acknowledged write is there, through the API
client = Client("check")
lost = 0
for image in sorted(acked_images):
    status, body, _ = client.call(OWNER, "GET", f"/v2/images/{image}")
    if status != 200:
        lost += 1
        fail(f"acknowledged image {image}: GET answered {status}")
        continue
    status, members, _ = client.call(OWNER, "GET", f"/v2/images/{image}/members")
    present = {m["member_id"] for m in (members or {}).get("members", [])}
    for acked_image, member in acked_members:
        if acked_image == image and member not in present:
            lost += 1
            fail(f"acknowledged member {member} of {image} is missing")
    for (acked_image, key), value in acked_properties.items():
        if acked_image == image and body.get(key) != value:
            lost += 1
            fail(f"acknowledged property {key}={value} of {image} reads {body.get(key)!r}")


# --- and in SQL
def psql(query):
    completed = subprocess.run(os.environ["PSQL"] + " -c " + json.dumps(query), shell=True,
                               timeout=60, capture_output=True, text=True)
    if completed.returncode != 0:
        fail(f"psql failed: {completed.stderr}")
        return []
    return [line.split("|") for line in completed.stdout.splitlines() if line]


sql_images = {row[0] for row in psql("SELECT image_id FROM proj_images")}
sql_members = {(row[0], row[1]) for row in psql("SELECT image_id, member_id FROM proj_members")}
sql_properties = {(row[0], row[1]): row[2]
                  for row in psql("SELECT image_id, key, value FROM proj_image_properties")}
sql_missing = (len(acked_images - sql_images) + len(acked_members - sql_members)
               + sum(1 for k, v in acked_properties.items() if sql_properties.get(k) != v))
if sql_missing:
    fail(f"{sql_missing} acknowledged writes are not in the read-model tables")
# Every write was retried until answered, so the tables hold exactly what was acknowledged: an
# attempt that committed although its answer was 503 was acknowledged by its retry's 409.
restart_images = {row[0] for row in psql("SELECT image_id FROM proj_images WHERE name LIKE 'restart-%'")}
if restart_images != acked_images or sql_members != acked_members:
    fail(f"the tables hold {len(restart_images)} images and {len(sql_members)} members, "
         f"{len(acked_images)} and {len(acked_members)} were acknowledged")

# --- a task created after the restart still runs
task_status = None
status, task, _ = client.call(ADMIN, "POST", "/v2/tasks", {
    "type": "import",
    "input": {"import_from": "restart/fixed.vhd",
              "image_properties": {"name": "imported-after-restart"}}})
if status != 201 or not task:
    fail(f"POST /v2/tasks answered {status}")
else:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, shown, _ = client.call(ADMIN, "GET", f"/v2/tasks/{task['id']}")
        task_status = (shown or {}).get("status")
        if task_status in ("success", "failure"):
            break
        time.sleep(0.2)
    if task_status != "success":
        fail(f"the task created after the restart ended {task_status!r}: {shown}")

statuses = {}
for r in requests:
    statuses[r[5]] = statuses.get(r[5], 0) + 1
figures = {
    "requests": len(requests),
    "responses_by_status": {str(k): v for k, v in sorted(statuses.items())},
    "answered_while_down": len(down),
    "slowest_while_down_s": round(down_max, 3),
    "slowest_request_s": round(any_max, 3),
    "recovery_after_restart_s": {k: v and round(v, 3) for k, v in after_restart.items()},
    "recovery_after_start_s": {k: v and round(v, 3) for k, v in after_start.items()},
    "acknowledged": {"images": len(acked_images), "members": len(acked_members),
                     "properties": len(acked_properties)},
    "lost_through_api": lost,
    "missing_in_sql": sql_missing,
    "write_attempts_answered_503": len(unacked_writes),
    "retry_found_committed": len(committed_on_retry),
    "task_after_restart": task_status,
    "failures": len(failures),
}
json.dump(figures, open(out_file, "w"), indent=1)
print(json.dumps(figures, indent=1))
sys.exit(1 if failures else 0)
