"""What the asyncio and sync clients do alike with `proxy=` and `proxy_ssl=`."""

from __future__ import annotations

import ipaddress
import ssl as ssl_module
import urllib.request
from typing import Literal

from hybi.exceptions import InvalidProxyMessage
from hybi.sansio.proxy import Proxy, parse_proxy, select_proxy
from hybi.sansio.uri import WebSocketURI

__all__ = ["ProxySetting", "choose_proxy", "is_address", "proxy_tls", "proxy_tls_failed"]

ProxySetting = str | Literal[True] | None
"""`True`: from the environment (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, SOCKS_PROXY, NO_PROXY);
a proxy URL; or None: connect directly."""


def choose_proxy(uri: WebSocketURI, proxy: ProxySetting) -> Proxy | None:
    """The proxy to go through for `uri`, or None; InvalidProxy for a URL hybi cannot use.
    The environment is read as `urllib.request` reads it, NO_PROXY included."""
    if proxy is None:
        return None
    if proxy is True:
        url = select_proxy(uri, urllib.request.getproxies(), urllib.request.proxy_bypass)
        return parse_proxy(url) if url is not None else None
    return parse_proxy(proxy)


def proxy_tls(proxy: Proxy | None, proxy_ssl: ssl_module.SSLContext | None) -> ssl_module.SSLContext | None:
    """The TLS context for the connection to the proxy itself: `proxy_ssl`, or a default
    one for an `https://` proxy; none for the others."""
    if proxy is None or not proxy.tls:
        return None
    return proxy_ssl if proxy_ssl is not None else ssl_module.create_default_context()


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def proxy_tls_failed(proxy: Proxy, error: BaseException) -> InvalidProxyMessage:
    """TLS to an `https://` proxy failed other than on its certificate: most likely it
    speaks plain HTTP."""
    return InvalidProxyMessage(
        f"TLS handshake with the proxy {proxy} failed ({getattr(error, 'reason', None) or error!r}): "
        "is it an https:// proxy? A plain one answers TLS with garbage"
    )
