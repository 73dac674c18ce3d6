#!/usr/bin/env bash
# Quickstart: build `quiver` and the data generator, generate card transactions and
# fraud labels into a temporary directory, serve the embedded store from there, apply
# examples/quickstart/defs, wait for the jobs (a SQL transformation, a point-in-time
# training set, online materializations), download the training set, read online
# features, print a summary, then stop the server and remove the directory. Needs only a
# Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quiver/target}"
DEFS=examples/quickstart/defs
started=$SECONDS

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
[ -t 1 ] || say() { printf '\n==> %s\n' "$*"; }

say "building quiver and the data generator (the first build takes a few minutes)"
cargo build -p quiver-cli -p quiver-quickstart-data
QUIVER="$CARGO_TARGET_DIR/debug/quiver"
GENERATE="$CARGO_TARGET_DIR/debug/quiver-quickstart-data"
repo=$(pwd)

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

say "generating data into $workdir/data"
"$GENERATE" "$workdir/data" --seed 42

say "starting quiver serve on the embedded store in $workdir"
# The server runs in $workdir: the `local-files` provider's root `./data` is relative to
# its working directory. Port 0 picks a free port; the server logs the URL.
(cd "$workdir" && exec env -u QUIVER_DATABASE_URL -u QUIVER_SERVER RUST_LOG=info \
  "$QUIVER" serve --data-dir "$workdir/.quiver" --listen 127.0.0.1:0 2>"$workdir/server.log") &
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

DEFS="$repo/$DEFS"
say "apply $DEFS (atomically: everything or nothing)"
applied=$(run apply -f "$DEFS")
echo "$applied"

say "browse the catalog"
run list features
run lineage training_set fraud_training --direction upstream

say "wait for the jobs: transformation, training set, materializations"
jobs_started=$SECONDS
run jobs wait --timeout 120s || { run jobs; tail -n 20 "$workdir/server.log" >&2; exit 1; }
jobs_took=$((SECONDS - jobs_started))
run jobs

say "download the training set"
run training-set get fraud_training -o "$workdir/fraud_training.parquet"

say "online features for a few users"
run online-features --feature avg_amount_7d --feature txn_count_7d:v1 \
  --entity user=u0001,u0002,u0003,u0042,nobody

say "summary"
cat <<SUMMARY
$(echo "$applied" | tail -n 1)
Jobs: all succeeded; waiting for them took ${jobs_took}s (durations per job in the table above).
Training set fraud_training, downloaded as Parquet:
$("$GENERATE" summarize "$workdir/fraud_training.parquet" | sed 's/^/  /')
The embedded server at $url held everything in $workdir; both go away now.
Quickstart finished in $((SECONDS - started))s.
SUMMARY
