#!/usr/bin/env bash
# Make sure a local S3-compatible server (moto) answers on 127.0.0.1:$QUIVER_S3_PORT
# (default 19000). Idempotent: a server already answering is left alone. Otherwise moto is
# started in the background (installed first into $HOME/.cache/quiver/venvs/moto when
# `moto_server` is not on the PATH), logging to $HOME/.cache/quiver/logs/s3.log
# (s3-$PORT.log off the default port), and waited for. Exits non-zero with one readable
# line when it cannot be made to answer.
#
# moto accepts any credentials until told otherwise: tests that need signatures checked
# turn that on at runtime (POST /moto-api/reset-auth) on a server of their own port.
set -euo pipefail

port=${QUIVER_S3_PORT:-19000}
cache=${HOME}/.cache/quiver
venv=${cache}/venvs/moto
log_file=${cache}/logs/s3.log
if [ "$port" != 19000 ]; then
  log_file=${cache}/logs/s3-${port}.log
fi

die() { echo "s3.sh: error: $*" >&2; exit 1; }

case $port in
  '' | *[!0-9]*) die "QUIVER_S3_PORT=${port} is not a port number" ;;
esac
[ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "QUIVER_S3_PORT=${port} is not a port number"

# Any HTTP answer counts (moto answers GET / with the bucket listing, or an error once
# signatures are checked).
answers() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:${port}/"; }

command -v curl >/dev/null 2>&1 || die "curl is needed to probe 127.0.0.1:${port}"

if answers; then
  exit 0
fi

moto_server=$(command -v moto_server || true)
if [ -z "$moto_server" ]; then
  moto_server=${venv}/bin/moto_server
  if [ ! -x "$moto_server" ]; then
    command -v python3 >/dev/null 2>&1 || die "python3 is needed to install moto (pip install 'moto[server]')"
    echo "s3.sh: installing moto[server] into ${venv}" >&2
    python3 -m venv "$venv" >/dev/null || die "could not create the virtualenv ${venv}"
    "${venv}/bin/pip" install --quiet 'moto[server]' >/dev/null ||
      die "could not pip install 'moto[server]' into ${venv}"
  fi
fi

mkdir -p "$(dirname "$log_file")"
echo "s3.sh: starting moto on 127.0.0.1:${port} (log: ${log_file})" >&2
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
die "moto did not answer on 127.0.0.1:${port} within 30 seconds (log: ${log_file})"
