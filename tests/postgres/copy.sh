#!/usr/bin/env bash
# `imgshare copy` between a SQLite file and PostgreSQL, both ways, as a user runs it: a demo
# catalogue copied into a new PostgreSQL database and back into a new file has the same anchor
# and the same log (every stored column) as the original, and verifies; a copy into a database
# whose log is not empty, or that records another profile, is refused with nothing written. The
# audit commands (`head`, `log`, `audit history`, `replay --to`) read the PostgreSQL copy and
# print exactly what they print for the file.
# Called by tests/postgres/run.sh with IMGSHARE_TEST_POSTGRES_URL set; run alone, it starts a
# cluster of its own (cluster.sh). Bounded: every command 120 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/postgres/script.sh
pg_script_begin imgshare_copy
psql_run -c "DROP DATABASE IF EXISTS imgshare_copy_glance" -c "CREATE DATABASE imgshare_copy_glance"
run() { timeout 120 "$binary" "$@"; }
fail() { echo "copy: $*" >&2; exit 1; }

run demo --db "$work/source.db" >/dev/null
anchor=$(run head --db "$work/source.db")
pg="$base/imgshare_copy"

copied=$(run copy --from "$work/source.db" --to "$pg")
[ "$copied" = "$anchor" ] || fail "into PostgreSQL: $copied, the source ends at $anchor"
run verify --db "$pg" --expect-head "$anchor" >/dev/null || fail "the PostgreSQL copy does not verify"
back=$(run copy --from "$pg" --to "$work/back.db")
[ "$back" = "$anchor" ] || fail "back from PostgreSQL: $back, the source ends at $anchor"
cmp <(run log --db "$work/source.db") <(run log --db "$work/back.db") \
  || fail "the log that went to PostgreSQL and back differs from the original"
echo "SQLite -> PostgreSQL -> SQLite: $anchor, logs identical, both copies verified"

# The audit commands on PostgreSQL answer as on the file.
[ "$(run head --db "$pg")" = "$anchor" ] || fail "head on PostgreSQL differs"
cmp <(run log --db "$work/source.db") <(run log --db "$pg") || fail "log on PostgreSQL differs"
image=$(run log --db "$work/source.db" --type image_registered | "$python" -c \
  'import json, sys; print(json.loads(sys.stdin.readline())["stream_id"].removeprefix("image-"))')
cmp <(run audit history "$image" --db "$work/source.db") <(run audit history "$image" --db "$pg") \
  || fail "audit history on PostgreSQL differs"
cmp <(run audit access "$image" --at 4 --db "$work/source.db") \
  <(run audit access "$image" --at 4 --db "$pg") || fail "audit access on PostgreSQL differs"
cmp <(run replay --to 5 --db "$work/source.db" 2>/dev/null) <(run replay --to 5 --db "$pg" 2>/dev/null) \
  || fail "replay --to on PostgreSQL differs"
if run log --db "$base/postgres" 2>"$work/err"; then fail "log read a database without an imgshare log"; fi
grep -q "no imgshare database" "$work/err" || fail "unexpected refusal: $(cat "$work/err")"
echo "head, log, audit history/access, replay --to: the same on PostgreSQL as on the file"

# Refusals, nothing written: a log that is not empty; another profile.
events_before=$(timeout 60 "$pg_bin/psql" "$pg" -qAt -c 'SELECT count(*) FROM events')
if run copy --from "$work/source.db" --to "$pg" 2>"$work/err"; then fail "copied into a non-empty log"; fi
grep -q "not empty" "$work/err" || fail "unexpected refusal: $(cat "$work/err")"
events_after=$(timeout 60 "$pg_bin/psql" "$pg" -qAt -c 'SELECT count(*) FROM events')
[ "$events_before" = "$events_after" ] || fail "a refused copy wrote events"

run demo --db "$work/glance.db" --profile glance >/dev/null
run copy --from "$work/glance.db" --to "$base/imgshare_copy_glance" >/dev/null
if run copy --from "$work/source.db" --to "$base/imgshare_copy_glance" 2>"$work/err"; then
  fail "a rackspace log copied into a glance database"
fi
grep -qi "profile" "$work/err" || fail "unexpected refusal: $(cat "$work/err")"
echo "imgshare copy between SQLite and PostgreSQL: passed"
