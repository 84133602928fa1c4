#!/usr/bin/env bash
# Set up everything the project needs on a fresh Debian machine: system packages
# (bubblewrap for namespaced sandboxes) and a .venv with the project installed.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${LATM_EXTRAS:-dev,local,mcp,kubernetes}"
python="${PYTHON:-python3}"
# llama-cpp-python (the `local` extra) builds from source. llama.cpp's default native build
# picks instructions (AMX) that crash on some CPUs, so build for a portable AVX2 baseline.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON}"

apt_install() {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing bubblewrap"
        apt_install bubblewrap
    else
        echo "setup: bubblewrap is missing; sandboxes will use weaker isolation" \
             "(install it: apt-get install bubblewrap)" >&2
    fi
fi

if [[ ",$extras," == *,local,* ]] && ! { command -v gcc && command -v g++; } >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing a C/C++ compiler (to build llama-cpp-python)"
        apt_install build-essential
    else
        echo "setup: the local model server needs gcc and g++ to build" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$python" -m venv .venv
fi
stamp=".venv/.latm-installed-$(cat pyproject.toml clients/python/pyproject.toml | sha256sum | cut -c1-16)-${extras//,/_}"
if [ ! -e "$stamp" ]; then
    echo "setup: installing latm-client and latm[$extras] into .venv (llama-cpp-python builds in ~4 min once)"
    .venv/bin/python -m pip install -q --upgrade pip
    # latm depends on latm-client (clients/python: the API's client and generated code),
    # which no package index has: both are installed from the checkout, in one resolve.
    .venv/bin/python -m pip install -q -e clients/python -e ".[$extras]"
    rm -f .venv/.latm-installed-*
    touch "$stamp"
fi
