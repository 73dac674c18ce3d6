#!/usr/bin/env bash
# Make sure the services the tests talk to are up on 127.0.0.1: PostgreSQL on 5432,
# Redis on 6379, and the S3, Snowflake, BigQuery and DynamoDB emulators
# (scripts/emulators/). A stopped service is started; a missing one is installed from Debian's
# packages first. Anything that cannot be made to work fails loudly: tests never skip a
# service.
set -euo pipefail

SCRIPT_NAME=services
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# wait_until DESCRIPTION COMMAND...: retry for up to 30 seconds.
wait_until() {
  local what=$1
  shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  die "$what did not come up within 30 seconds"
}

postgres_ready() { pg_isready -q -h 127.0.0.1 -p 5432; }

ensure_postgres() {
  if command -v pg_isready >/dev/null 2>&1 && postgres_ready; then
    log "postgres is up on 127.0.0.1:5432"
  else
    local installed_now=false
    if ! ls -d /etc/postgresql/*/main >/dev/null 2>&1; then
      apt_install postgresql
      installed_now=true
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    if $installed_now; then
      # A fresh cluster asks for passwords over TCP; the tests connect as `postgres`
      # without one, as on the project's machines. Only a cluster installed right here is
      # changed: an existing installation's authentication is left alone.
      local hba="/etc/postgresql/$version/main/pg_hba.conf"
      as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    log "starting postgres $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
      postgres_ready ||
      die "could not start postgres $version (see /var/log/postgresql/)"
    wait_until "postgres on 127.0.0.1:5432" postgres_ready
    if $installed_now; then
      # The package may have started the cluster before pg_hba.conf was changed.
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    fi
    log "postgres is up on 127.0.0.1:5432"
  fi
  if command -v psql >/dev/null 2>&1; then
    psql "$DATABASE_URL" -Atqc 'SELECT 1' >/dev/null ||
      die "postgres is up but refuses $DATABASE_URL; allow that user to connect without a password from 127.0.0.1 (pg_hba.conf) or set DATABASE_URL"
  fi
}

redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

ensure_redis() {
  if command -v redis-cli >/dev/null 2>&1 && redis_ready; then
    log "redis is up on 127.0.0.1:6379"
    return
  fi
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    apt_install redis-server
  fi
  log "starting redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null ||
    die "could not start redis-server"
  wait_until "redis on 127.0.0.1:6379" redis_ready
  log "redis is up on 127.0.0.1:6379"
}

# Local stand-ins for the cloud services, over their real network protocols: S3 (moto),
# Snowflake (fakesnow) and BigQuery (bqemulator). Each script is idempotent: it returns at
# once when its port answers, else installs the emulator from PyPI into a private
# virtualenv under ~/.cache/quiver/venvs and starts it on 127.0.0.1. Started one after the
# other here so that parallel test processes never race to install the same one.
ensure_emulators() {
  local emulator
  for emulator in s3 fakesnow bqemulator dynamodb; do
    "$(dirname "$0")/emulators/${emulator}.sh" || die "the ${emulator} emulator could not start (see ~/.cache/quiver/logs/${emulator}.log)"
    log "${emulator} emulator is up"
  done
}

# Chromium, Node and playwright-core for the web catalog's browser tests (tests/tests/ui.rs
# runs the same script, so it also works without this step).
ensure_browser() {
  "$(dirname "$0")/ui-browser.sh" >/dev/null || die "the browser tests' Chromium, Node or playwright-core could not be installed"
  log "chromium and playwright-core are ready"
}

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ensure_postgres
ensure_redis
ensure_emulators
ensure_browser
