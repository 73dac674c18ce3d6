#!/usr/bin/env bash
# Ensure a bqemulator server (a BigQuery REST emulator backed by DuckDB) answers on
# 127.0.0.1:${QUIVER_BQ_PORT:-19050}. Idempotent: exits 0 at once when the port already
# answers; otherwise installs bqemulator into a private virtualenv, starts it in the
# background and waits (bounded) until its REST API answers.
#
# Usage: bqemulator.sh [ensure]
set -euo pipefail

PORT="${QUIVER_BQ_PORT:-19050}"
HOST=127.0.0.1
PROJECT="${QUIVER_BQ_PROJECT:-quiver-test}"
# Pinned to the versions the BigQuery provider's tests were verified with. DuckDB's
# spatial extension cannot be downloaded here, so it comes from its PyPI package and
# must match the DuckDB version exactly.
BQEMULATOR_VERSION="${QUIVER_BQEMULATOR_VERSION:-1.4.0}"
DUCKDB_VERSION=1.5.5
# DuckDB needs numpy for the Python UDFs bqemulator registers at start.
NUMPY_VERSION=2.4.6
VENV="${HOME}/.cache/quiver/venvs/bqemulator"
LOG_DIR="${HOME}/.cache/quiver/logs"
LOG="${LOG_DIR}/bqemulator.log"
WAIT_SECONDS=90

case "${1:-ensure}" in
  ensure) ;;
  *)
    echo "usage: $0 [ensure]" >&2
    exit 2
    ;;
esac

answers() {
  # Plain TCP probe through bash's /dev/tcp; no curl dependency.
  (exec 3<>"/dev/tcp/${HOST}/${PORT}") 2>/dev/null
}

rest_answers() {
  # The port being open is not enough: the REST API must list datasets.
  "${VENV}/bin/python" - "${HOST}" "${PORT}" "${PROJECT}" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
host, port, project = sys.argv[1:4]
url = f"http://{host}:{port}/bigquery/v2/projects/{project}/datasets"
with urllib.request.urlopen(url, timeout=2) as response:
    sys.exit(0 if response.status == 200 else 1)
EOF
}

if answers; then
  exit 0
fi

if ! command -v python3 >/dev/null 2>&1; then
  echo "bqemulator.sh: python3 is required to run the bqemulator emulator" >&2
  exit 1
fi

mkdir -p "${LOG_DIR}"
# A marker names the pinned versions, so a venv from an older pin is brought up to date.
MARKER="${VENV}/.quiver-installed-${BQEMULATOR_VERSION}-${DUCKDB_VERSION}-${NUMPY_VERSION}"
if [[ ! -f "${MARKER}" ]]; then
  python3 -m venv "${VENV}" >>"${LOG}" 2>&1 \
    || { echo "bqemulator.sh: could not create virtualenv ${VENV} (see ${LOG})" >&2; exit 1; }
  "${VENV}/bin/pip" install --quiet \
    "bqemulator==${BQEMULATOR_VERSION}" \
    "duckdb==${DUCKDB_VERSION}" \
    "duckdb-extension-spatial==${DUCKDB_VERSION}" \
    "numpy==${NUMPY_VERSION}" >>"${LOG}" 2>&1 \
    || { echo "bqemulator.sh: pip install of bqemulator ${BQEMULATOR_VERSION} failed (see ${LOG})" >&2; exit 1; }
  touch "${MARKER}"
fi

# DuckDB looks for extensions in ~/.duckdb/extensions/<version>/<platform>/ and would
# otherwise try to download them.
EXT_SRC=$("${VENV}/bin/python" -c 'import duckdb_extension_spatial, pathlib; print(next(pathlib.Path(duckdb_extension_spatial.__file__).parent.rglob("spatial.duckdb_extension")))' 2>>"${LOG}") \
  || { echo "bqemulator.sh: the spatial extension is missing from duckdb-extension-spatial (see ${LOG})" >&2; exit 1; }
PLATFORM=$("${VENV}/bin/python" -c 'import duckdb; print(duckdb.execute("PRAGMA platform").fetchone()[0])' 2>>"${LOG}") \
  || { echo "bqemulator.sh: could not ask DuckDB for its platform (see ${LOG})" >&2; exit 1; }
EXT_DIR="${HOME}/.duckdb/extensions/v${DUCKDB_VERSION}/${PLATFORM}"
mkdir -p "${EXT_DIR}"
cp -f "${EXT_SRC}" "${EXT_DIR}/spatial.duckdb_extension"

# The server outlives this script (setsid + nohup); its output goes to the log. The
# gRPC port is not used by Quiver, so a free one is picked to avoid clashes.
setsid nohup "${VENV}/bin/bqemulator" start \
  --rest-host "${HOST}" --rest-port "${PORT}" \
  --grpc-host "${HOST}" --grpc-port 0 \
  --ephemeral --project "${PROJECT}" --log-format console \
  >>"${LOG}" 2>&1 </dev/null &
SERVER_PID=$!

for _ in $(seq 1 "${WAIT_SECONDS}"); do
  if rest_answers; then
    exit 0
  fi
  if ! kill -0 "${SERVER_PID}" 2>/dev/null; then
    # Another caller may have started a server on the port first; ours then exits.
    if rest_answers; then
      exit 0
    fi
    echo "bqemulator.sh: bqemulator exited before answering on ${HOST}:${PORT} (see ${LOG})" >&2
    exit 1
  fi
  sleep 1
done
echo "bqemulator.sh: bqemulator did not answer on ${HOST}:${PORT} within ${WAIT_SECONDS}s (see ${LOG})" >&2
exit 1
