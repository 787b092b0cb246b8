#!/usr/bin/env bash
# The Cloud Images quickstart (seed 001) as a user runs it against `imgshare serve --demo`
# serving DFW and ORD: its curl commands exactly as written, only the identity host, the
# region and the {placeholders} substituted. Authenticate with the API key, export TOKEN and
# ENDPOINT from the service catalog, list, get, PATCH, export and import tasks, share, accept
# as the consumer, read and delete the member; then check that the image of DFW is 404 in ORD.
# Fails on any unexpected HTTP status. Usage: bash tests/identity/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib.sh
source tests/lib.sh
build_imgshare

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    stop "$server_pid"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

start_server "$work" --demo --db "$work/imgshare.db" --region DFW --region ORD
out="$work/server.out"
IDENTITY=$server_url
username=producer
apiKey=$(sed -n 's/^demo user producer (account 111111): API key //p' "$out")
consumer_key=$(sed -n 's/^demo user consumer (account 222222): API key //p' "$out")
imageId=$(sed -n 's/^export IMAGE_ID_PRODUCER=//p' "$out")
memberId=222222
[ -n "$apiKey" ] && [ -n "$consumer_key" ] && [ -n "$imageId" ] || {
  echo "the demo banner lacks keys or the image:" >&2
  cat "$out" >&2
  exit 1
}

# The quickstart pipes into `python -m json.tool`; where only python3 exists, it is that.
if ! command -v python >/dev/null 2>&1; then
  python() { python3 "$@"; }
fi

# Every curl below is the quickstart's; this wrapper only records the HTTP status (in a file:
# the command runs inside a pipeline) and hands the body on unchanged.
curl() {
  local status
  status=$(command curl -o "$work/body" -w '%{http_code}' "$@") || status=000
  echo "$status" >"$work/status"
  cat "$work/body"
}
step=""
# expect STATUS STEP: the last curl answered STATUS.
expect() {
  local got
  got=$(cat "$work/status")
  if [ "$got" != "$1" ]; then
    echo "FAIL: $2: HTTP $got, expected $1" >&2
    cat "$work/body" >&2
    echo "--- server stderr" >&2
    cat "$work/server.err" >&2
    exit 1
  fi
  echo "ok: $2 ($got)"
}
# from_catalog FILE REGION: the token id and the region's cloudImages publicURL, as exports.
from_catalog() {
  python3 -c 'import json, sys
access = json.load(open(sys.argv[1]))["access"]
url = [e["publicURL"] for s in access["serviceCatalog"] if s["type"] == "image"
       for e in s["endpoints"] if e["region"] == sys.argv[2]][0]
print("export TOKEN=%s ENDPOINT=%s" % (access["token"]["id"], url))' "$1" "$2"
}

# --- Authentication
curl -s -X POST $IDENTITY/v2.0/tokens \
  -H "Content-Type: application/json" \
  -d '{
    "auth": {
      "RAX-KSKEY:apiKeyCredentials": {
        "username": "'"$username"'",
        "apiKey": "'"$apiKey"'"
      }
    }
  }' | python -m json.tool >"$work/auth.json"
expect 200 "authenticate (API key)"
# From the resulting json, set TOKEN and ENDPOINT (the region's cloudImages publicURL).
eval "$(from_catalog "$work/auth.json" DFW)"
[ -n "$TOKEN" ] && [ -n "$ENDPOINT" ]

# --- List available images
curl -s $ENDPOINT/images -H "X-Auth-Token: $TOKEN" | python -m json.tool >"$work/list.json"
expect 200 "list images"
grep -q "$imageId" "$work/list.json" || { echo "FAIL: the demo image is not listed" >&2; exit 1; }

# --- Get image details
curl -s $ENDPOINT/images/$imageId \
  -H "X-Auth-Token: $TOKEN" | python -m json.tool >/dev/null
expect 200 "get image"

# --- Update an image
curl -s $ENDPOINT/images/$imageId -X PATCH \
  -H "X-Auth-Token: $TOKEN" \
  -H "Content-Type: application/openstack-images-v2.1-json-patch" \
  -H "Accent: application/json" \
  -d '[
    {
      "op": "add",
      "path": "/someAttribute",
      "value": "someValue"
    },
    {
      "op": "add",
      "path": "/anotherAttribute",
      "value": "anotherValue"
    }
  ]' | python -m json.tool >"$work/patched.json"
expect 200 "update image"
grep -q '"someAttribute": "someValue"' "$work/patched.json"

# --- Export an image to Cloud Files (the receiving container exists in the object store)
mkdir -p "$work/imgshare.db.objects/DFW/111111/receivingSwiftContainer"
curl -s -X POST $ENDPOINT/tasks \
  -H "X-Auth-Token: $TOKEN" \
  -d '{
    "type": "export",
    "input": {
      "image_uuid": "'"$imageId"'",
      "receiving_swift_container": "receivingSwiftContainer"
    }
  }' | python -m json.tool >"$work/export.json"
expect 201 "create export task"
export_task=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$work/export.json")

