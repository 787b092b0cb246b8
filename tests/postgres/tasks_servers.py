"""Import tasks across three `imgshare serve` processes on one PostgreSQL database.

Usage: tasks_servers.py TOKEN URL1 URL2 URL3 LOG1 LOG2 LOG3 PID1 PID2 PID3, the servers started
by tasks_servers.sh (JSON logs, task workers polling every 10 minutes, VHDs in the shared object
store's `images` container). Three phases:

1. 9 imports created through server 1 only, at once: each must end `success` within 30 s of its
   creation, and servers 2 and 3 must have started some of them. Nothing else can wake their
   workers within the test than server 1's NOTIFY: no task is created through them, and their
   timer is 10 minutes away.
2. 18 imports created through all three servers at once: each ends `success`.
3. A 32 MiB import created through server 3; the server whose log says it started it is killed
   (SIGKILL) while it runs; a task created afterwards wakes the live servers, whose pass resumes
   the orphan (its lease died with the killed server's session): it ends `success`, resumed once.

Then, from the three servers' logs: every task was started ("task started") by exactly one
server, and only the killed server's task was resumed ("task resumed"). Prints the figures;
exits 1 on any failure. Standard library only; every request and wait is bounded.
"""

import json
import os
import signal
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import api

TIMEOUT = 30

token, *rest = sys.argv[1:]
servers, logs, pids = rest[0:3], rest[3:6], [int(pid) for pid in rest[6:9]]
failures = []


def call(server, method, path, body=None):
    """(status, parsed JSON or None) from server `server` (0-based)."""
    return api.call(servers[server], token, method, path, body, TIMEOUT, f"server {server + 1}")


def create(server, vhd):
    """Creates an import of `images/<vhd>` through `server`; (task id, time created)."""
    status, body = call(server, "POST", "/v2/tasks", {
        "type": "import",
        "input": {"import_from": f"images/{vhd}", "import_from_format": "vhd",
                  "image_properties": {"name": vhd}}})
    if status != 201 or not body:
        failures.append(f"creating an import of {vhd} through server {server + 1}: {status}")
        return None, time.monotonic()
    return body["id"], time.monotonic()


def wait_finished(tasks, through, seconds):
    """Polls each task through the servers in `through` until it is finished; returns
    {task id: (status, seconds from `created` to when it was seen finished)}."""
    done = {}
    deadline = time.monotonic() + seconds
    while len(done) < len(tasks) and time.monotonic() < deadline:
        for index, (task_id, created) in enumerate(tasks):
            if task_id in done:
                continue
            status, body = call(through[index % len(through)], "GET", f"/v2/tasks/{task_id}")
            if status == 200 and body and body.get("status") in ("success", "failure"):
                done[task_id] = (body["status"], time.monotonic() - created, body.get("message"))
        time.sleep(0.05)
    for task_id, _ in tasks:
        if task_id not in done:
            failures.append(f"task {task_id} did not finish within {seconds} s")
        elif done[task_id][0] != "success":
            failures.append(f"task {task_id} ended {done[task_id][0]}: {done[task_id][2]}")
    return done


def log_lines(server):
    lines = []
    with open(logs[server], encoding="utf-8", errors="replace") as log:
        for line in log:
            try:
                lines.append(json.loads(line).get("fields", {}))
            except ValueError:
                continue
    return lines


def events(message_prefix):
    """{task id: [server, …]} of the log lines whose message starts with `message_prefix`."""
    found = defaultdict(list)
    for server in range(3):
        for fields in log_lines(server):
            if str(fields.get("message", "")).startswith(message_prefix):
                found[fields.get("task_id")].append(server + 1)
    return found


