#!/usr/bin/env bash
# Set up everything the project needs on a fresh Debian machine: system packages
# (bubblewrap for namespaced sandboxes) and a .venv with the project installed.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${LATM_EXTRAS:-dev}"
python="${PYTHON:-python3}"

if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing bubblewrap"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
    else
        echo "setup: bubblewrap is missing; sandboxes will use weaker isolation" \
             "(install it: apt-get install bubblewrap)" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$python" -m venv .venv
fi
stamp=".venv/.latm-installed-$(cat pyproject.toml | sha256sum | cut -c1-16)-${extras//,/_}"
if [ ! -e "$stamp" ]; then
    echo "setup: installing latm[$extras] into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[$extras]"
    rm -f .venv/.latm-installed-*
    touch "$stamp"
fi
