#!/usr/bin/env bash
# Make sure the web catalog's browser tests can run: Chromium (Debian's `chromium`
# package), Node.js with npm, and playwright-core from ui/tests/package-lock.json
# (`npm ci`, into ui/tests/node_modules). Playwright drives the system Chromium, so no
# browser is downloaded. Idempotent and quick when everything is there; anything that
# cannot be installed fails loudly: the browser tests never skip.
#
# Prints the Chromium path on stdout (the last line) for the caller.
set -euo pipefail

SCRIPT_NAME=ui-browser
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/.."

chromium_path() {
  local candidate
  for candidate in "${QUIVER_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# Several test processes may call this at once: one installs, the others wait.
lock="${TMPDIR:-/tmp}/quiver-ui-browser.lock"
exec 9>"$lock"
flock 9

if ! chromium_path >/dev/null; then
  apt_install chromium chromium-driver
fi
chromium=$(chromium_path) || die "chromium is still missing after installing it"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] || die "node $(node --version) is too old: the browser tests need 18 or newer"

# `npm ci` only when playwright-core is missing or not the version the lockfile pins.
tests=ui/tests
wanted=$(node -p "require('./$tests/package-lock.json').packages['node_modules/playwright-core'].version")
installed=$(node -p "try { require('./$tests/node_modules/playwright-core/package.json').version } catch { '' }")
if [ "$installed" != "$wanted" ]; then
  log "installing playwright-core $wanted (npm ci in $tests)"
  (cd "$tests" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2) \
    || die "npm ci in $tests failed"
fi
[ -f "$tests/node_modules/playwright-core/package.json" ] || die "playwright-core is not installed in $tests/node_modules"

log "chromium $("$chromium" --version 2>/dev/null | tr -d '\n'), node $(node --version), playwright-core $(node -p "require('./$tests/node_modules/playwright-core/package.json').version")"
echo "$chromium"
