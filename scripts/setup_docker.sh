#!/usr/bin/env bash
# Provision the docker backend on a fresh Debian machine: Docker's engine, gVisor
# (runsc) and debootstrap from Debian's packages, a running dockerd with runsc
# registered, then the offline base image and the sandbox image.
# Idempotent: each step is skipped when already done. Needs root for the installs.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v runsc >/dev/null 2>&1 || missing+=(runsc)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup-docker: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup-docker: missing ${missing[*]}; install them as root (apt-get install ...)" >&2
        exit 1
    fi
fi

bash scripts/docker_engine.sh

# Builds the base only when absent, and the sandbox image only when its content changed.
.venv/bin/latm image build --offline-base