# --- Import an image from Cloud Files (a small VHD put where the quickstart names it)
mkdir -p "$work/imgshare.db.objects/DFW/111111/exportSwiftContainer"
cp tests/fixtures/vhd/dynamic.vhd "$work/imgshare.db.objects/DFW/111111/exportSwiftContainer/my-image.vhd"
curl -s $ENDPOINT/tasks -X POST \
  -H "X-Auth-Token: $TOKEN" \
  -d '{
    "type": "import",
    "input": {
      "image_properties": {
        "name": "My New Image"
      },
      "import_from": "exportSwiftContainer/my-image.vhd"
    }
  }' | python -m json.tool >"$work/import.json"
expect 201 "create import task"
import_task=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$work/import.json")

# The tasks end: the export writes the demo image's bytes (a small generated VHD) to the
# receiving container, and the import makes "My New Image".
# wait_task ID STATUS MESSAGE-PART: the task reaches STATUS with MESSAGE-PART in its message.
wait_task() {
  local status=""
  for _ in $(seq 1 100); do
    curl -s $ENDPOINT/tasks/$1 -H "X-Auth-Token: $TOKEN" | python -m json.tool >"$work/task.json"
    expect 200 "get task $1" >/dev/null
    status=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["status"])' "$work/task.json")
    case $status in success | failure) break ;; esac
    sleep 0.1
  done
  if [ "$status" != "$2" ] || ! grep -q "$3" "$work/task.json"; then
    echo "FAIL: task $1 ended $status, expected $2 with \"$3\":" >&2
    cat "$work/task.json" >&2
    exit 1
  fi
  echo "ok: task $1 ended $status"
}
wait_task "$export_task" success '"export_location"'
test -s "$work/imgshare.db.objects/DFW/111111/receivingSwiftContainer/$imageId.vhd"
wait_task "$import_task" success '"image_id"'

# --- Share an image (the producer adds the consumer's account)
curl -s -X POST $ENDPOINT/images/$imageId/members \
  -H "X-Auth-Token: $TOKEN" \
  -H "Content-Type: application/json" \
  -H "Accept: application/json" \
  -d '{ "member": "'"$memberId"'" }' | python -m json.tool >/dev/null
expect 200 "add member"

# The consumer authenticates the same way, in its own shell.
producer_token=$TOKEN
curl -s -X POST $IDENTITY/v2.0/tokens \
  -H "Content-Type: application/json" \
  -d '{
    "auth": {
      "RAX-KSKEY:apiKeyCredentials": {
        "username": "consumer",
        "apiKey": "'"$consumer_key"'"
      }
    }
  }' | python -m json.tool >"$work/auth-consumer.json"
expect 200 "authenticate the consumer"
eval "$(from_catalog "$work/auth-consumer.json" DFW)"

curl -s -X PUT $ENDPOINT/images/$imageId/members/$memberId \
  -H "X-Auth-Token: $TOKEN" \
  -H "Content-Type: application/json" \
  -H "Accept: application/json" \
  -d '{ "status": "accepted" }' | python -m json.tool >/dev/null
expect 200 "accept (consumer)"

curl -s $ENDPOINT/images/$imageId/members/$memberId \
  -H "X-Auth-Token: $TOKEN" \
  -H "Accept: application/json" | python -m json.tool >"$work/member.json"
expect 200 "get member (consumer)"
grep -q '"status": "accepted"' "$work/member.json"
curl -s $ENDPOINT/images -H "X-Auth-Token: $TOKEN" | python -m json.tool >"$work/consumer-list.json"
expect 200 "list images (consumer)"
grep -q "$imageId" "$work/consumer-list.json" || { echo "FAIL: the accepted image is not listed" >&2; exit 1; }

TOKEN=$producer_token
curl -s $ENDPOINT/images/$imageId/members \
  -H "X-Auth-Token: $TOKEN" \
  -H "Accept: application/json" | python -m json.tool >/dev/null
expect 200 "list members"

curl -i -X DELETE $ENDPOINT/images/$imageId/members/$memberId \
    -H "X-Auth-Token: $TOKEN"
expect 204 "delete member"

# --- Regions: the same token, ORD's endpoint from the catalog; DFW's image is not there.
eval "$(from_catalog "$work/auth.json" ORD)"
[ "$TOKEN" = "$producer_token" ]
curl -s $ENDPOINT/images -H "X-Auth-Token: $TOKEN" | python -m json.tool >"$work/ord.json"
expect 200 "list images in ORD"
if grep -q "$imageId" "$work/ord.json"; then
  echo "FAIL: DFW's image is listed in ORD" >&2
  exit 1
fi
curl -s $ENDPOINT/images/$imageId -H "X-Auth-Token: $TOKEN" >/dev/null
expect 404 "DFW's image in ORD"

# --- Revocation: the token is refused afterwards.
curl -s -X DELETE $IDENTITY/v2.0/tokens -H "X-Auth-Token: $TOKEN"
expect 204 "revoke the token"
curl -s $ENDPOINT/images -H "X-Auth-Token: $TOKEN" >/dev/null
expect 401 "a revoked token"
echo "quickstart: all steps passed"
