"""Opening a tunnel through a proxy on plain sockets: a pump around `hybi.sansio.proxy`.

TLS to the server inside TLS to an `https://` proxy needs a second TLS layer over the
first, which `ssl.SSLSocket` cannot wrap. The outer TLS socket is then handed to a relay
thread, which copies bytes between it and one end of a socket pair; the server's TLS runs
over the other end, an ordinary socket for the connection's pump.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl as ssl_module
import threading
from collections.abc import Callable

from hybi._proxy import is_address, proxy_tls_failed
from hybi.exceptions import InvalidProxyMessage
from hybi.sansio.proxy import Proxy, proxy_handshake

__all__ = ["open_tunnel", "relay"]

_READ_SIZE = 65536
_HIGH_WATER = 1 << 20
"""Bytes one side of the relay holds for the other before it stops reading."""
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl_module.SSLWantReadError, ssl_module.SSLWantWriteError)


def open_tunnel(
    proxy: Proxy,
    host: str,
    port: int,
    *,
    proxy_ssl: ssl_module.SSLContext | None,
    proxy_server_hostname: str | None,
    user_agent: str | None,
    remaining: Callable[[], float | None],
) -> socket.socket:
    """A socket to the proxy (TLS for an https:// one) on which a tunnel to `host:port`
    is open. `remaining()` gives the time left to open it (None: no limit)."""
    if not proxy.remote_dns and not is_address(host):
        family = socket.AF_INET if proxy.scheme == "socks4" else socket.AF_UNSPEC
        host = str(socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)[0][4][0])
    handshake = proxy_handshake(proxy, host, port, user_agent=user_agent)
    sock = socket.create_connection((proxy.host, proxy.port), timeout=remaining())
    try:
        if proxy_ssl is not None:
            sock.settimeout(remaining())
            try:
                sock = proxy_ssl.wrap_socket(sock, server_hostname=proxy_server_hostname or proxy.host)
            except ssl_module.SSLCertVerificationError:
                raise
            except (ssl_module.SSLError, ConnectionResetError) as error:
                raise proxy_tls_failed(proxy, error) from error
        while not handshake.done:
            data = handshake.data_to_send()
            if data:
                sock.settimeout(remaining())
                sock.sendall(data)
            sock.settimeout(remaining())
            try:
                data = sock.recv(_READ_SIZE)
            except ConnectionError as error:
                lost = InvalidProxyMessage(f"the connection to the proxy was lost before the tunnel was open ({error})")
                lost.retryable = True
                raise lost from error
            if data:
                handshake.receive_data(data)
            else:
                handshake.receive_eof()
        if handshake.trailing:
            raise InvalidProxyMessage("the server sent bytes through the tunnel before the client's request")
    except BaseException:
        sock.close()
        raise
    return sock


def relay(outer: ssl_module.SSLSocket) -> socket.socket:
    """A socket whose bytes a thread carries to and from `outer` (TLS to the proxy), so
    that another TLS layer can wrap it. The thread ends once either side has closed."""
    mine, theirs = socket.socketpair()
    thread = threading.Thread(target=_relay, args=(outer, mine), name="hybi-tls-relay", daemon=True)
    thread.start()
    return theirs


def _relay(outer: ssl_module.SSLSocket, inner: socket.socket) -> None:
    outer.setblocking(False)
    inner.setblocking(False)
    to_outer = bytearray()
    to_inner = bytearray()
    outer_eof = inner_eof = False
    selector = selectors.DefaultSelector()
    registered: dict[socket.socket, int] = {}

    def want(sock: socket.socket, events: int) -> None:
        if registered.get(sock, 0) == events:
            return
        if events == 0:
            selector.unregister(sock)
            del registered[sock]
        elif sock in registered:
            selector.modify(sock, events)
            registered[sock] = events
        else:
            selector.register(sock, events)
            registered[sock] = events

    try:
        while True:
            read_outer = not outer_eof and len(to_inner) < _HIGH_WATER
            read_inner = not inner_eof and len(to_outer) < _HIGH_WATER
            if outer_eof and not to_inner:
                break  # the server's side ended and everything went on
            if inner_eof and not to_outer:
                break  # the connection closed its end and everything went out
            # A TLS socket that wants to write may need to read first, and the other way round.
            outer_events = (selectors.EVENT_READ if read_outer or to_outer else 0) | (
                selectors.EVENT_WRITE if to_outer else 0
            )
            want(outer, outer_events)
            want(inner, (selectors.EVENT_READ if read_inner else 0) | (selectors.EVENT_WRITE if to_inner else 0))
            timeout = 0.0 if read_outer and outer.pending() else None
            selector.select(timeout)
            if read_outer:
                while len(to_inner) < _HIGH_WATER:
                    try:
                        data = outer.recv(_READ_SIZE)
                    except _WOULD_BLOCK:
                        break
                    if not data:
                        outer_eof = True
                        break
                    to_inner += data
            if read_inner:
                try:
                    data = inner.recv(_READ_SIZE)
                except _WOULD_BLOCK:
                    pass
                else:
                    if data:
                        to_outer += data
                    else:
                        inner_eof = True
            if to_outer:
                with contextlib.suppress(*_WOULD_BLOCK):
                    del to_outer[: outer.send(to_outer)]
            if to_inner:
                with contextlib.suppress(*_WOULD_BLOCK):
                    del to_inner[: inner.send(to_inner)]
    except OSError:
        pass  # a reset on either side: closing both tells the other
    finally:
        selector.close()
        with contextlib.suppress(OSError):
            inner.shutdown(socket.SHUT_RDWR)
        inner.close()
        outer.close()
