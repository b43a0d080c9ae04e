"""Opening a tunnel through a proxy, before the WebSocket handshake: bytes in, bytes out.

- HTTP CONNECT (RFC 9110 section 9.3.6), to `http://` and `https://` proxies, with Basic
  credentials (RFC 7617) from the proxy URL;
- SOCKS5 (RFC 1928) with no authentication or username/password (RFC 1929);
- SOCKS4, and SOCKS4a, which sends the host name for the proxy to resolve.

`socks5h` and `socks4a` send the host name; `socks5` and `socks4` send an address, which
the I/O layer resolves first (`Proxy.remote_dns`), as curl and python-socks do. A
handshake object is fed what the proxy sends (`receive_data`), says what to send
(`data_to_send`), is `done` once the tunnel is open, and keeps the bytes that came after
the proxy's reply in `trailing`: they are the server's. A refusal raises a `ProxyError`.
Choosing a proxy from the environment's variables is `select_proxy`, given what
`urllib.request.getproxies()` returns.
"""

from __future__ import annotations

import base64
import ipaddress
import struct
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hybi.exceptions import InvalidHTTP, InvalidProxy, InvalidProxyMessage, InvalidProxyStatus, SOCKSRefused
from hybi.sansio.http import DEFAULT_LIMITS, Headers, HTTPLimits, parse_response_head
from hybi.sansio.uri import WebSocketURI

__all__ = [
    "HTTPConnect",
    "Proxy",
    "ProxyHandshake",
    "SOCKS4Handshake",
    "SOCKS5Handshake",
    "parse_proxy",
    "proxy_handshake",
    "select_proxy",
]

_SCHEMES = {"http": 80, "https": 443, "socks5h": 1080, "socks5": 1080, "socks4a": 1080, "socks4": 1080}


