#!/usr/bin/env bash
# Quickstart: build `quiver`, serve the embedded metadata store from a temporary
# directory, plan and apply the example definitions in examples/quickstart/defs, browse
# the catalog, then stop the server and remove the directory. Needs only a Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quiver/target}"
DEFS=examples/quickstart/defs
started=$SECONDS

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
[ -t 1 ] || say() { printf '\n==> %s\n' "$*"; }

say "building quiver (the first build takes a few minutes)"
cargo build -p quiver-cli
QUIVER="$CARGO_TARGET_DIR/debug/quiver"

workdir=$(mktemp -d "${TMPDIR:-/tmp}/quiver-quickstart.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT

say "starting quiver serve on the embedded store in $workdir"
# Port 0 picks a free port; the server logs the URL it listens on.
env -u QUIVER_DATABASE_URL -u QUIVER_SERVER RUST_LOG=info \
  "$QUIVER" serve --data-dir "$workdir/data" --listen 127.0.0.1:0 2>"$workdir/server.log" &
server_pid=$!

url=""
for _ in $(seq 1 100); do
  url=$(grep -o 'listening on http://[0-9.:]*' "$workdir/server.log" | head -n 1 | sed 's/^listening on //' || true)
  [ -n "$url" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$workdir/server.log" >&2
    echo "quickstart: quiver serve exited early" >&2
    exit 1
  fi
  sleep 0.1
done
[ -n "$url" ] || { cat "$workdir/server.log" >&2; echo "quickstart: no URL in the server log" >&2; exit 1; }

# GET a path and print the HTTP status code, with nothing but bash.
http_status() {
  local hostport=${1#http://}
  (
    exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}"
    printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$2" "$hostport" >&3
    IFS=' ' read -r _ status _ <&3
    echo "$status"
  ) 2>/dev/null || true
}
for _ in $(seq 1 100); do
  [ "$(http_status "$url" /readyz)" = "200" ] && break
  sleep 0.1
done
[ "$(http_status "$url" /readyz)" = "200" ] || { cat "$workdir/server.log" >&2; echo "quickstart: $url/readyz never answered 200" >&2; exit 1; }
echo "ready at $url (API docs: $url/api/v1/docs)"

run() {
  printf '\n$ quiver %s\n' "$*"
  "$QUIVER" "$@"
}
export QUIVER_SERVER="$url"

say "what would applying $DEFS change?"
run plan -f "$DEFS"

say "apply it (atomically: everything or nothing)"
applied=$(run apply -f "$DEFS")
echo "$applied"

say "plan again: everything is unchanged"
run plan -f "$DEFS"

say "browse the catalog"
run list features
run list sources
run list training-sets
run get feature avg_amount_7d

say "lineage of the training set"
run lineage training_set fraud_training

say "jobs"
run jobs
queued=$("$QUIVER" jobs --state queued --output json | grep -c '"state": "queued"' || true)

say "summary"
cat <<SUMMARY
$(echo "$applied" | tail -n 1)
The embedded server at $url held the catalog in $workdir; both go away now.
$queued jobs are queued (SQL transformation, training-set build, online materializations):
they run once execution providers exist (a later issue), so those resources stay pending.
Quickstart finished in $((SECONDS - started))s.
SUMMARY
