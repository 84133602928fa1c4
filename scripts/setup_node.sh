#!/usr/bin/env bash
# Node.js and the packages of the interoperability clients (tests/interop/node), pinned
# in its package-lock.json: a gRPC client written from the proto alone with @grpc/grpc-js
# (tests/integration/test_api_interop.py), and an MCP client on the official TypeScript
# SDK, @modelcontextprotocol/sdk (tests/integration/test_mcp_node.py).
# Idempotent: installs node/npm with apt when missing (root only), and runs `npm ci` only
# when node_modules is missing or was installed from another package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=tests/interop/node
stamp="$dir/node_modules/.latm-lock.sha256"

if ! { command -v node && command -v npm; } >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup-node: installing nodejs and npm"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "setup-node: node and npm are missing; install them as root" \
             "(apt-get install nodejs npm)" >&2
        exit 1
    fi
fi

major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 18 ]; then
    echo "setup-node: node $(node --version) is too old; the client needs node 18 or later" >&2
    exit 1
fi

want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "setup-node: npm ci in $dir"
npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
echo "$want" >"$stamp"
