#!/usr/bin/env bash
# Make sure a local DynamoDB-compatible server (moto) answers on
# 127.0.0.1:$QUIVER_DYNAMODB_PORT (default 19002). Idempotent: a server already answering
# is left alone. Otherwise moto is started in the background (installed first into
# $HOME/.cache/quiver/venvs/moto when `moto_server` is not on the PATH), logging to
# $HOME/.cache/quiver/logs/dynamodb.log (dynamodb-$PORT.log off the default port), and
# waited for. Exits non-zero with one readable line when it cannot be made to answer.
#
# Its own moto, not the S3 one on 19000: moto keeps every service's state in one process,
# and a test that resets that server (POST /moto-api/reset) or turns on signature checks
# (/moto-api/reset-auth) would otherwise wipe or lock out the DynamoDB tests running
# next to it.
set -euo pipefail

port=${QUIVER_DYNAMODB_PORT:-19002}
cache=${HOME}/.cache/quiver
venv=${cache}/venvs/moto
log_file=${cache}/logs/dynamodb.log
if [ "$port" != 19002 ]; then
  log_file=${cache}/logs/dynamodb-${port}.log
fi

die() { echo "dynamodb.sh: error: $*" >&2; exit 1; }

case $port in
  '' | *[!0-9]*) die "QUIVER_DYNAMODB_PORT=${port} is not a port number" ;;
esac
[ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "QUIVER_DYNAMODB_PORT=${port} is not a port number"

command -v curl >/dev/null 2>&1 || die "curl is needed to probe 127.0.0.1:${port}"

# A DynamoDB answer, not just any HTTP server: ListTables comes back as JSON with a
# TableNames list, or (on a server checking signatures) as an error refusing our key.
answers() {
  curl -s --max-time 2 -X POST "http://127.0.0.1:${port}/" \
    -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=quiver/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
    -d '{"Limit": 1}' 2>/dev/null | grep -qE 'TableNames|__type|InvalidClientTokenId'
}

if answers; then
  exit 0
fi

# Something else holds the port: starting moto would only fail to bind.
if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:${port}/"; then
  die "127.0.0.1:${port} answers HTTP but not DynamoDB's ListTables; free the port or set QUIVER_DYNAMODB_PORT"
fi

moto_server=$(command -v moto_server || true)
if [ -z "$moto_server" ]; then
  moto_server=${venv}/bin/moto_server
  if [ ! -x "$moto_server" ]; then
    command -v python3 >/dev/null 2>&1 || die "python3 is needed to install moto (pip install 'moto[server]')"
    echo "dynamodb.sh: installing moto[server] into ${venv}" >&2
    python3 -m venv "$venv" >/dev/null || die "could not create the virtualenv ${venv}"
    "${venv}/bin/pip" install --quiet 'moto[server]' >/dev/null ||
      die "could not pip install 'moto[server]' into ${venv}"
  fi
fi

mkdir -p "$(dirname "$log_file")"
echo "dynamodb.sh: starting moto on 127.0.0.1:${port} (log: ${log_file})" >&2
nohup "$moto_server" -H 127.0.0.1 -p "$port" >>"$log_file" 2>&1 </dev/null &
pid=$!

for _ in $(seq 1 60); do
  if answers; then
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    die "moto exited before answering on 127.0.0.1:${port}: $(tail -n 1 "$log_file")"
  fi
  sleep 0.5
done
die "moto did not answer DynamoDB requests on 127.0.0.1:${port} within 30 seconds (log: ${log_file})"
