#!/usr/bin/env bash
# Ensure a fakesnow server (a Snowflake emulator backed by DuckDB) answers on
# 127.0.0.1:${QUIVER_FAKESNOW_PORT:-18080}. Idempotent: exits 0 at once when the
# port already answers; otherwise installs fakesnow into a private virtualenv,
# starts it in the background and waits (bounded) until it answers.
set -euo pipefail

PORT="${QUIVER_FAKESNOW_PORT:-18080}"
HOST=127.0.0.1
# Pinned to the versions the Snowflake provider's tests were verified with.
FAKESNOW_VERSION="${QUIVER_FAKESNOW_VERSION:-0.12.1}"
CONNECTOR_VERSION="${QUIVER_SNOWFLAKE_CONNECTOR_VERSION:-4.8.1}"
VENV="${HOME}/.cache/quiver/venvs/fakesnow"
LOG_DIR="${HOME}/.cache/quiver/logs"
LOG="${LOG_DIR}/fakesnow.log"
WAIT_SECONDS=60

answers() {
  # Plain TCP probe through bash's /dev/tcp; no curl dependency.
  (exec 3<>"/dev/tcp/${HOST}/${PORT}") 2>/dev/null
}

if answers; then
  exit 0
fi

if ! command -v python3 >/dev/null 2>&1; then
  echo "fakesnow.sh: python3 is required to run the fakesnow emulator" >&2
  exit 1
fi

mkdir -p "${LOG_DIR}"
if [[ ! -x "${VENV}/bin/fakesnow" ]]; then
  python3 -m venv "${VENV}" >>"${LOG}" 2>&1 \
    || { echo "fakesnow.sh: could not create virtualenv ${VENV} (see ${LOG})" >&2; exit 1; }
  "${VENV}/bin/pip" install --quiet \
    "fakesnow[server]==${FAKESNOW_VERSION}" \
    "snowflake-connector-python==${CONNECTOR_VERSION}" >>"${LOG}" 2>&1 \
    || { echo "fakesnow.sh: pip install of fakesnow ${FAKESNOW_VERSION} failed (see ${LOG})" >&2; exit 1; }
fi

# The server outlives this script (setsid + nohup); its output goes to the log.
setsid nohup "${VENV}/bin/fakesnow" -s --host "${HOST}" -p "${PORT}" >>"${LOG}" 2>&1 </dev/null &

for _ in $(seq 1 "${WAIT_SECONDS}"); do
  if answers; then
    exit 0
  fi
  sleep 1
done
echo "fakesnow.sh: fakesnow did not answer on ${HOST}:${PORT} within ${WAIT_SECONDS}s (see ${LOG})" >&2
exit 1
