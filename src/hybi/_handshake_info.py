"""What a connection of either I/O layer tells about its handshake, read from its core."""

from __future__ import annotations

from hybi._logging import LoggedConnection
from hybi.sansio.dialects import Dialect
from hybi.sansio.events import State
from hybi.sansio.extensions import Extension
from hybi.sansio.http import Headers, Request, Response

__all__ = ["HandshakeInfo"]


class HandshakeInfo(LoggedConnection):
    """`version`, `subprotocol`, `extensions`, `request`, `response` and the rest, shared by
    the asyncio and the sync connection."""

    @property
    def dialect(self) -> Dialect | None:
        return self.protocol.dialect

    @property
    def version(self) -> int | str | None:
        """The negotiated version: its number (13, 8, 7, 6, 5) or, for the drafts before
        version numbers, its name ("hybi-02", "hixie-76", "hixie-75"); None before."""
        return self.protocol.version

    @property
    def subprotocol(self) -> str | None:
        return self.protocol.subprotocol

    @property
    def extensions(self) -> tuple[Extension, ...]:
        """The extensions agreed (permessage-deflate's has `.name` "permessage-deflate")."""
        return self.protocol.extensions

    @property
    def request(self) -> Request | None:
        return self.protocol.request

    @property
    def response(self) -> Response | None:
        return self.protocol.response

    @property
    def path(self) -> str:
        return self.request.target if self.request is not None else ""

    @property
    def request_headers(self) -> Headers:
        return self.request.headers if self.request is not None else Headers()

    @property
    def response_headers(self) -> Headers:
        return self.response.headers if self.response is not None else Headers()

    @property
    def state(self) -> State:
        return self.protocol.state
