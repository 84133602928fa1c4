#!/usr/bin/env bash
# Install Debian's nginx for the replica tests (tests/integration/test_replicas.py), which
# start a private nginx of their own (grpc_pass in front of several latm serve, on a
# loopback port, with its config, logs and pid file in a temporary folder); the system's
# own nginx service is not needed. Idempotent; needs root for the install.
set -euo pipefail

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup-nginx: installing nginx"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
else
    echo "setup-nginx: nginx is missing; install it as root (apt-get install nginx)" >&2
    exit 1
fi
