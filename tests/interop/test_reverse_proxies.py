"""hybi behind Debian's nginx and HAProxy, as docs/howto/deploy.md configures them.

Each version's client goes through the proxy to `hybi serve --versions all` and checks the
echo. What the documentation says each proxy does is pinned here:

- nginx (HTTP, with the Upgrade and Connection headers set) carries every version,
  hixie-76 included: it holds back key3, the 8 bytes after the request head that have no
  Content-Length, until the server's 101, and hybi writes that 101 before key3 arrives.
  Host must be passed with its port (`$http_host`), or the hixie drafts' Location check fails.
- HAProxy in HTTP mode carries 13, 8, 7, 6 and 5, and answers the requests without a
  Sec-WebSocket-Key (hixie-75, hixie-76, hybi-02) with its own 400 before any server sees
  them; in TCP mode it carries every version.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.interop.peers import require

from hybi import ALL_VERSIONS, InvalidStatus
from hybi.sync import connect

pytestmark = pytest.mark.interop

HANG_GUARD = 30.0
NO_KEY = ("hybi-02", "hixie-76", "hixie-75")  # versions whose request has no Sec-WebSocket-Key

NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_read_timeout 1h;
        }}
    }}
}}
"""

HAPROXY_CFG = """
defaults
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout tunnel 1h
frontend ws_http
    mode http
    bind 127.0.0.1:{http_port}
    default_backend hybi_http
backend hybi_http
    mode http
    server hybi 127.0.0.1:{backend}
frontend ws_tcp
    mode tcp
    bind 127.0.0.1:{tcp_port}
    default_backend hybi_tcp
backend hybi_tcp
    mode tcp
    server hybi 127.0.0.1:{backend}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    """Wait until something accepts on `port`, failing if `process` exits first."""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nothing listens on {port}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=HANG_GUARD)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def proxies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    """hybi serve, with nginx, HAProxy (HTTP mode) and HAProxy (TCP mode) in front: their ports."""
    nginx, haproxy = shutil.which("nginx") or "/usr/sbin/nginx", shutil.which("haproxy") or "/usr/sbin/haproxy"
    require(Path(nginx).exists(), "nginx (Debian: nginx-light)")
    require(Path(haproxy).exists(), "haproxy")
    directory = tmp_path_factory.mktemp("proxies")
    started: list[subprocess.Popen[bytes]] = []
    try:
        backend = subprocess.Popen(
            [sys.executable, "-m", "hybi", "serve", "--port", "0", "--versions", "all"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        started.append(backend)
        assert backend.stdout is not None
        match = re.search(rb"ws://127\.0\.0\.1:(\d+)/", backend.stdout.readline())
        assert match, "hybi serve did not say where it listens"
        ports = {"backend": int(match.group(1)), "nginx": free_port(), "haproxy-http": free_port()}
        ports["haproxy-tcp"] = free_port()

        (directory / "nginx.conf").write_text(NGINX_CONF.format(dir=directory, port=ports["nginx"], **ports))
        (directory / "haproxy.cfg").write_text(
            HAPROXY_CFG.format(http_port=ports["haproxy-http"], tcp_port=ports["haproxy-tcp"], **ports)
        )
        command = [nginx, "-p", str(directory), "-c", str(directory / "nginx.conf"), "-g", "daemon off;"]
        started.append(subprocess.Popen(command, stderr=subprocess.DEVNULL))
        wait_listening(ports["nginx"], started[-1])
        started.append(subprocess.Popen([haproxy, "-f", str(directory / "haproxy.cfg")], stderr=subprocess.DEVNULL))
        wait_listening(ports["haproxy-http"], started[-1])
        wait_listening(ports["haproxy-tcp"], started[-1])
        yield ports
    finally:
        for process in reversed(started):
            stop(process)


def echo_through(port: int, version: str) -> None:
    with connect(f"ws://127.0.0.1:{port}/", versions=(version,), open_timeout=HANG_GUARD) as ws:
        assert str(ws.version) == version
        ws.send(f"through the proxy in {version}")
        assert ws.recv(timeout=HANG_GUARD) == f"through the proxy in {version}"


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_nginx_carries_every_version(proxies: dict[str, int], version: str) -> None:
    echo_through(proxies["nginx"], version)


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_haproxy_tcp_mode_carries_every_version(proxies: dict[str, int], version: str) -> None:
    echo_through(proxies["haproxy-tcp"], version)


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_haproxy_http_mode_refuses_requests_without_a_key(proxies: dict[str, int], version: str) -> None:
    if version not in NO_KEY:
        echo_through(proxies["haproxy-http"], version)
        return
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{proxies['haproxy-http']}/", versions=(version,), open_timeout=HANG_GUARD).open()
    assert refused.value.response.status == 400
    assert b"400 Bad request" in refused.value.response.body  # HAProxy's own page, not hybi's
