"""Choosing a dialect: the server's classification of a request and its 426 answer, the
client's reading of that answer and its one retry (RFC 6455 sections 4.2.2 and 4.4).
"""

from __future__ import annotations

from collections.abc import Sequence

from hybi.exceptions import HandshakeRejected
from hybi.sansio.dialects import Dialect
from hybi.sansio.http import Headers, Request, text_response

__all__ = [
    "check_upgrade_request",
    "choose_retry",
    "classify_request",
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
    """The enabled dialect a request asks for.

    The order is that of em-websocket, websocket-ruby and faye's websocket-driver:
    `Sec-WebSocket-Version` names a version; else `Sec-WebSocket-Draft` means hybi-02/03;
    else `Sec-WebSocket-Key1` and `Key2` mean hixie-76 (or hybi-01, which cannot be told
    apart from it); else it is hixie-75. A request with a `Sec-WebSocket-Key` but no version
    is a versioned request missing its version.

    Raises the 426 rejection when the dialect is not enabled; this comes before any other
    check of the request, so a client learns the list whatever else was wrong (RFC 6455
    section 4.2.2 item 4).
    """
    headers = request.headers
    values = headers.get_all("Sec-WebSocket-Version")
    if values:
        value = values[0].strip() if len(values) == 1 else ", ".join(values)
        for dialect in dialects:
            if dialect.version is not None and value == str(dialect.version):
                return dialect
        raise upgrade_required(dialects, f"unsupported WebSocket version {value[:40]!r}")
    if "Sec-WebSocket-Key" in headers:
        raise upgrade_required(dialects, "missing Sec-WebSocket-Version header")
    if "Sec-WebSocket-Draft" in headers:
        wanted, what = "hybi-02", f"Sec-WebSocket-Draft {(headers.get('Sec-WebSocket-Draft') or '')[:10]!r} requests"
    elif "Sec-WebSocket-Key1" in headers and "Sec-WebSocket-Key2" in headers:
        wanted, what = "hixie-76", "hixie-76 / hybi-00 requests (Sec-WebSocket-Key1 and Key2)"
    else:
        wanted, what = "hixie-75", "requests without Sec-WebSocket-Version (hixie-75)"
    for dialect in dialects:
        if dialect.name == wanted:
            return dialect
    raise upgrade_required(dialects, f"missing Sec-WebSocket-Version header: {what} are not accepted")


def parse_version_list(headers: Headers) -> list[int]:
    """The versions a refusal lists, in order, without repeats.

    Section 4.4 allows comma lists, repeated fields, or both ("13, 8, 7", "13,8", "13"
    then "8, 7"); anything that is not a number is skipped.
    """
    versions: list[int] = []
    for token in headers.tokens("Sec-WebSocket-Version"):
        if token.isdigit() and len(token) <= 3:
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
