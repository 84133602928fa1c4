#!/usr/bin/env bash
# Install PostgreSQL's server binaries for the registry's tests, which start a private
# server of their own (initdb + pg_ctl on a Unix socket in a temporary folder); the
# system's own cluster is not needed. Idempotent; needs root for the install.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup-postgres: installing postgresql"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
else
    echo "setup-postgres: PostgreSQL is missing; install it as root (apt-get install postgresql)" >&2
    exit 1
fi
