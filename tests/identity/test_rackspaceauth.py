"""openstacksdk with the `rackspaceauth` plugin (auth_type `rackspace_apikey`) against
`imgshare serve` with its built-in identity: authenticate with an API key at `/v2.0/`, take the
region from the service catalog, list images, share one, accept it as the consumer; the image of
one region is not found in another.

Environment: IMGSHARE_IDENTITY (the server's base URL), IMGSHARE_IMAGE_ID (the producer's image,
in the first region), IMGSHARE_KEY_PRODUCER, IMGSHARE_KEY_CONSUMER (demo users' API keys).
"""

import os
import sys

import openstack
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from rackspaceauth import v2 as rackspace_v2

IDENTITY = os.environ["IMGSHARE_IDENTITY"].rstrip("/")
IMAGE_ID = os.environ["IMGSHARE_IMAGE_ID"]
PRODUCER_ACCOUNT, CONSUMER_ACCOUNT = "111111", "222222"


def catalog_regions(username, api_key):
    """The regions of the `image` service in the catalog, in catalog order."""
    auth = rackspace_v2.APIKey(auth_url=IDENTITY + "/v2.0/", username=username, api_key=api_key)
    access = auth.get_access(ks_session.Session(auth=auth))
    endpoints = access.service_catalog.get_endpoints(service_type="image", interface="public")
    # v2 catalogs come back as their raw endpoints (`region`); v3 ones carry `region_id`.
    return [endpoint.get("region_id") or endpoint["region"] for endpoint in endpoints["image"]]


def connect(username, api_key, region):
    return openstack.connect(
        auth_type="rackspace_apikey",
        auth={"auth_url": IDENTITY + "/v2.0/", "username": username, "api_key": api_key},
        region_name=region,
    )


def check(condition, message):
    if not condition:
        print("FAIL: " + message, file=sys.stderr)
        sys.exit(1)
    print("ok: " + message)


def main():
    producer_key = os.environ["IMGSHARE_KEY_PRODUCER"]
    consumer_key = os.environ["IMGSHARE_KEY_CONSUMER"]
    regions = catalog_regions("producer", producer_key)
    check(len(regions) >= 2, f"the catalog lists the image endpoint of every region: {regions}")
    home, other = regions[0], regions[1]

    producer = connect("producer", producer_key, home)
    check(producer.current_project_id == PRODUCER_ACCOUNT,
          f"the token's tenant is the producer's account ({producer.current_project_id})")
    listed = [image.id for image in producer.image.images()]
    check(IMAGE_ID in listed, f"the producer lists its image in {home}")

    member = producer.image.add_member(IMAGE_ID, member_id=CONSUMER_ACCOUNT)
    check(member.status == "pending", f"shared with {CONSUMER_ACCOUNT}: {member.status}")

    consumer = connect("consumer", consumer_key, home)
    check(IMAGE_ID not in [image.id for image in consumer.image.images()],
          "a pending share is not in the consumer's list")
    accepted = consumer.image.update_member(CONSUMER_ACCOUNT, IMAGE_ID, status="accepted")
    check(accepted.status == "accepted", "the consumer accepts")
    check(IMAGE_ID in [image.id for image in consumer.image.images()],
          "the accepted image is in the consumer's list")
    members = [m.member_id for m in producer.image.members(IMAGE_ID)]
    check(members == [CONSUMER_ACCOUNT], f"the producer sees the member: {members}")

    elsewhere = connect("producer", producer_key, other)
    check(IMAGE_ID not in [image.id for image in elsewhere.image.images()],
          f"the image of {home} is not listed in {other}")
    try:
        elsewhere.image.get_image(IMAGE_ID)
        check(False, f"the image of {home} is found in {other}")
    except openstack.exceptions.NotFoundException:
        check(True, f"the image of {home} is 404 in {other}")

    try:
        connect("producer", "not-the-key", home).image.images().__next__()
        check(False, "a wrong API key is refused")
    except ks_exceptions.Unauthorized as error:
        check(error.http_status == 401, f"a wrong API key is refused: {error}")
    print("rackspaceauth: all checks passed")


if __name__ == "__main__":
    main()
