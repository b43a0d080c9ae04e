"""Opening a tunnel through a proxy on asyncio: a pump around `hybi.sansio.proxy`."""

from __future__ import annotations

import asyncio
import socket
import ssl as ssl_module

from hybi._proxy import is_address, proxy_tls_failed
from hybi.exceptions import InvalidProxyMessage, ProxyError
from hybi.sansio.proxy import Proxy, ProxyHandshake, proxy_handshake

__all__ = ["Tunnel", "open_tunnel"]


class Tunnel(asyncio.Protocol):
    """The transport's protocol until the tunnel is open; then it only keeps what comes
    until the WebSocket connection takes the transport over."""

    def __init__(self, handshake: ProxyHandshake, opened: asyncio.Future[None]) -> None:
        self.handshake = handshake
        self.opened = opened
        self.transport: asyncio.Transport | None = None
        self.early = bytearray()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._flush()

    def _flush(self) -> None:
        data = self.handshake.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)

    def _fail(self, error: BaseException) -> None:
        if not self.opened.done():
            self.opened.set_exception(error)
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.opened.done():
            self.early += data  # the server's, before the connection takes over
            return
        try:
            self.handshake.receive_data(data)
        except ProxyError as error:
            self._fail(error)
            return
        self._flush()
        if self.handshake.done:
            self.early += self.handshake.trailing
            self.opened.set_result(None)

    def eof_received(self) -> bool | None:
        try:
            self.handshake.receive_eof()
        except ProxyError as error:
            self._fail(error)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.opened.done():
            error = InvalidProxyMessage(f"the connection to the proxy was lost before the tunnel was open ({exc})")
            error.retryable = True
            self.opened.set_exception(error)


async def open_tunnel(
    proxy: Proxy,
    host: str,
    port: int,
    *,
    proxy_ssl: ssl_module.SSLContext | None,
    proxy_server_hostname: str | None = None,
    user_agent: str | None = None,
) -> tuple[asyncio.Transport, Tunnel]:
    """A transport to the proxy on which a tunnel to `host:port` is open; its protocol is
    the Tunnel, holding in `early` what the server sent already. For `socks5` and `socks4`
    the name is resolved here, as those proxies expect an address."""
    loop = asyncio.get_running_loop()
    if not proxy.remote_dns and not is_address(host):
        family = socket.AF_INET if proxy.scheme == "socks4" else socket.AF_UNSPEC
        infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        host = str(infos[0][4][0])
    handshake = proxy_handshake(proxy, host, port, user_agent=user_agent)
    opened: asyncio.Future[None] = loop.create_future()
    try:
        transport, tunnel = await loop.create_connection(
            lambda: Tunnel(handshake, opened),
            proxy.host,
            proxy.port,
            ssl=proxy_ssl,
            server_hostname=(proxy_server_hostname or proxy.host) if proxy_ssl is not None else None,
        )
    except ssl_module.SSLCertVerificationError:
        raise
    except (ssl_module.SSLError, ConnectionResetError) as error:
        if proxy_ssl is None:
            raise
        raise proxy_tls_failed(proxy, error) from error
    try:
        await opened
    except BaseException:
        transport.abort()
        raise
    transport.pause_reading()
    return transport, tunnel
