"""Every error hybi raises derives from HybiError.

Handshake errors on the server side carry the HTTP response to send (`response`), so a
caller never has to invent one; frame-level errors carry the close code to send (`code`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hybi.sansio.dialects.base import Dialect
    from hybi.sansio.http import Response

__all__ = [
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HandshakeAttempt",
    "HandshakeError",
    "HandshakeRejected",
    "HybiError",
    "InvalidHTTP",
    "InvalidHandshake",
    "InvalidState",
    "InvalidPayload",
    "InvalidProxy",
    "InvalidProxyMessage",
    "InvalidProxyStatus",
    "InvalidStatus",
    "InvalidUTF8",
    "LegacyAnswer",
    "MessageTooBig",
    "NoCommonVersion",
    "ProtocolError",
    "ProxyError",
    "SOCKSRefused",
    "UnsupportedFeature",
]


class HybiError(Exception):
    """Base class of hybi's errors."""


class HandshakeError(HybiError):
    """The opening handshake failed."""


class InvalidHTTP(HandshakeError):
    """The bytes received are not an acceptable HTTP/1.1 head.

    `status` is the HTTP status a server should answer with (400 unless a more precise
    one applies, such as 431 for oversized headers).
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class HandshakeRejected(HandshakeError):
    """A server refuses a handshake; `response` is the HTTP reply to send."""

    def __init__(self, reason: str, response: Response) -> None:
        super().__init__(reason)
        self.reason = reason
        self.response = response


class InvalidHandshake(HandshakeError):
    """A client received a response that does not complete the handshake."""


class InvalidStatus(InvalidHandshake):
    """The server answered with a status other than 101.

    `server_versions` holds the versions listed in its `Sec-WebSocket-Version` fields
    (RFC 6455 section 4.4), in the server's order; it is empty when there were none.
    """

    def __init__(self, response: Response, server_versions: Sequence[int] = ()) -> None:
        listed = f"; server lists versions {', '.join(map(str, server_versions))}" if server_versions else ""
        super().__init__(f"server answered {response.status} {response.reason}{listed}".rstrip())
        self.response = response
        self.server_versions = tuple(server_versions)


@dataclass(frozen=True, slots=True)
class HandshakeAttempt:
    """One opening handshake a client made: the version it asked for and how it ended."""

    version: str
    status: int | None
    server_versions: tuple[int, ...] = ()
    error: str | None = None


class NoCommonVersion(InvalidStatus):
    """The server refused the client's version and lists none the client speaks
    (RFC 6455 section 4.4), or lists none at all. The message names both lists;
    `attempts` records each handshake made.
    """

    def __init__(
        self,
        response: Response,
        client_versions: Sequence[str],
        server_versions: Sequence[int],
        attempts: Sequence[HandshakeAttempt],
    ) -> None:
        super().__init__(response, server_versions)
        client = ", ".join(client_versions)
        last = attempts[-1] if attempts else None
        asked = f"version {last.version}" if last is not None else "the handshake"
        answer = f"{response.status} {response.reason}".strip()
        if server_versions:
            server = ", ".join(map(str, server_versions))
            message = f"no WebSocket version in common: client offers {client}; server accepts {server}"
        else:
            body = response.body.decode("utf-8", "replace").strip().splitlines()
            said = f" ({body[0][:200]})" if body else ""
            message = (
                f"server refused {asked} with {answer}{said} and listed no versions: "
                f"client offers {client}; server accepts (not listed)"
            )
        self.args = (message,)
        self.client_versions = tuple(client_versions)
        self.attempts = tuple(attempts)


class UnsupportedFeature(HybiError):
    """The negotiated dialect has no such feature (binary messages, pings or close codes in
    the hixie drafts, for example); the message names the dialect."""


class LegacyAnswer(InvalidHandshake):
    """A server answered a versioned request in the manner of a pre-version draft.

    `dialect` is the draft its answer shows (hixie-76 or hixie-75); a client that speaks
    it may retry with it.
    """

    def __init__(self, message: str, dialect: Dialect) -> None:
        super().__init__(message)
        self.dialect = dialect


class InvalidState(HybiError):
    """The operation is not possible in the connection's current state (for example, sending after close)."""


class ProtocolError(HybiError):
    """The peer broke the protocol. The connection fails with the close code its class
    stands for: 1002 here, 1007 for InvalidPayload (InvalidUTF8), 1009 for MessageTooBig (RFC 6455 section
    7.4.1); `sansio.connection` maps each class to its code in one place."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidPayload(ProtocolError):
    """A message's data does not fit its type (1007): invalid UTF-8, broken DEFLATE data."""


class InvalidUTF8(InvalidPayload):
    """A text message or close reason is not valid UTF-8 (1007, RFC 6455 section 8.1)."""


class MessageTooBig(ProtocolError):
    """A message, or a frame the drafts read and discard, exceeds the size limit (1009)."""


class ConnectionClosed(HybiError):
    """Raised on use of a closed connection.

    `code` and `reason` are the close status received from the peer (1005 when its close
    frame had none, 1006 when the connection dropped with no close frame); `sent_code`
    is what this side sent, if anything.
    """

    def __init__(self, code: int, reason: str = "", sent_code: int | None = None, detail: str = "") -> None:
        text = f"connection closed: {code}" + (f" {reason}" if reason else "")
        if detail:
            text += f" ({detail})"
        super().__init__(text)
        self.code = code
        self.reason = reason
        self.sent_code = sent_code
        self.detail = detail


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally (1000 or 1001 both ways)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error, or dropped without a close handshake."""


class ProxyError(HybiError):
    """Reaching the server through a proxy failed at the proxy. `retryable` says whether
    trying again may succeed (the proxy's own trouble) or not (a refusal, bad credentials)."""

    retryable: bool = False


class InvalidProxy(ProxyError, ValueError):
    """A proxy URL hybi cannot use: unknown scheme, a path, a user without a password."""


class InvalidProxyMessage(ProxyError):
    """The proxy answered with bytes that are no valid reply of its protocol."""


class InvalidProxyStatus(ProxyError):
    """An HTTP proxy refused the CONNECT request (RFC 9110 section 9.3.6): `response`
    holds its status and header fields (407: its `Proxy-Authenticate`). 5xx may pass."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"proxy refused the tunnel: {response.status} {response.reason}".rstrip())
        self.response = response
        self.retryable = response.status >= 500


class SOCKSRefused(ProxyError):
    """A SOCKS proxy refused the connection: `version` (4 or 5), `code` (its reply code,
    or None when authentication failed) and why, in words."""

    def __init__(self, version: int, code: int | None, reason: str, *, retryable: bool = False) -> None:
        detail = f" (reply {code:#04x})" if code is not None else ""
        super().__init__(f"SOCKS{version} proxy refused: {reason}{detail}")
        self.version = version
        self.code = code
        self.reason = reason
        self.retryable = retryable
