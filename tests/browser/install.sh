#!/usr/bin/env bash
# Installs what the browser tests (tests/api/browser.rs -> tests/browser/login.mjs and spa.mjs) need, when missing:
# Debian's chromium (apt, as root) and playwright-core from npm (package-lock.json).
# Idempotent: exits 0 at once when both are present. Never downloads a browser of its own
# (no `playwright install`): the test drives /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if [ -x /usr/bin/chromium ]; then
  echo "chromium: present ($(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium))"
else
  echo "chromium: missing, installing Debian's package with apt-get"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  [ -x /usr/bin/chromium ] || { echo "chromium: apt-get install finished but /usr/bin/chromium is missing" >&2; exit 1; }
  echo "chromium: installed ($(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium))"
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node/npm: missing, installing Debian's nodejs and npm with apt-get"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
fi

if [ -f node_modules/playwright-core/package.json ]; then
  echo "playwright-core: present ($(node -p "require('./node_modules/playwright-core/package.json').version"))"
else
  echo "playwright-core: missing, installing from npm (package-lock.json)"
  # Never download Playwright's own browsers: the test uses Debian's chromium.
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
  if ! npm ci --no-audit --no-fund; then
    echo "playwright-core: npm ci failed, trying npm install"
    npm install --no-audit --no-fund
  fi
  [ -f node_modules/playwright-core/package.json ] || { echo "playwright-core: still missing after npm" >&2; exit 1; }
  echo "playwright-core: installed ($(node -p "require('./node_modules/playwright-core/package.json').version"))"
fi

echo "browser test tooling: ready"
