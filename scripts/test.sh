#!/usr/bin/env bash
# The one test command (README, .ci/run): provision Postgres, Redis and the S3, Snowflake
# and BigQuery emulators when absent, then formatting, lints and every test of the
# workspace, with the time of each step. Every provider is compiled in: the end-to-end
# package enables the warehouse and S3 features, and cargo unifies features across the
# workspace build.
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
# Doc tests first (nextest does not run them; they are examples people copy), so the
# last test-runner lines of this script are the full suite's summary.
results=$(mktemp)
trap 'rm -f "$results"' EXIT
if cargo nextest --version >/dev/null 2>&1; then
  step doctests cargo test --workspace --doc
  step tests bash -c 'set -o pipefail; cargo nextest run --workspace --no-fail-fast 2>&1 | tee "$0"' "$results"
  counts=$(grep -Eo '[0-9]+ tests? run: [0-9]+ passed(, [0-9]+ failed)?' "$results" | tail -1)
  passed=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$counts")
  failed=$(grep -Eo '[0-9]+ failed' <<<"$counts" | grep -Eo '[0-9]+' || echo 0)
else
  step tests bash -c 'set -o pipefail; cargo test --workspace --no-fail-fast 2>&1 | tee "$0"' "$results"
  passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$results" | grep -Eo '[0-9]+' | paste -sd+ | bc)
  failed=0
fi

echo "==> all steps passed in $((SECONDS - started))s"
printf '%s\n' "${summary[@]}"
echo "${passed} passed, ${failed} failed"
