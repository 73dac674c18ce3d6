#!/usr/bin/env bash
# The one test command (README, .ci/run): provision Postgres and Redis when absent, then
# formatting, lints and every test of the workspace, with the time of each step.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quiver/target}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

summary=()
step() {
  local name=$1
  shift
  echo "==> $name: $*"
  local start=$SECONDS
  if "$@"; then
    summary+=("$(printf '%-12s ok      %5ss' "$name" $((SECONDS - start)))")
  else
    local status=$?
    summary+=("$(printf '%-12s FAILED  %5ss' "$name" $((SECONDS - start)))")
    printf '%s\n' "${summary[@]}" >&2
    echo "==> $name failed (exit $status)" >&2
    exit "$status"
  fi
}

started=$SECONDS
step services ./scripts/services.sh
step fmt cargo fmt --all --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  step tests cargo nextest run --workspace --no-fail-fast
  # nextest does not run doc tests; they are examples people copy, so run them too.
  step doctests cargo test --workspace --doc
else
  step tests cargo test --workspace --no-fail-fast
fi

echo "==> all steps passed in $((SECONDS - started))s"
printf '%s\n' "${summary[@]}"