def wait_for(what, predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    failures.append(f"timed out waiting for {what}")
    return None


# 1. Through server 1 only: the other servers learn of the tasks by NOTIFY alone.
with ThreadPoolExecutor(9) as pool:
    first = list(pool.map(lambda n: create(0, f"disk-{n}.vhd"), range(1, 10)))
first = [(task_id, created) for task_id, created in first if task_id]
done = wait_finished(first, [0, 1, 2], 30)
started = events("task started")
by_server = Counter(started[task_id][0] for task_id, _ in first if started.get(task_id))
slowest = max((seconds for _, seconds, _ in done.values()), default=0.0)
print(f"phase 1: {len(done)} of {len(first)} imports created through server 1 finished, "
      f"slowest {slowest:.2f} s after its creation; started by "
      + ", ".join(f"server {s}: {by_server[s]}" for s in (1, 2, 3)))
if by_server[2] + by_server[3] == 0:
    failures.append("no task created through server 1 was started by server 2 or 3 "
                    "(their workers are woken only by NOTIFY here)")

# 2. Through all three at once.
with ThreadPoolExecutor(18) as pool:
    second = list(pool.map(lambda n: create(n % 3, f"disk-{n}.vhd"), range(10, 28)))
second = [(task_id, created) for task_id, created in second if task_id]
done = wait_finished(second, [0, 1, 2], 60)
started = events("task started")
by_server = Counter(started[task_id][0] for task_id, _ in second if started.get(task_id))
print(f"phase 2: {len(done)} of {len(second)} imports created through all three finished; "
      "started by " + ", ".join(f"server {s}: {by_server[s]}" for s in (1, 2, 3)))

# 3. A server killed while it runs an import; a live one resumes it at its next pass.
large, _ = create(2, "large.vhd")
runner = wait_for("the large import to start",
                  lambda: (events("task started").get(large) or [None])[0], 30)
killed = None
if large and runner:
    killed = runner
    # Still running? The import copies and hashes 32 MiB; if it already finished, the
    # kill shows nothing and the test says so.
    status, body = call(runner - 1, "GET", f"/v2/tasks/{large}")
    os.kill(pids[runner - 1], signal.SIGKILL)
    if status != 200 or not body or body.get("status") != "processing":
        failures.append(f"the large import was no longer processing when server {runner} was "
                        f"killed ({status}, {body and body.get('status')})")
    live = [s for s in range(3) if s != runner - 1]
    # The kernel closes the killed process's sockets at once; a moment lets PostgreSQL end
    # its sessions (and with them the lease) before the live servers look.
    time.sleep(1)
    # A task created afterwards wakes the live workers (its own server's, the other's by
    # NOTIFY); their pass resumes whatever has no live lease.
    nudge = create(live[0], "disk-27.vhd")
    done = wait_finished([(large, time.monotonic())], live, 90)
    wait_finished([nudge], live, 30)
    resumed = events("task resumed")
    print(f"phase 3: server {runner} killed while importing large.vhd; resumed by server(s) "
          f"{resumed.get(large, [])}, ended {done.get(large, ('not finished',))[0]}")
    if len(resumed.get(large, [])) != 1 or runner in resumed.get(large, []):
        failures.append(f"the large import was resumed by {resumed.get(large, [])}, "
                        "expected once, by a live server")

# Across all three logs: one start per task; resumed only the killed server's task.
started = events("task started")
resumed = events("task resumed")
all_tasks = [task_id for task_id, _ in first + second] + ([large] if large else [])
once = sum(1 for task_id in all_tasks if len(started.get(task_id, [])) == 1)
print(f"'task started' lines: {once} of {len(all_tasks)} tasks started by exactly one server; "
      f"'task resumed' lines: {sum(len(v) for v in resumed.values())}")
for task_id in all_tasks:
    if len(started.get(task_id, [])) != 1:
        failures.append(f"task {task_id} started by servers {started.get(task_id, [])}")
for task_id in resumed:
    if task_id != large:
        failures.append(f"task {task_id} resumed by servers {resumed[task_id]}, none crashed")

for failure in failures:
    print(failure, file=sys.stderr)
sys.exit(1 if failures else 0)
