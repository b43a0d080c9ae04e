#!/usr/bin/env bash
# Installs the WebSocket implementations of other projects that the interop tests talk to:
# Node's "ws" and "websocket" and playwright-core (to drive a browser) from the npm registry,
# versions pinned in interop/node/package.json; from Debian: Chromium, Perl's
# Protocol::WebSocket (a hixie-75/76 client), Ruby's em-websocket (a server for every
# draft from hixie-75 to version 13), Ruby's websocket gem (a client of most of them) and
# Netty (server and client of 00, 07, 08 and 13, with JZlib), compiled here with the JDK;
# nginx and HAProxy, the reverse proxies of the deployment guide.
# The Python peer (the websockets package) comes with `pip install -e '.[test]'`.
# Autobahn|Testsuite comes from scripts/install-autobahn.sh, called at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "install-peers: installing $* with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "install-peers: $* needed; install it (Debian: apt-get install $*)" >&2
        exit 1
    fi
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi
missing=()
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then missing+=(chromium); fi
perl -MProtocol::WebSocket -e1 2>/dev/null || missing+=(libprotocol-websocket-perl)
ruby -rem-websocket -e1 2>/dev/null || missing+=(ruby ruby-em-websocket)
ruby -rwebsocket -e1 2>/dev/null || missing+=(ruby-websocket)
command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)
[ -f /usr/share/java/netty-codec-http.jar ] || missing+=(libnetty-java)
# JZlib: Netty's zlib for windows below 2**15 (permessage-deflate's *_max_window_bits). Netty
# agrees to those on any Java from 7 on, then fails at the first message without it.
[ -f /usr/share/java/jzlib.jar ] || missing+=(libjzlib-java)
# Reverse proxies that the deployment guide configures (tests/interop/test_reverse_proxies.py).
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

echo "install-peers: node $(node --version), npm $(npm --version 2>/dev/null)"
# No lock file: package.json pins exact versions, and nothing here is published.
npm install --prefix interop/node --no-package-lock --no-audit --no-fund --loglevel=error
node -e "require('./interop/node/node_modules/ws'); require('./interop/node/node_modules/websocket')"
echo "install-peers: ws $(node -p "require('./interop/node/node_modules/ws/package.json').version"), websocket $(node -p "require('./interop/node/node_modules/websocket/package.json').version")"
echo "install-peers: $("${CHROMIUM:-chromium}" --version 2>/dev/null || echo 'chromium (version unknown)')"
echo "install-peers: Protocol::WebSocket $(perl -MProtocol::WebSocket -e 'print $Protocol::WebSocket::VERSION'), em-websocket $(dpkg-query -W -f='${Version}' ruby-em-websocket 2>/dev/null || echo '?'), websocket gem $(dpkg-query -W -f='${Version}' ruby-websocket 2>/dev/null || echo '?')"

# Netty's peer: the module jars (netty-all.jar is only a manifest pointing at them).
netty_classpath=$(ls /usr/share/java/netty-{common,buffer,transport,codec,codec-http,handler,resolver}.jar /usr/share/java/{jctools-core,jzlib}.jar | tr '\n' ':')
mkdir -p interop/java/build
javac -nowarn -cp "$netty_classpath" -d interop/java/build interop/java/NettyPeer.java
echo "interop/java/build:$netty_classpath" > interop/java/build/classpath
echo "install-peers: Netty $(dpkg-query -W -f='${Version}' libnetty-java 2>/dev/null || echo '?'), JZlib $(dpkg-query -W -f='${Version}' libjzlib-java 2>/dev/null || echo '?'), $(javac -version 2>&1)"

# Autobahn|Testsuite (wstest), in a cache folder outside the repository.
bash scripts/install-autobahn.sh
