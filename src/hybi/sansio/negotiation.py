"""Choosing a dialect: the server's classification of a request and its 426 answer, the
client's reading of that answer and its one retry (RFC 6455 sections 4.2.2 and 4.4).
"""

from __future__ import annotations

from collections.abc import Sequence

from hybi.exceptions import (
    HandshakeAttempt,
    HandshakeError,
    HandshakeRejected,
    InvalidStatus,
    LegacyAnswer,
    NoCommonVersion,
)
from hybi.sansio.dialects import DIALECTS, Dialect
from hybi.sansio.dialects.base import requested_version
from hybi.sansio.http import Headers, Request, Response, text_response

__all__ = [
    "ClientNegotiation",
    "check_upgrade_request",
    "choose_retry",
    "classify_request",
    "dialect_of_answer",
    "parse_version_list",
    "upgrade_required",
]


def upgrade_required(dialects: Sequence[Dialect], reason: str) -> HandshakeRejected:
    """Section 4.2.2 item 4 / section 4.4: refuse with every accepted version listed.

    The status is 426 Upgrade Required; `Sec-WebSocket-Version` lists the numbered
    versions accepted, in the server's order of preference, and the body says why.
    """
    listed = ", ".join(str(d.listed_as) for d in dialects if d.listed_as is not None)
    headers = Headers([("Upgrade", "websocket"), ("Connection", "Upgrade")])
    if listed:
        headers.add("Sec-WebSocket-Version", listed)
    text = f"{reason}\nSupported WebSocket versions: {listed or 'none numbered'}\n"
    return HandshakeRejected(reason, text_response(426, text, headers))


def check_upgrade_request(request: Request, dialects: Sequence[Dialect]) -> None:
    """Section 4.2.1 items 1, 3 and 4: a GET that asks to upgrade to websocket.

    A request that does not ask for a WebSocket at all is answered like one with an
    unknown version, so that a client learns what this server speaks.
    """
    if request.method != "GET":
        raise upgrade_required(dialects, f"WebSocket handshakes use GET, not {request.method}")
    if request.http_version == "HTTP/1.0":
        raise upgrade_required(dialects, "WebSocket handshakes need HTTP/1.1")
    if not request.headers.has_token("Upgrade", "websocket"):
        raise upgrade_required(dialects, "not a WebSocket request: no 'Upgrade: websocket' header")
    if not request.headers.has_token("Connection", "upgrade"):
        raise upgrade_required(dialects, "not a WebSocket request: no 'Connection: Upgrade' header")


def classify_request(request: Request, dialects: Sequence[Dialect]) -> Dialect:
    """The enabled dialect a request asks for: the one that claims it.

    Each dialect says which requests are its own (by `Sec-WebSocket-Version`, then
    `Sec-WebSocket-Draft`, then `Sec-WebSocket-Key1`/`Key2`, as em-websocket, websocket-ruby
    and faye's websocket-driver tell them apart); at most one claims any request.

    Raises the 426 rejection when that dialect is not enabled or none claims it; this comes
    before any other check of the request, so a client learns the list whatever else was
    wrong (RFC 6455 section 4.2.2 item 4).
    """
    claimant = next((dialect for dialect in DIALECTS.values() if dialect.claims_request(request)), None)
    if claimant is not None and claimant in dialects:
        return claimant
    if claimant is not None:
        reason = claimant.refusal_reason(request)
    elif (version := requested_version(request)) is not None:
        reason = f"unsupported WebSocket version {version[:40]!r}"
    else:
        reason = "missing Sec-WebSocket-Version header"  # a Sec-WebSocket-Key without its version
    raise upgrade_required(dialects, reason)


def dialect_of_answer(response: Response) -> Dialect | None:
    """The dialect a 101 answer is written in, if any claims it."""
    return next((dialect for dialect in DIALECTS.values() if dialect.claims_response(response)), None)


def parse_version_list(headers: Headers) -> list[int]:
    """The versions a refusal lists, in order, without repeats.

    Section 4.4 allows comma lists, repeated fields, or both ("13, 8, 7", "13,8", "13"
    then "8, 7"); anything that is not a number is skipped.
    """
    versions: list[int] = []
    for token in headers.tokens("Sec-WebSocket-Version"):
        if token.isascii() and token.isdigit() and len(token) <= 3:  # not '²', which isdigit() takes
            number = int(token)
            if number not in versions:
                versions.append(number)
    return versions


def choose_retry(client: Sequence[Dialect], tried: Sequence[Dialect], server_versions: Sequence[int]) -> Dialect | None:
    """Section 4.4: the client's most preferred version that the server listed.

    Versions already tried are skipped: a server that lists the version it just refused
    is not asked again. A listed 0 is hybi-00, that is hixie-76 (Jetty 8 and Ratchet 0.3
    list it). None means there is no version to retry with.
    """
    for dialect in client:
        if dialect.listed_as is not None and dialect.listed_as in server_versions and dialect not in tried:
            return dialect
    return None


VERSION_REFUSALS = (400, 426)
"""The statuses a server refuses a version with (RFC 6455 section 4.4 names 426; many send 400)."""


class ClientNegotiation:
    """A client's side of section 4.4: which version each attempt asks for, and the log.

    `dialects` are the client's, most preferred first. Call `next_dialect()` for each
    attempt and, when the attempt's handshake fails, `failed(error)`: it either chooses a
    retry (the next call to `next_dialect()` returns it) or raises the error to give up
    with, NoCommonVersion naming both lists when the versions are what failed. There is
    at most one retry.
    """

    def __init__(self, dialects: Sequence[Dialect]) -> None:
        self.dialects = tuple(dialects)
        self.attempts: list[HandshakeAttempt] = []
        self.tried: list[Dialect] = []
        self._next: Dialect | None = self.dialects[0]

    def next_dialect(self) -> Dialect:
        if self._next is None:
            raise RuntimeError("no attempt left: the negotiation has ended")
        dialect, self._next = self._next, None
        self.tried.append(dialect)
        return dialect

    def succeeded(self) -> tuple[HandshakeAttempt, ...]:
        self.attempts.append(HandshakeAttempt(self.tried[-1].name, 101))
        return tuple(self.attempts)

    def failed(self, error: HandshakeError) -> None:
        """Record a failed attempt and choose the retry; raise when there is none."""
        dialect = self.tried[-1]
        if isinstance(error, LegacyAnswer):
            # A server that answers a versioned request with a hixie-style 101 speaks only the
            # old drafts: the retry uses the draft its answer shows, if the client speaks it.
            self.attempts.append(HandshakeAttempt(dialect.name, 101, (), str(error)))
            if len(self.tried) > 1 or error.dialect not in self.dialects or error.dialect in self.tried:
                raise error
            self._next = error.dialect
            return
        if not isinstance(error, InvalidStatus):
            self.attempts.append(HandshakeAttempt(dialect.name, None, (), str(error)))
            raise error
        status = error.response.status
        self.attempts.append(HandshakeAttempt(dialect.name, status, error.server_versions, str(error)))
        if status not in VERSION_REFUSALS or dialect.listed_as in error.server_versions:
            raise error  # refused for another reason than its version
        retry = choose_retry(self.dialects, self.tried, error.server_versions) if len(self.tried) == 1 else None
        if retry is None:
            raise NoCommonVersion(
                error.response, [d.name for d in self.dialects], error.server_versions, self.attempts
            ) from error
        self._next = retry
