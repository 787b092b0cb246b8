"""Provisions a real Keystone for imgshare through its v3 API, as an operator would: the region,
the service user imgshare validates tokens as (role `service` on project `service`), an `image`
service whose public and internal endpoints point at imgshare, and projects and users with roles.

Usage: provision.py KEYSTONE_URL ADMIN_PASSWORD < spec.json > ids.json
spec: {"region": "DFW", "image_url": "http://127.0.0.1:9292",
       "service_user": {"name": "imgshare", "password": "…"},
       "users": [{"name": "…", "password": "…", "project": "…", "role": "member"}]}
Prints {"projects": {name: id}, "users": {name: id}}. Standard library only.
"""

import json
import sys
import urllib.error
import urllib.request

BASE = sys.argv[1].rstrip("/") + "/v3"


def call(method, path, body=None, token=None, expect=(200, 201, 204)):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            status, headers = response.status, response.headers
    except urllib.error.HTTPError as error:
        text, status, headers = error.read(), error.code, error.headers
    if status not in expect:
        raise SystemExit(f"keystone {method} {path}: HTTP {status}: {text[:300]!r}")
    return (json.loads(text) if text else {}), headers


def admin_token(password):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    _, headers = call("POST", "/auth/tokens", body)
    return headers["X-Subject-Token"]


def main():
    spec = json.load(sys.stdin)
    token = admin_token(sys.argv[2])
    roles = {role["name"]: role["id"] for role in call("GET", "/roles", token=token)[0]["roles"]}
    call("POST", "/regions", {"region": {"id": spec["region"]}}, token, expect=(201, 409))
    service, _ = call("POST", "/services", {"service": {"type": "image", "name": "glance"}}, token)
    for interface in ("public", "internal"):
        call("POST", "/endpoints", {"endpoint": {
            "service_id": service["service"]["id"], "interface": interface,
            "region_id": spec["region"], "url": spec["image_url"]}}, token)

    projects, users = {}, {}

    def project(name):
        if name not in projects:
            created, _ = call("POST", "/projects", {"project": {
                "name": name, "domain_id": "default"}}, token)
            projects[name] = created["project"]["id"]
        return projects[name]

    def user(name, password, project_name, role):
        created, _ = call("POST", "/users", {"user": {
            "name": name, "password": password, "domain_id": "default",
            "default_project_id": project(project_name)}}, token)
        users[name] = created["user"]["id"]
        call("PUT", f"/projects/{projects[project_name]}/users/{users[name]}/roles/{roles[role]}",
             token=token)

    service_user = spec["service_user"]
    user(service_user["name"], service_user["password"], "service", "service")
    for entry in spec["users"]:
        user(entry["name"], entry["password"], entry["project"], entry["role"])
    json.dump({"projects": projects, "users": users}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
