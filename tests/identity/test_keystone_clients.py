"""python-glanceclient (the `glance` CLI) and openstacksdk against imgshare with Keystone
identity, authenticating the normal way (OS_AUTH_URL, user, password, project; the image
endpoint found in Keystone's catalog). The producer creates an image and shares it, the consumer
accepts it; a revoked token is refused once imgshare's cache time has passed; with Keystone
stopped, imgshare answers 503.

Environment (tests/identity/keystone_clients.sh): IMGSHARE_KEYSTONE_URL, IMGSHARE_IDS (project
ids), IMGSHARE_URL (imgshare), IMGSHARE_KEYSTONE_STOP (the script that stops Keystone).
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import openstack
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

KEYSTONE = os.environ["IMGSHARE_KEYSTONE_URL"].rstrip("/") + "/v3"
IDS = json.load(open(os.environ["IMGSHARE_IDS"]))
IMAGE_URL = os.environ["IMGSHARE_URL"]


def check(condition, message):
    if not condition:
        print("FAIL: " + message, file=sys.stderr)
        sys.exit(1)
    print("ok: " + message)


def os_env(user):
    env = dict(os.environ)
    env.update({"OS_AUTH_URL": KEYSTONE, "OS_IDENTITY_API_VERSION": "3",
                "OS_USERNAME": user, "OS_PASSWORD": f"{user}-pw", "OS_PROJECT_NAME": user,
                "OS_USER_DOMAIN_ID": "default", "OS_PROJECT_DOMAIN_ID": "default",
                "OS_REGION_NAME": "DFW", "OS_IMAGE_API_VERSION": "2"})
    return env


def glance(user, *args):
    result = subprocess.run(["glance", *args], env=os_env(user), capture_output=True, text=True,
                            timeout=120)
    if result.returncode != 0:
        print(result.stdout, result.stderr, file=sys.stderr)
        check(False, f"glance {' '.join(args)} as {user}")
    return result.stdout


def connect(user):
    return openstack.connect(auth_url=KEYSTONE, username=user, password=f"{user}-pw",
                             project_name=user, user_domain_id="default",
                             project_domain_id="default", region_name="DFW")


def get(path, token):
    request = urllib.request.Request(IMAGE_URL + path, headers={"X-Auth-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def main():
    producer_project = IDS["projects"]["producer"]
    consumer_project = IDS["projects"]["consumer"]

    # glanceclient: find the endpoint in the catalog, create, list, share.
    out = glance("producer", "image-create", "--name", "from-glanceclient",
                 "--visibility", "shared", "--disk-format", "raw", "--container-format", "bare")
    image_id = next(line.split("|")[2].strip() for line in out.splitlines()
                    if line.startswith("| id "))
    check(len(image_id) == 36, f"glance image-create through Keystone's catalog: {image_id}")
    listed = glance("producer", "image-list")
    check(image_id in listed, "glance image-list shows it")
    shown = glance("producer", "image-show", image_id)
    check(producer_project in shown, "its owner is the producer's Keystone project id")
    glance("producer", "member-create", image_id, consumer_project)
    check(True, "glance member-create for the consumer's project")

    # openstacksdk, normal password authentication: the consumer accepts, then lists it.
    consumer = connect("consumer")
    check(consumer.current_project_id == consumer_project, "openstacksdk authenticates with Keystone")
    member = consumer.image.update_member(consumer_project, image_id, status="accepted")
    check(member.status == "accepted", "openstacksdk: the consumer accepts")
    check(image_id in [image.id for image in consumer.image.images()],
          "openstacksdk: the accepted image is listed")
    members = glance("producer", "member-list", "--image-id", image_id)
    check("accepted" in members, "glance member-list shows the acceptance")

    # A Keystone token used directly: valid, then revoked (refused after the cache time).
    auth = v3.Password(auth_url=KEYSTONE, username="producer", password="producer-pw",
                       project_name="producer", user_domain_id="default",
                       project_domain_id="default")
    session = ks_session.Session(auth=auth)
    token = session.get_token()
    status, _ = get("/v2/images", token)
    check(status == 200, f"a Keystone token works on the API ({status})")
    # A valid token scoped to no project: nothing to map to an account, 403.
    unscoped = ks_session.Session(auth=v3.Password(
        auth_url=KEYSTONE, username="producer", password="producer-pw",
        user_domain_id="default", unscoped=True)).get_token()
    status, body = get("/v2/images", unscoped)
    check(status == 403, f"an unscoped Keystone token is 403 ({status} {body[:100]!r})")
    admin = v3.Password(auth_url=KEYSTONE, username="admin",
                        password=os.environ.get("IMGSHARE_KEYSTONE_ADMIN_PASSWORD", "adminpw"),
                        project_name="admin", user_domain_id="default",
                        project_domain_id="default")
    ks_session.Session(auth=admin).delete(KEYSTONE + "/auth/tokens",
                                          headers={"X-Subject-Token": token})
    time.sleep(2.5)
    status, body = get("/v2/images", token)
    check(status == 401, f"a revoked token is refused once the cache time has passed ({status})")
    status, _ = get(f"/v2/images/{image_id}", token)
    check(status == 401, f"... on every API ({status})")

    # Keystone stopped: a cached token stays valid only within the cache time, then 503.
    fresh = ks_session.Session(auth=v3.Password(
        auth_url=KEYSTONE, username="consumer", password="consumer-pw", project_name="consumer",
        user_domain_id="default", project_domain_id="default")).get_token()
    status, _ = get("/v2/images", fresh)
    check(status == 200, "a fresh token works")
    subprocess.run([os.environ["IMGSHARE_KEYSTONE_STOP"]], check=True)
    time.sleep(2.5)
    status, body = get("/v2/images", fresh)
    check(status == 503, f"Keystone stopped: 503, not 401 nor a stale 'valid' ({status} {body[:120]!r})")
    check(b"identity service is temporarily unavailable" in body, "with a clear message")
    print("keystone clients: all checks passed")


if __name__ == "__main__":
    main()
