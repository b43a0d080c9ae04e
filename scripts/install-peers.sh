#!/usr/bin/env bash
# Installs the WebSocket implementations of other projects that the interop tests talk to:
# Node's "ws" and "websocket" from the npm registry (versions pinned in interop/node/package.json).
# The Python peer (the websockets package) comes with `pip install -e '.[test]'`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "install-peers: installing Node.js and npm with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "install-peers: node and npm are needed; install Node.js first" >&2
        exit 1
    fi
fi

echo "install-peers: node $(node --version), npm $(npm --version 2>/dev/null)"
# No lock file: package.json pins exact versions, and nothing here is published.
npm install --prefix interop/node --no-package-lock --no-audit --no-fund --loglevel=error
node -e "require('./interop/node/node_modules/ws'); require('./interop/node/node_modules/websocket')"
echo "install-peers: ws $(node -p "require('./interop/node/node_modules/ws/package.json').version"), websocket $(node -p "require('./interop/node/node_modules/websocket/package.json').version")"
