#!/bin/sh
# The browser of the console's tests (tests/browser): Debian's Chromium at /usr/bin/chromium,
# driven by Playwright for Python (whose own browser download cannot reach the internet here).
# Installs it with apt-get when it is missing; says what to do when it cannot. Idempotent.
set -eu

BROWSER="${OUTLAST_TEST_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$BROWSER" ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: no $BROWSER and no apt-get: install Chromium yourself and point" >&2
    echo "OUTLAST_TEST_CHROMIUM at it (the browser tests are skipped without it, failed under CI=true)." >&2
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "install_browser: no $BROWSER; install it with: sudo apt-get install -y chromium" >&2
    echo "(the browser tests are skipped without it, failed under CI=true)." >&2
    exit 0
fi

echo "install_browser: installing Debian's chromium for the browser tests..." >&2
if ! { $SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null 2>&1 \
         && $SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }; }; then
    echo "install_browser: apt-get could not install chromium (offline? no Debian mirror?)." >&2
    echo "Install it by hand (apt-get install -y chromium) or set OUTLAST_TEST_CHROMIUM." >&2
    # A CI run must have its browser: there the missing browser is an error, not a skip.
    [ "${CI:-}" = "true" ] && exit 1
    exit 0
fi
if [ ! -x "$BROWSER" ]; then
    echo "install_browser: chromium is installed but $BROWSER is not there: set OUTLAST_TEST_CHROMIUM." >&2
    [ "${CI:-}" = "true" ] && exit 1
    exit 0
fi
echo "install_browser: $("$BROWSER" --version 2>/dev/null || echo "$BROWSER installed")" >&2
