"""A stand-in Identity v3 endpoint for running tempest against imgshare.

It is test harness, not product: it knows a fixed set of users (from a JSON file), answers
`POST /v3/auth/tokens` for them with a static token and a catalog whose `image` endpoint is the
imgshare server, and answers version discovery. The same tokens are in the server's tokens file,
so imgshare identifies the caller exactly as it would with any other token.

Usage: fake_keystone.py CONFIG.json PORT_FILE
CONFIG: {"image_url": "http://127.0.0.1:9292", "region": "RegionOne",
         "users": {"<name>": {"password", "token", "user_id", "project_id", "project_name",
                              "roles": [...]}}}
The port it listens on (an ephemeral one) is written to PORT_FILE.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONFIG = {}
EXPIRES = "2099-01-01T00:00:00.000000Z"
ISSUED = "2026-01-01T00:00:00.000000Z"


def user_by_password(body):
    try:
        identity = body["auth"]["identity"]
        user = identity["password"]["user"]
    except (KeyError, TypeError):
        return None
    for name, entry in CONFIG["users"].items():
        if user.get("name") in (name, entry["user_id"]) or user.get("id") == entry["user_id"]:
            if user.get("password") == entry["password"]:
                return name, entry
    return None


def user_by_token(body):
    try:
        token = body["auth"]["identity"]["token"]["id"]
    except (KeyError, TypeError):
        return None
    for name, entry in CONFIG["users"].items():
        if entry["token"] == token:
            return name, entry
    return None


def token_body(name, entry, base):
    domain = {"id": "default", "name": "Default"}
    region = CONFIG.get("region", "RegionOne")

    def endpoints(url):
        return [
            {"id": f"{interface}-{url}", "interface": interface, "region": region,
             "region_id": region, "url": url}
            for interface in ("public", "internal", "admin")
        ]

    return {"token": {
        "methods": ["password"],
        "expires_at": EXPIRES,
        "issued_at": ISSUED,
        "audit_ids": [entry["token"]],
        "user": {"id": entry["user_id"], "name": name, "domain": domain,
                 "password_expires_at": None},
        "project": {"id": entry["project_id"], "name": entry["project_name"], "domain": domain},
        "roles": [{"id": role, "name": role} for role in entry["roles"]],
        "is_domain": False,
        "catalog": [
            {"id": "image", "type": "image", "name": "glance",
             "endpoints": endpoints(CONFIG["image_url"])},
            {"id": "identity", "type": "identity", "name": "keystone",
             "endpoints": endpoints(base + "/v3")},
        ],
    }}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: tempest makes many requests
        pass

    def base(self):
        return "http://" + self.headers.get("Host", "127.0.0.1")

    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def version(self):
        return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                "links": [{"rel": "self", "href": self.base() + "/v3/"}],
                "media-types": [{"base": "application/json",
                                 "type": "application/vnd.openstack.identity-v3+json"}]}

    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        if path in ("", "/"):
            self.reply(300, {"versions": {"values": [self.version()]}})
        elif path == "/v3":
            self.reply(200, {"version": self.version()})
        elif path == "/v3/auth/tokens":
            token = self.headers.get("X-Subject-Token")
            for name, entry in CONFIG["users"].items():
                if entry["token"] == token:
                    self.reply(200, token_body(name, entry, self.base()),
                               [("X-Subject-Token", token)])
                    return
            self.reply(404, {"error": {"code": 404, "message": "token not found"}})
        else:
            self.reply(404, {"error": {"code": 404, "message": "not found"}})

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self.reply(400, {"error": {"code": 400, "message": "malformed JSON"}})
            return
        if self.path.split("?")[0].rstrip("/") != "/v3/auth/tokens":
            self.reply(404, {"error": {"code": 404, "message": "not found"}})
            return
        found = user_by_password(body) or user_by_token(body)
        if found is None:
            self.reply(401, {"error": {"code": 401, "message": "The request you have made "
                                       "requires authentication.", "title": "Unauthorized"}})
            return
        name, entry = found
        self.reply(201, token_body(name, entry, self.base()), [("X-Subject-Token", entry["token"])])

    def do_DELETE(self):
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


def main():
    global CONFIG
    with open(sys.argv[1]) as config:
        CONFIG = json.load(config)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[2], "w") as port_file:
        port_file.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