@dataclass(frozen=True, slots=True)
class Proxy:
    """A proxy URL, parsed: credentials percent-decoded, the scheme's default port filled in."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def tls(self) -> bool:
        """Whether the connection to the proxy itself is TLS (an `https://` proxy)."""
        return self.scheme == "https"

    @property
    def remote_dns(self) -> bool:
        """Whether the proxy resolves the server's name (HTTP, socks5h, socks4a); otherwise
        the client resolves it and sends an address."""
        return self.scheme in ("http", "https", "socks5h", "socks4a")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_proxy(url: str) -> Proxy:
    """Parse `scheme://[user:password@]host[:port]`; InvalidProxy says what is wrong."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise InvalidProxy(f"proxy {url!r}: scheme {scheme or '(none)'!r} is not one of {', '.join(_SCHEMES)}")
    if not parts.hostname:
        raise InvalidProxy(f"proxy {url!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidProxy(f"proxy {url!r}: a path, query or fragment means nothing to a proxy")
    try:
        port = parts.port or _SCHEMES[scheme]
    except ValueError as error:
        raise InvalidProxy(f"proxy {url!r}: bad port ({error})") from None
    username = password = None
    if parts.username is not None:
        if parts.password is None:
            raise InvalidProxy(f"proxy {url!r} names a user without a password")
        try:
            username = urllib.parse.unquote(parts.username, errors="strict")
            password = urllib.parse.unquote(parts.password, errors="strict")
        except UnicodeDecodeError:
            raise InvalidProxy(f"proxy {url!r}: credentials are not percent-encoded UTF-8") from None
    return Proxy(scheme, parts.hostname, port, username, password)


def select_proxy(
    uri: WebSocketURI, proxies: Mapping[str, str], bypass: Callable[[str], bool] = lambda host: False
) -> str | None:
    """The proxy URL for `uri`, from `proxies` as `urllib.request.getproxies()` gives them
    (`HTTPS_PROXY` → "https", `ALL_PROXY` → "all", ...), or None when `bypass("host:port")`
    (`NO_PROXY`) says to connect directly or none applies.

    The order is websockets': "wss"/"ws" first, then "socks", then "https" (for `ws://` too),
    then "http" for `ws://`; `ALL_PROXY` comes last, as for curl. A "socks" entry given as
    `http://host:port` (how some systems declare one) means `socks5h://host:port`.
    """
    if bypass(f"{uri.host}:{uri.port}"):
        return None
    schemes = ("wss", "socks", "https", "all") if uri.secure else ("ws", "socks", "https", "http", "all")
    for scheme in schemes:
        url = proxies.get(scheme)
        if url:
            if scheme == "socks" and url.startswith("http://"):
                url = "socks5h://" + url.removeprefix("http://")
            elif "://" not in url:
                url = "http://" + url  # HTTPS_PROXY=host:port, as curl reads it
            return url
    return None


class ProxyHandshake:
    """What every proxy handshake offers: feed it, send what it says, until `done`."""

    def __init__(self) -> None:
        self._outgoing = bytearray()
        self._buffer = bytearray()
        self.done = False
        self.trailing = b""
        """Bytes that came after the proxy's last reply: the start of the server's stream."""

    def data_to_send(self) -> bytes:
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def receive_data(self, data: bytes) -> None:
        """Take bytes from the proxy; raise a ProxyError when it refuses or says nonsense."""
        if self.done:
            self.trailing += data
            return
        self._buffer += data
        self._advance()

    def receive_eof(self) -> None:
        """The proxy closed before the tunnel was open."""
        if not self.done:
            error = InvalidProxyMessage("the proxy closed the connection before the tunnel was open")
            error.retryable = True  # as a dropped connection: the proxy may be restarting
            raise error

    def _finish(self, used: int) -> None:
        self.done = True
        self.trailing = bytes(self._buffer[used:])
        self._buffer.clear()

    def _advance(self) -> None:  # pragma: no cover - each handshake has its own
        raise NotImplementedError


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class HTTPConnect(ProxyHandshake):
    """`CONNECT host:port` (RFC 9110 section 9.3.6); any 2xx opens the tunnel. A refusal
    raises InvalidProxyStatus with the proxy's status and header fields; the head is
    bounded by `limits` as a handshake's is."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        user_agent: str | None = None,
        limits: HTTPLimits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__()
        self.limits = limits
        authority = _authority(host, port)
        headers = Headers([("Host", authority)])
        if user_agent is not None:
            headers.add("User-Agent", user_agent)
        if username is not None:
            credentials = f"{username}:{password or ''}".encode()
            headers.add("Proxy-Authorization", "Basic " + base64.b64encode(credentials).decode("ascii"))
        self._outgoing += f"CONNECT {authority} HTTP/1.1\r\n".encode("ascii") + headers.serialize() + b"\r\n"
        self._searched = 0

    def _advance(self) -> None:
        try:
            parsed = parse_response_head(self._buffer, self.limits, self._searched)
        except InvalidHTTP as error:
            raise InvalidProxyMessage(f"the proxy's answer to CONNECT is not valid HTTP: {error}") from None
        if parsed is None:
            self._searched = len(self._buffer)
            return
        response, used = parsed
        if not 200 <= response.status < 300:
            body = bytes(self._buffer[used : used + 1024])
            response.body = body
            raise InvalidProxyStatus(response)
        self._finish(used)


_SOCKS5_REPLIES = {
    0x01: ("general SOCKS server failure", True),
    0x02: ("connection not allowed by ruleset", False),
    0x03: ("network unreachable", True),
    0x04: ("host unreachable", True),
    0x05: ("connection refused", True),
    0x06: ("TTL expired", True),
    0x07: ("command not supported", False),
    0x08: ("address type not supported", False),
}
"""RFC 1928 section 6: reply codes, and whether another attempt may succeed."""

_SOCKS4_REPLIES = {
    0x5B: "request rejected or failed",
    0x5C: "the proxy cannot reach the client's identd",
    0x5D: "the client's identd reported another user id",
}


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _name(host: str) -> bytes:
    """A host name as the proxy should get it: ASCII as it is, else IDNA (RFC 5890)."""
    try:
        return host.encode("ascii")
    except UnicodeEncodeError:
        try:
            return host.encode("idna")
        except UnicodeError as error:
            raise InvalidProxy(f"host name {host!r} cannot be sent to a proxy: {error}") from None


class SOCKS5Handshake(ProxyHandshake):
    """RFC 1928: method selection (no authentication, or username/password of RFC 1929
    when credentials are given), then CONNECT. An IP literal goes as an address (IPv4 or
    IPv6); a name goes as a domain name, which the proxy resolves."""

    def __init__(self, host: str, port: int, *, username: str | None = None, password: str | None = None) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self._step = "method"
        methods = b"\x00\x02" if username is not None else b"\x00"
        self._outgoing += bytes([5, len(methods)]) + methods

    def _connect_request(self) -> bytes:
        address = _address(self.host)
        if isinstance(address, ipaddress.IPv4Address):
            target = b"\x01" + address.packed
        elif isinstance(address, ipaddress.IPv6Address):
            target = b"\x04" + address.packed
        else:
            name = _name(self.host)
            if not 0 < len(name) < 256:
                raise InvalidProxy(f"host name {self.host!r} does not fit in a SOCKS5 request")
            target = b"\x03" + bytes([len(name)]) + name
        return b"\x05\x01\x00" + target + struct.pack("!H", self.port)

    def _advance(self) -> None:
        buffer = self._buffer
        while True:
            if self._step == "method":
                if len(buffer) < 2:
                    return
                version, method = buffer[0], buffer[1]
                if version != 5:
                    raise InvalidProxyMessage(f"not a SOCKS5 answer (version byte {version})")
                del buffer[:2]
                if method == 0x00:
                    self._step = "reply"
                    self._outgoing += self._connect_request()
                elif method == 0x02 and self.username is not None:
                    user = self.username.encode()
                    password = (self.password or "").encode()
                    if len(user) > 255 or len(password) > 255:
                        raise InvalidProxy("SOCKS5 user names and passwords are at most 255 bytes (RFC 1929)")
                    self._outgoing += bytes([1, len(user)]) + user + bytes([len(password)]) + password
                    self._step = "auth"
                elif method == 0xFF:
                    wanted = "credentials" if self.username is None else "another method than username/password"
                    raise SOCKSRefused(5, None, f"no acceptable authentication method (it wants {wanted})")
                else:
                    raise InvalidProxyMessage(f"the SOCKS5 proxy chose method {method:#04x}, which was not offered")
            elif self._step == "auth":
                if len(buffer) < 2:
                    return
                status = buffer[1]
                del buffer[:2]
                if status != 0:
                    raise SOCKSRefused(5, None, "username or password rejected (RFC 1929)")
                self._step = "reply"
                self._outgoing += self._connect_request()
            else:
                if len(buffer) < 4:
                    return
                version, code, kind = buffer[0], buffer[1], buffer[3]
                if version != 5:
                    raise InvalidProxyMessage(f"not a SOCKS5 reply (version byte {version})")
                if code != 0:
                    reason, retryable = _SOCKS5_REPLIES.get(code, ("unknown reply code", False))
                    raise SOCKSRefused(5, code, reason, retryable=retryable)
                if kind == 1:
                    length = 4 + 4 + 2
                elif kind == 4:
                    length = 4 + 16 + 2
                elif kind == 3:
                    if len(buffer) < 5:
                        return
                    length = 4 + 1 + buffer[4] + 2
                else:
                    raise InvalidProxyMessage(f"SOCKS5 reply with unknown address type {kind}")
                if len(buffer) < length:
                    return
                self._finish(length)
                return


class SOCKS4Handshake(ProxyHandshake):
    """SOCKS4 CONNECT to an IPv4 address, or SOCKS4a's (a host name, for the proxy to
    resolve, after the address 0.0.0.1). The reply is 8 bytes; 0x5A grants."""

    def __init__(self, host: str, port: int, *, user_id: str = "") -> None:
        super().__init__()
        address = _address(host)
        user = user_id.encode() + b"\x00"
        head = b"\x04\x01" + struct.pack("!H", port)
        if isinstance(address, ipaddress.IPv4Address):
            self._outgoing += head + address.packed + user
        elif address is not None:
            raise InvalidProxy(f"SOCKS4 cannot reach an IPv6 address ({host}): use socks5")
        else:
            self._outgoing += head + b"\x00\x00\x00\x01" + user + _name(host) + b"\x00"

    def _advance(self) -> None:
        if len(self._buffer) < 8:
            return
        version, code = self._buffer[0], self._buffer[1]
        if version not in (0, 4):  # 0 is the protocol's; some servers echo 4
            raise InvalidProxyMessage(f"not a SOCKS4 reply (version byte {version})")
        if code != 0x5A:
            raise SOCKSRefused(4, code, _SOCKS4_REPLIES.get(code, "unknown reply code"))
        self._finish(8)


def proxy_handshake(
    proxy: Proxy, host: str, port: int, *, user_agent: str | None = None, limits: HTTPLimits = DEFAULT_LIMITS
) -> ProxyHandshake:
    """The handshake that opens a tunnel to `host:port` through `proxy`. For `socks5` and
    `socks4` (not `remote_dns`) `host` should already be an address."""
    if proxy.scheme in ("http", "https"):
        return HTTPConnect(
            host, port, username=proxy.username, password=proxy.password, user_agent=user_agent, limits=limits
        )
    if proxy.scheme in ("socks5", "socks5h"):
        return SOCKS5Handshake(host, port, username=proxy.username, password=proxy.password)
    return SOCKS4Handshake(host, port, user_id=proxy.username or "")
