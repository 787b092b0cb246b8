"""Real clients against a running `imgshare serve` (started by run.sh).

python-glanceclient is driven through its `glance` CLI (it fetches /v2/schemas/* and validates
what it shows against them); openstacksdk runs the seed-000 producer -> consumer flow with
`auth_type='admin_token'` and an image endpoint override (which makes it run version discovery on
`/v2/{tenant_id}`). Plain asserts; prints `N passed, M failed` and exits non-zero on a failure.
"""

import json
import os
import subprocess
import sys
import traceback

URL = os.environ["IMGSHARE_URL"].rstrip("/")
IMAGE_ID = os.environ["IMGSHARE_IMAGE_ID"]
TOKENS = {
    "producer": os.environ["IMGSHARE_TOKEN_PRODUCER"],
    "consumer": os.environ["IMGSHARE_TOKEN_CONSUMER"],
    "stranger": os.environ["IMGSHARE_TOKEN_STRANGER"],
    "admin": os.environ["IMGSHARE_TOKEN_ADMIN"],
}
# "rackspace" (tenants create no images; tasks are theirs) or "glance" (tenants create and
# upload images; tasks are admin-only).
PROFILE = os.environ.get("IMGSHARE_PROFILE", "rackspace")
GLANCE = PROFILE == "glance"
# Who may use /v2/tasks in this profile.
TASKER = "admin" if GLANCE else "producer"
PRODUCER, CONSUMER, ADMIN = "111111", "222222", "999999"
IMAGE_NAME = "my-saved-image-name"


def glance(who, *args, ok=True, stdin=None):
    """Runs `glance --os-image-url URL/ --os-auth-token TOKEN ARGS...`; returns (rc, out, err).
    `stdin`: a file to feed it (glance reads image data from a non-terminal stdin)."""
    command = [
        "glance",
        "--os-image-api-version", "2",
        "--os-image-url", URL + "/",
        "--os-auth-token", TOKENS[who],
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60,
                          stdin=stdin if stdin is not None else subprocess.DEVNULL)
    shown = " ".join(["glance", *args])
    assert "Traceback" not in done.stderr, f"{shown}: {done.stderr}"
    if ok:
        assert done.returncode == 0, f"{shown} exited {done.returncode}: {done.stderr}"
        assert done.stderr.strip() == "", f"{shown} wrote to stderr: {done.stderr}"
    else:
        assert done.returncode != 0, f"{shown} should have failed: {done.stdout}"
    return done.returncode, done.stdout, done.stderr


