"""WebSocket URIs (RFC 6455 section 3)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

__all__ = ["WebSocketURI", "parse_uri"]


@dataclass(frozen=True, slots=True)
class WebSocketURI:
    secure: bool
    host: str
    port: int
    resource: str

    @property
    def host_header(self) -> str:
        """The Host field: the port appears only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_uri(uri: str) -> WebSocketURI:
    """Split a ws:// or wss:// URI; a fragment is refused (section 3)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"{uri!r} is not a ws:// or wss:// URI")
    if parts.fragment:
        raise ValueError(f"{uri!r} has a fragment, which WebSocket URIs may not have")
    if not parts.hostname:
        raise ValueError(f"{uri!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{uri!r} has user information, which hybi does not send")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebSocketURI(secure, parts.hostname, port, resource)
