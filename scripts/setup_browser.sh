#!/usr/bin/env bash
# Chromium for the web console's end-to-end tests (tests/integration/test_console_browser.py):
# Debian's `chromium` package, which Playwright for Python drives (it is pointed at the
# package's executable; Playwright's own browser download is never used). Idempotent:
# installs with apt only when chromium is missing (root only).
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromium ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup-browser: installing chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
    echo "setup-browser: chromium is missing; install it as root (apt-get install chromium)" >&2
    exit 1
fi