def table(text):
    """The rows of a glance table as lists of cells (the header row included)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def properties(text):
    """A `Property | Value` table as a dict."""
    return {row[0]: row[1] for row in table(text)[1:] if len(row) == 2}


def listed_ids(text):
    return [row[0] for row in table(text)[1:]]


# --- python-glanceclient ----------------------------------------------------------------------


def test_glance_image_list():
    _, out, _ = glance("producer", "image-list")
    assert IMAGE_ID in listed_ids(out), out
    assert IMAGE_NAME in out


def test_glance_image_show():
    _, out, _ = glance("producer", "image-show", IMAGE_ID)
    shown = properties(out)
    assert shown["id"] == IMAGE_ID, shown
    assert shown["name"] == IMAGE_NAME
    assert shown["status"] == "active"
    assert shown["owner"] == PRODUCER
    assert shown["disk_format"] == "vhd" and shown["container_format"] == "ovf"


def test_glance_image_update():
    _, out, _ = glance("producer", "image-update", "--property", "someAttribute=someValue",
                       IMAGE_ID)
    assert properties(out)["someAttribute"] == "someValue", out
    _, out, _ = glance("producer", "image-update", "--min-ram", "1024", IMAGE_ID)
    assert properties(out)["min_ram"] == "1024", out
    _, out, _ = glance("producer", "image-update", "--remove-property", "someAttribute",
                       IMAGE_ID)
    assert "someAttribute" not in properties(out), out


def test_glance_image_tags():
    glance("producer", "image-tag-update", IMAGE_ID, "seed-000")
    _, out, _ = glance("producer", "image-show", IMAGE_ID)
    assert "seed-000" in properties(out)["tags"], out
    glance("producer", "image-tag-delete", IMAGE_ID, "seed-000")
    _, out, _ = glance("producer", "image-show", IMAGE_ID)
    assert "seed-000" not in properties(out)["tags"], out


def test_glance_image_list_filters():
    _, out, _ = glance("producer", "image-list", "--property-filter", f"name={IMAGE_NAME}",
                       "--page-size", "1")
    assert listed_ids(out) == [IMAGE_ID], out
    _, out, _ = glance("producer", "image-list", "--property-filter", "name=nothing-like-it")
    assert listed_ids(out) == [], out


def test_glance_stranger_sees_nothing():
    _, out, _ = glance("stranger", "image-list")
    assert IMAGE_ID not in out, out
    _, _, err = glance("stranger", "image-show", IMAGE_ID, ok=False)
    assert "404" in err or "No image" in err, err


def test_glance_members_producer_to_consumer():
    _, out, _ = glance("producer", "member-list", "--image-id", IMAGE_ID)
    assert table(out)[1:] == [], out
    _, out, _ = glance("producer", "member-create", IMAGE_ID, CONSUMER)
    assert table(out)[1] == [IMAGE_ID, CONSUMER, "pending"], out
    _, out, _ = glance("producer", "member-list", "--image-id", IMAGE_ID)
    assert table(out)[1:] == [[IMAGE_ID, CONSUMER, "pending"]], out
    _, out, _ = glance("producer", "member-get", IMAGE_ID, CONSUMER)
    assert properties(out).get("status") == "pending", out

    # The pending share is not in the consumer's default list, but the image is there by id.
    _, out, _ = glance("consumer", "image-list")
    assert IMAGE_ID not in out, out
    _, out, _ = glance("consumer", "image-list", "--member-status", "pending")
    assert IMAGE_ID in listed_ids(out), out
    _, out, _ = glance("consumer", "image-show", IMAGE_ID)
    assert properties(out)["name"] == IMAGE_NAME, out

    _, out, _ = glance("consumer", "member-update", IMAGE_ID, CONSUMER, "accepted")
    assert table(out)[1] == [IMAGE_ID, CONSUMER, "accepted"], out
    _, out, _ = glance("consumer", "image-list")
    assert IMAGE_ID in listed_ids(out), out

    # The owner cannot set the member's status; the consumer cannot delete or update.
    glance("producer", "member-update", IMAGE_ID, CONSUMER, "rejected", ok=False)
    _, _, err = glance("consumer", "image-delete", IMAGE_ID, ok=False)
    assert "not permitted" in err, err
    glance("consumer", "image-update", "--property", "x=y", IMAGE_ID, ok=False)

    _, out, _ = glance("consumer", "member-update", IMAGE_ID, CONSUMER, "rejected")
    assert table(out)[1] == [IMAGE_ID, CONSUMER, "rejected"], out
    _, out, _ = glance("consumer", "image-list")
    assert IMAGE_ID not in out, out

    glance("consumer", "member-delete", IMAGE_ID, CONSUMER, ok=False)
    glance("producer", "member-delete", IMAGE_ID, CONSUMER)
    _, out, _ = glance("producer", "member-list", "--image-id", IMAGE_ID)
    assert table(out)[1:] == [], out
    glance("consumer", "image-show", IMAGE_ID, ok=False)


def test_glance_tasks():
    task_input = {
        "import_from": "exports/imported.vhd",
        "image_properties": {"name": "imported-by-glanceclient"},
    }
    _, out, _ = glance(TASKER, "task-create", "--type", "import", "--input",
                       json.dumps(task_input))
    task = properties(out)
    assert task["type"] == "import", out
    assert task["status"] in ("pending", "processing", "success", "failure"), out
    _, out, _ = glance(TASKER, "task-list")
    assert task["id"] in listed_ids(out), out
    _, out, _ = glance(TASKER, "task-show", task["id"])
    assert properties(out)["id"] == task["id"], out
    # (glance wraps long cells, so look for the input's parts rather than parse it)
    assert "exports/imported.vhd" in out and "by-glanceclient" in out, out
    # Rackspace: tasks are visible only to their owner. Glance: tasks are admin-only.
    _, out, _ = glance("consumer", "task-list", ok=not GLANCE)
    assert task["id"] not in out, out
    glance("consumer", "task-show", task["id"], ok=False)
    if GLANCE:
        glance("producer", "task-create", "--type", "import", "--input",
               json.dumps(task_input), ok=False)


def test_glance_create_upload_download_and_import():
    if not GLANCE:
        # Rackspace tenants get images from snapshots and import tasks only.
        glance("producer", "image-create", "--name", "nope", "--disk-format", "raw",
               "--container-format", "bare", ok=False)
        return
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "disk.raw")
        with open(data, "wb") as f:
            f.write(b"imgshare" * 4096)
        _, out, _ = glance("producer", "image-create", "--name", "uploaded", "--disk-format",
                           "raw", "--container-format", "bare", "--file", data)
        shown = properties(out)
        assert shown["status"] == "active" and shown["size"] == str(8 * 4096), out
        downloaded = os.path.join(work, "back.raw")
        glance("producer", "image-download", "--file", downloaded, shown["id"])
        with open(downloaded, "rb") as back, open(data, "rb") as sent:
            assert back.read() == sent.read()
        with open(data, "rb") as source:
            _, out, _ = glance("producer", "image-create-via-import", "--name", "imported",
                               "--disk-format", "raw", "--container-format", "bare",
                               "--import-method", "glance-direct", stdin=source)
        imported = properties(out)["id"]
        import time

        for _ in range(100):
            _, out, _ = glance("producer", "image-show", imported)
            if properties(out)["status"] == "active":
                break
            time.sleep(0.1)
        assert properties(out)["status"] == "active", out
        assert properties(out)["checksum"] == shown["checksum"], out
        glance("producer", "image-delete", shown["id"], imported)


# --- openstacksdk ------------------------------------------------------------------------------


def connect(who, tenant):
    import openstack

    return openstack.connect(
        auth_type="admin_token",
        auth={"endpoint": URL, "token": TOKENS[who]},
        image_endpoint_override=f"{URL}/v2/{tenant}",
        region_name="DFW",
    )


def test_openstacksdk_producer_consumer_flow():
    import openstack.exceptions

    producer = connect("producer", PRODUCER)
    consumer = connect("consumer", CONSUMER)

    image = producer.image.find_image(IMAGE_NAME, ignore_missing=False)
    assert image.id == IMAGE_ID and image.status == "active", image
    assert IMAGE_ID in [i.id for i in producer.image.images()]
    assert list(producer.image.members(image)) == []

    member = producer.image.add_member(image, member_id=CONSUMER)
    assert member.status == "pending" and member.member_id == CONSUMER, member
    assert [m.member_id for m in producer.image.members(image)] == [CONSUMER]

    assert IMAGE_ID not in [i.id for i in consumer.image.images()]
    assert consumer.image.get_image(IMAGE_ID).name == IMAGE_NAME
    assert consumer.image.get_member(CONSUMER, image).status == "pending"

    accepted = consumer.image.update_member(CONSUMER, image, status="accepted")
    assert accepted.status == "accepted", accepted
    assert IMAGE_ID in [i.id for i in consumer.image.images()]

    try:
        consumer.image.delete_image(IMAGE_ID, ignore_missing=False)
        raise AssertionError("the consumer deleted the producer's image")
    except openstack.exceptions.ForbiddenException:
        pass

    updated = producer.image.update_image(image, min_ram=2048)
    assert updated.min_ram == 2048, updated
    producer.image.add_tag(image, "sdk")
    assert "sdk" in producer.image.get_image(IMAGE_ID).tags
    producer.image.remove_tag(image, "sdk")
    assert "sdk" not in producer.image.get_image(IMAGE_ID).tags

    rejected = consumer.image.update_member(CONSUMER, image, status="rejected")
    assert rejected.status == "rejected", rejected
    assert IMAGE_ID not in [i.id for i in consumer.image.images()]

    producer.image.remove_member(CONSUMER, image)
    assert list(producer.image.members(image)) == []
    try:
        consumer.image.get_image(IMAGE_ID)
        raise AssertionError("the consumer still sees the unshared image")
    except openstack.exceptions.NotFoundException:
        pass

    tasker = connect("admin", ADMIN) if GLANCE else producer
    task = tasker.image.create_task(
        type="import",
        input={"import_from": "exports/sdk.vhd", "image_properties": {"name": "sdk"}},
    )
    assert tasker.image.get_task(task.id).type == "import"
    assert task.id in [t.id for t in tasker.image.tasks()]

    if GLANCE:
        created = producer.image.create_image(
            name="sdk-upload", data=b"sdk bytes", disk_format="raw",
            container_format="bare", visibility="private", validate_checksum=True,
        )
        assert producer.image.get_image(created.id).status == "active"
        assert producer.image.download_image(created.id).content == b"sdk bytes"
        producer.image.delete_image(created.id, ignore_missing=False)


def main():
    tests = [(name, test) for name, test in globals().items()
             if name.startswith("test_") and callable(test)]
    passed = failed = 0
    for name, test in tests:
        try:
            test()
        except Exception:  # noqa: BLE001 - every failure is reported the same way
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print(f"ok   {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
