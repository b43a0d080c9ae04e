"""hybi: WebSocket server and client for every version of the protocol, negotiated per
RFC 6455 section 4.4.

```python
async with hybi.serve(echo, "127.0.0.1", 8765, versions=(13, 8, 7)):
    async with hybi.connect("ws://127.0.0.1:8765/", versions=(8, 13)) as ws:
        await ws.send("hi")
        print(await ws.recv(), ws.version)
```
"""

from hybi import gateway
from hybi._version import __version__
from hybi.aio import ClientConnection, Connection, Data, Server, ServerConnection, broadcast, connect, serve
from hybi.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeAttempt,
    HandshakeError,
    HandshakeRejected,
    HybiError,
    InvalidHandshake,
    InvalidHTTP,
    InvalidProxy,
    InvalidProxyMessage,
    InvalidProxyStatus,
    InvalidState,
    InvalidStatus,
    LegacyAnswer,
    NoCommonVersion,
    ProtocolError,
    ProxyError,
    SOCKSRefused,
    UnsupportedFeature,
)
from hybi.sansio import ALL_VERSIONS, DEFAULT_VERSIONS, Headers, Request, Response
from hybi.sansio.deflate import PRESETS as COMPRESSION_PRESETS
from hybi.sansio.deflate import Compression

__all__ = [
    "ALL_VERSIONS",
    "COMPRESSION_PRESETS",
    "DEFAULT_VERSIONS",
    "ClientConnection",
    "Compression",
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Data",
    "HandshakeAttempt",
    "HandshakeError",
    "HandshakeRejected",
    "Headers",
    "HybiError",
    "InvalidHTTP",
    "InvalidHandshake",
    "InvalidProxy",
    "InvalidProxyMessage",
    "InvalidProxyStatus",
    "InvalidState",
    "InvalidStatus",
    "LegacyAnswer",
    "NoCommonVersion",
    "ProtocolError",
    "ProxyError",
    "Request",
    "Response",
    "SOCKSRefused",
    "Server",
    "ServerConnection",
    "UnsupportedFeature",
    "__version__",
    "broadcast",
    "connect",
    "gateway",
    "serve",
]
