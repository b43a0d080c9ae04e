"""Connecting through real proxies, in both layers (asyncio, on uvloop too where TLS goes
inside TLS, and sync): HTTP CONNECT (tinyproxy), an https:// proxy (stunnel in front of
tinyproxy), SOCKS5 and socks5h (microsocks), SOCKS4 and 4a (OpenSSH's `ssh -D`), with and
without credentials, for ws:// and wss://, chosen by URL or by the environment.

Each test proves the proxy carried the connection from the proxy's own log, which names
the target as the proxy received it: the server's unique port, and the host name where the
proxy resolves it (`localhost`) or the address where the client did (`127.0.0.1`).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.interop.proxies import ProxyProcess, free_port, https_proxy, microsocks, ssh_socks, tinyproxy

import hybi
import hybi.sync
from conftest import run
from hybi.sansio.reconnect import Backoff, retryable

pytestmark = pytest.mark.interop

LAYERS = ["asyncio", "sync"]
CREDENTIALS = ("alice", "s3cret.pass")  # partly percent-encoded in the URL (tinyproxy takes only [A-Za-z0-9._-])
USERINFO = "alice:s3%63ret.pass@"
PROXY_VARIABLES = ["http_proxy", "https_proxy", "all_proxy", "no_proxy", "ws_proxy", "wss_proxy", "socks_proxy"]


@dataclass
class TLS:
    server: ssl.SSLContext
    client: ssl.SSLContext
    proxy_pem: Path


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLS:
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server)
    client = ssl.create_default_context()
    authority.configure_trust(client)
    pem = tmp_path_factory.mktemp("tls") / "proxy.pem"
    issued = authority.issue_cert("localhost")
    pem.write_bytes(issued.private_key_pem.bytes() + b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    return TLS(server, client, pem)


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the variables it means; none leaks in from the machine."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def echo(ws: hybi.sync.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


@contextmanager
def ws_server(context: ssl.SSLContext | None = None, versions: Any = (13, 8, 7)) -> Iterator[int]:
    """A hybi echo server on 127.0.0.1, in threads; its port."""
    server = hybi.sync.serve(echo, "127.0.0.1", 0, versions=versions, ssl=context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.port
    finally:
        server.shutdown(10)
        thread.join(10)
        assert not thread.is_alive()


def exchange(layer: str, uri: str, **options: Any) -> tuple[str, object, int]:
    """Open, echo one message, close: the echo, the version, how many handshakes it took."""
    if layer == "sync":
        with hybi.sync.connect(uri, open_timeout=20, **options) as ws:
            ws.send("through the proxy")
            return str(ws.recv(timeout=20)), ws.version, len(ws.handshake_attempts)

    async def main() -> tuple[str, object, int]:
        async with asyncio.timeout(30):
            async with hybi.connect(uri, open_timeout=20, **options) as ws:
                await ws.send("through the proxy")
                return str(await ws.recv()), ws.version, len(ws.handshake_attempts)

    if layer == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main())
    return run(main())


def target(scheme: str, port: int) -> str:
    return f"{scheme}://localhost:{port}/"


# -- HTTP CONNECT ------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("scheme", ["ws", "wss"])
@pytest.mark.parametrize("auth", [False, True], ids=["open", "credentials"])
def test_http_connect(layer: str, scheme: str, auth: bool, tls: TLS, tmp_path: Path) -> None:
    secure = scheme == "wss"
    with (
        ws_server(tls.server if secure else None) as port,
        tinyproxy(tmp_path, CREDENTIALS if auth else None) as proxy,
    ):
        url = f"http://{USERINFO if auth else ''}127.0.0.1:{proxy.port}"
        options: dict[str, Any] = {"ssl": tls.client} if secure else {}
        assert exchange(layer, target(scheme, port), proxy=url, **options) == ("through the proxy", 13, 1)
        assert f"CONNECT localhost:{port} HTTP/1.1" in proxy.log()


@pytest.mark.parametrize("layer", LAYERS)
def test_http_connect_with_a_wrong_password_is_refused_clearly(layer: str, tmp_path: Path) -> None:
    with ws_server() as port, tinyproxy(tmp_path, CREDENTIALS) as proxy:
        for userinfo in ("alice:wrong@", ""):
            with pytest.raises(hybi.InvalidProxyStatus) as caught:
                exchange(layer, target("ws", port), proxy=f"http://{userinfo}127.0.0.1:{proxy.port}")
            # tinyproxy 1.11 answers 401 with WWW-Authenticate where RFC 9110 says 407 with
            # Proxy-Authenticate; hybi reports whichever came.
            response = caught.value.response
            assert response.status in (401, 407)
            assert "Basic" in (
                response.headers.get("Proxy-Authenticate") or response.headers.get("WWW-Authenticate") or ""
            )
            assert f"proxy refused the tunnel: {response.status}" in str(caught.value)
            assert not retryable(caught.value)


def test_reconnecting_stops_at_a_proxy_refusal(tmp_path: Path) -> None:
    with ws_server() as port, tinyproxy(tmp_path, CREDENTIALS) as proxy:
        url = f"http://alice:no@127.0.0.1:{proxy.port}"

        async def refused() -> None:
            async for _ in hybi.connect(target("ws", port), proxy=url, backoff=Backoff(0, 1, 0)):
                raise AssertionError("no connection may open")

        with pytest.raises(hybi.InvalidProxyStatus):
            run(refused())
        with pytest.raises(hybi.InvalidProxyStatus):
            for _ in hybi.sync.connect(target("ws", port), proxy=url, backoff=Backoff(0, 1, 0)):
                raise AssertionError("no connection may open")
        assert proxy.log().count(f"CONNECT localhost:{port}") == 2  # one attempt each


@pytest.mark.parametrize("layer", LAYERS)
def test_reconnecting_retries_a_proxy_that_is_not_there_yet(layer: str, tmp_path: Path) -> None:
    proxy_port = free_port()
    started: list[ProxyProcess] = []
    with ws_server() as port, ExitStack() as stack:

        class StartTheProxy(Backoff):
            """Starts the proxy when the first attempt has failed, and waits no more."""

            def next_delay(self) -> float:
                started.append(stack.enter_context(tinyproxy(tmp_path, port=proxy_port)))
                return 0.0

        client: Any
        if layer == "sync":
            client = hybi.sync.connect(
                target("ws", port), proxy=f"http://127.0.0.1:{proxy_port}", backoff=StartTheProxy()
            )
            for ws in client:
                ws.send("again")
                assert ws.recv(timeout=20) == "again"
                break
        else:

            async def main() -> None:
                url = f"http://127.0.0.1:{proxy_port}"
                async for ws in hybi.connect(target("ws", port), proxy=url, backoff=StartTheProxy()):
                    await ws.send("again")
                    assert await ws.recv() == "again"
                    break

            run(main())
        assert len(started) == 1
        assert f"CONNECT localhost:{port}" in started[0].log()


# -- https:// proxies: TLS in TLS ----------------------------------------------------------------


@pytest.mark.parametrize("layer", [*LAYERS, "uvloop"])
@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_https_proxy(layer: str, scheme: str, tls: TLS, tmp_path: Path) -> None:
    secure = scheme == "wss"
    with ws_server(tls.server if secure else None) as port, https_proxy(tmp_path, tls.proxy_pem, CREDENTIALS) as proxy:
        options: dict[str, Any] = {"ssl": tls.client} if secure else {}
        url = f"https://{USERINFO}localhost:{proxy.port}"
        result = exchange(layer, target(scheme, port), proxy=url, proxy_ssl=tls.client, **options)
        assert result == ("through the proxy", 13, 1)
        assert f"CONNECT localhost:{port} HTTP/1.1" in proxy.log()
        if layer == "sync":
            with hybi.sync.connect(target(scheme, port), proxy=url, proxy_ssl=tls.client, **options) as ws:
                assert ws.remote_address == ("127.0.0.1", proxy.port)  # the proxy's, relayed or not
            relays = [thread for thread in threading.enumerate() if thread.name == "hybi-tls-relay"]
            for thread in relays:
                thread.join(10)  # a hang guard: the relay ends with the connection
            assert not any(thread.is_alive() for thread in relays)


@pytest.mark.parametrize("layer", LAYERS)
def test_https_proxy_certificate_is_checked(layer: str, tls: TLS, tmp_path: Path) -> None:
    with ws_server() as port, https_proxy(tmp_path, tls.proxy_pem) as proxy:
        with pytest.raises(ssl.SSLCertVerificationError):
            exchange(layer, target("ws", port), proxy=f"https://localhost:{proxy.port}")  # default trust
        assert f"CONNECT localhost:{port}" not in proxy.log()


# -- SOCKS5 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("scheme", ["ws", "wss"])
@pytest.mark.parametrize("auth", [False, True], ids=["open", "credentials"])
def test_socks5h(layer: str, scheme: str, auth: bool, tls: TLS, tmp_path: Path) -> None:
    secure = scheme == "wss"
    with (
        ws_server(tls.server if secure else None) as port,
        microsocks(tmp_path, CREDENTIALS if auth else None) as proxy,
    ):
        options: dict[str, Any] = {"ssl": tls.client} if secure else {}
        url = f"socks5h://{USERINFO if auth else ''}127.0.0.1:{proxy.port}"
        assert exchange(layer, target(scheme, port), proxy=url, **options) == ("through the proxy", 13, 1)
        assert f"connected to localhost:{port}" in proxy.log()  # the proxy resolved the name


@pytest.mark.parametrize("layer", LAYERS)
def test_socks5_resolves_the_name_locally(layer: str, tmp_path: Path) -> None:
    with ws_server() as port, microsocks(tmp_path) as proxy:
        assert exchange(layer, target("ws", port), proxy=f"socks5://127.0.0.1:{proxy.port}")[0] == "through the proxy"
        assert f"connected to 127.0.0.1:{port}" in proxy.log()
        assert "localhost" not in proxy.log()


@pytest.mark.parametrize("layer", LAYERS)
def test_socks5_wrong_password(layer: str, tmp_path: Path) -> None:
    with ws_server() as port, microsocks(tmp_path, CREDENTIALS) as proxy:
        with pytest.raises(hybi.SOCKSRefused, match="username or password rejected"):
            exchange(layer, target("ws", port), proxy=f"socks5h://alice:wrong@127.0.0.1:{proxy.port}")
        with pytest.raises(hybi.SOCKSRefused, match="no acceptable authentication method"):
            exchange(layer, target("ws", port), proxy=f"socks5h://127.0.0.1:{proxy.port}")
        assert "connected to" not in proxy.log()


# -- SOCKS4a and SOCKS4 ----------------------------------------------------------------------------


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize(("proxy_scheme", "sent"), [("socks4a", "localhost"), ("socks4", "127.0.0.1")])
def test_socks4(layer: str, proxy_scheme: str, sent: str, tls: TLS, tmp_path: Path) -> None:
    with ws_server(tls.server) as port, ssh_socks(tmp_path) as proxy:
        result = exchange(layer, target("wss", port), proxy=f"{proxy_scheme}://127.0.0.1:{proxy.port}", ssl=tls.client)
        assert result == ("through the proxy", 13, 1)
        assert f"target {sent} port {port}" in proxy.log()


# -- the environment, and proxy=None -----------------------------------------------------------


@pytest.mark.parametrize("layer", LAYERS)
def test_environment_variables_choose_the_proxy(
    layer: str, tls: TLS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "http").mkdir()
    (tmp_path / "socks").mkdir()
    with (
        ws_server(tls.server) as secure_port,
        ws_server() as plain_port,
        tinyproxy(tmp_path / "http") as http,
        microsocks(tmp_path / "socks") as socks,
    ):
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{http.port}")
        monkeypatch.setenv("ALL_PROXY", f"socks5h://127.0.0.1:{socks.port}")
        exchange(layer, target("wss", secure_port), ssl=tls.client)
        assert f"CONNECT localhost:{secure_port}" in http.log()
        monkeypatch.delenv("HTTPS_PROXY")
        exchange(layer, target("ws", plain_port))  # ALL_PROXY, as nothing more precise is set
        assert f"connected to localhost:{plain_port}" in socks.log()

        monkeypatch.setenv("NO_PROXY", "example.com,localhost")
        exchange(layer, target("wss", secure_port), ssl=tls.client)
        monkeypatch.delenv("NO_PROXY")
        exchange(layer, target("ws", plain_port), proxy=None)
        assert http.log().count("CONNECT localhost") == 1  # neither went through a proxy
        assert socks.log().count("connected to") == 1


# -- section 4.4 through a proxy -----------------------------------------------------------------


@pytest.mark.parametrize("layer", LAYERS)
def test_version_retry_opens_a_new_tunnel(layer: str, tmp_path: Path) -> None:
    with ws_server(versions=(8,)) as port, tinyproxy(tmp_path) as proxy:
        url = f"http://127.0.0.1:{proxy.port}"
        assert exchange(layer, target("ws", port), proxy=url, versions=(13, 8)) == ("through the proxy", 8, 2)
        assert proxy.log().count(f"CONNECT localhost:{port} HTTP/1.1") == 2
