"""Three `imgshare serve` processes on one PostgreSQL database, driven at once.

Usage: servers.py TOKENS_JSON URL1 URL2 URL3. A producer creates images through every server;
each image is shared with every consumer (POST members) through one server and accepted by the
consumer (PUT member status) through another, many requests in parallel. Then the members of
every image are read back from EACH server: every acknowledged (2xx) change must be visible on
all of them. Prints the figures; exits 1 on a lost update, a server error or a mismatch.
Standard library only; every request has a timeout.
"""

import json
import sys
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from threading import Lock

import api

IMAGES = 60
THREADS = 24
TIMEOUT = 30

tokens_file, *servers = sys.argv[1:]
tokens = json.load(open(tokens_file))["tokens"]
by_tenant = {identity["tenant_id"]: token for token, identity in tokens.items()}
producer = by_tenant.pop("111111")
consumers = sorted(by_tenant)

counts = Counter()
statuses = Counter()
lock = Lock()


def call(server, token, method, path, body=None):
    """(status, parsed JSON or None) from server `server` (0-based), counted per server and
    status."""
    status, body = api.call(servers[server], token, method, path, body, TIMEOUT,
                            f"server {server + 1}")
    with lock:
        counts[server] += 1
        statuses[status] += 1
    return status, body


def create(index):
    status, body = call(index % 3, producer, "POST", "/v2/images", {
        "name": f"shared-{index}", "visibility": "shared",
        "container_format": "bare", "disk_format": "raw"})
    return body["id"] if 200 <= status < 300 and body else None


def share_and_accept(job):
    index, image, consumer = job
    added = accepted = False
    status, _ = call(index % 3, producer, "POST", f"/v2/images/{image}/members",
                     {"member": consumer})
    added = 200 <= status < 300
    if added:
        # Through another server than the one that added the member: it must see the add.
        status, _ = call((index + 1) % 3, by_tenant[consumer], "PUT",
                         f"/v2/images/{image}/members/{consumer}", {"status": "accepted"})
        accepted = 200 <= status < 300
    return image, consumer, added, accepted


def healthy(server):
    try:
        with urllib.request.urlopen(servers[server] + "/healthcheck", timeout=TIMEOUT) as response:
            return response.status == 200
    except OSError:
        return False


unhealthy = [server + 1 for server in range(3) if not healthy(server)]

with ThreadPoolExecutor(THREADS) as pool:
    images = [image for image in pool.map(create, range(IMAGES)) if image]
    jobs = [(i * len(consumers) + j, image, consumer)
            for i, image in enumerate(images) for j, consumer in enumerate(consumers)]
    results = list(pool.map(share_and_accept, jobs))

acknowledged = {(image, consumer): accepted for image, consumer, added, accepted in results if added}
changes = len(acknowledged) + sum(acknowledged.values())
lost = 0
final_members = []
for server in range(3):
    seen = 0
    for image in images:
        status, body = call(server, producer, "GET", f"/v2/images/{image}/members")
        members = {m["member_id"]: m["status"] for m in (body or {}).get("members", [])} \
            if status == 200 else {}
        seen += len(members)
        for (acked_image, consumer), accepted in acknowledged.items():
            if acked_image != image:
                continue
            want = "accepted" if accepted else "pending"
            if members.get(consumer) != want:
                lost += 1
                print(f"server {server + 1}: {image} member {consumer} is "
                      f"{members.get(consumer)!r}, acknowledged as {want}", file=sys.stderr)
    final_members.append(seen)

print(f"images created: {len(images)} of {IMAGES}; consumers: {len(consumers)}")
print("requests per server: " + ", ".join(f"server {s + 1}: {counts[s]}" for s in range(3)))
print("responses by status: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
print(f"acknowledged member changes: {changes} "
      f"({len(acknowledged)} adds, {sum(acknowledged.values())} accepts)")
print("final member count read from each server: " + ", ".join(map(str, final_members)))
print(f"lost updates: {lost}")
if unhealthy:
    print(f"/healthcheck failed on servers {unhealthy}", file=sys.stderr)
failed = (lost or unhealthy or len(images) != IMAGES or len(acknowledged) != len(jobs)
          or not all(acknowledged.values()) or statuses[0] or any(s >= 500 for s in statuses)
          or len(set(final_members)) != 1)
sys.exit(1 if failed else 0)
