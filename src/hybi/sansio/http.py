"""The small part of HTTP/1.1 that an opening handshake needs.

Only message heads are parsed here: a request line or status line and header fields
(RFC 9112 sections 3, 4 and 5). Bodies are not: the WebSocket handshakes that carry one
(hixie-76) have no Content-Length, so each dialect reads its own body bytes.

Every limit is enforced before buffering more, so a peer cannot make the parser hold
an unbounded head.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from hybi.exceptions import InvalidHTTP

__all__ = [
    "DEFAULT_LIMITS",
    "HTTPLimits",
    "Headers",
    "HeadersLike",
    "as_headers",
    "Request",
    "Response",
    "parse_request_head",
    "parse_response_head",
    "text_response",
]

_TOKEN_BYTES = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TOKEN_CHARS = frozenset(_TOKEN_BYTES)
_VISIBLE_BYTES = bytes(range(0x21, 0x7F))

_CACHE_SIZE = 512
"""How many header names each cache below holds at most: a handshake's names are few and the
same from one request to the next, and a peer inventing names cannot grow a cache past this."""
_NAMES: dict[bytes, str] = {}
"""Header names already found to be tokens, as received, and their text: most requests repeat
the same few names, which are then checked and decoded once."""
_CHECKED_NAMES: set[str] = set()
"""Names `Headers.add` already found to be tokens (a server adds the same ones to every 101)."""


@dataclass(frozen=True, slots=True)
class HTTPLimits:
    """Bounds on an opening handshake's head; exceeding one rejects it."""

    max_line: int = 8192
    max_headers: int = 128
    max_head: int = 65536
    max_early: int = 65536
    """Bytes a server keeps that arrive after the request head while it decides (a
    hixie-76 key3 is 8, and a client may send nothing more before the 101)."""


DEFAULT_LIMITS = HTTPLimits()


class Headers:
    """Header fields in arrival order; names compare case-insensitively: a multi-dict.

    `h["Upgrade"]`, `h.get(name)` (repeats joined with ", "), `h.get_all(name)`,
    `h.items()`, `name in h`. Repeated fields are kept apart, as RFC 6455 section 4.4
    allows a server to send `Sec-WebSocket-Version` several times.
    """

    __slots__ = ("_index", "_items", "changes")
    __hash__ = None  # type: ignore[assignment]  # mutable

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = list(items)
        self._index: dict[str, list[str]] | None = None
        """The values of each lower-cased name, made at the first lookup and dropped by any
        change: a handshake looks a request's fields up a dozen times."""
        self.changes = 0
        """How many times fields were added or removed (what was found in them may be kept
        while this stays the same)."""

    def _lookup(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for name, value in self._items:
                key = name.lower()
                values = index.get(key)
                if values is None:
                    index[key] = [value]
                else:
                    values.append(value)
            self._index = index
        return index

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, name: str) -> str:
        """The value of `name` (repeated fields joined with ", "); KeyError if absent."""
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        """Replace every `name` field with one."""
        del self[name]
        self.add(name, value)

    def __delitem__(self, name: str) -> None:
        lowered = name.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != lowered]
        self._index = None
        self.changes += 1

    def drop_index(self) -> None:
        """Let go of the lookup index (the next lookup makes it again): a server's
        connections keep their request for their lifetime, and need it no more once the
        handshake is decided."""
        self._index = None

    def items(self) -> list[tuple[str, str]]:
        """Every field in arrival order, repeats included."""
        return list(self._items)

    def keys(self) -> list[str]:
        return [name for name, _ in self._items]

    def copy(self) -> Headers:
        return Headers(self._items)

    def add(self, name: str, value: str) -> None:
        """Append a field; a name already present gets one more value."""
        if name not in _CHECKED_NAMES:
            if not name or not all(c in _TOKEN_CHARS for c in name.encode("ascii", "replace")):
                raise ValueError(f"invalid header name {name!r}")
            if len(_CHECKED_NAMES) < _CACHE_SIZE:
                _CHECKED_NAMES.add(name)
        if "\r" in value or "\n" in value or "\0" in value:
            raise ValueError(f"invalid characters in value of header {name}")
        self._items.append((name, value))
        self._index = None
        self.changes += 1

    def get(self, name: str, default: str | None = None) -> str | None:
        """The single value of `name`; repeated fields are joined with ", "."""
        values = self.get_all(name)
        return ", ".join(values) if values else default

    def get_all(self, name: str) -> list[str]:
        """Every value of the field `name`, in order (case-insensitive name)."""
        values = self._lookup().get(name.lower())
        return list(values) if values is not None else []

    def tokens(self, name: str) -> list[str]:
        """The comma-separated list elements of every `name` field (RFC 9110 section 5.6.1)."""
        return [t.strip() for v in self.get_all(name) for t in v.split(",") if t.strip()]

    def has_token(self, name: str, token: str) -> bool:
        """Whether the comma-separated field `name` holds `token` (case-insensitively)."""
        values = self._lookup().get(name.lower())
        token = token.lower()
        if values is None or not token:
            return False
        for value in values:
            for element in value.split(","):
                if element.strip().lower() == token:
                    return True
        return False

    def serialize(self) -> bytes:
        return "".join([f"{k}: {v}\r\n" for k, v in self._items]).encode("latin-1")


HeadersLike = Headers | Mapping[str, str] | Iterable[tuple[str, str]]
"""What options that take header fields accept: Headers, a dict, or (name, value) pairs."""


def as_headers(fields: HeadersLike | None) -> Headers:
    """`fields` as Headers (a copy), each name and value checked."""
    headers = Headers()
    if fields is None:
        return headers
    pairs = fields.items() if isinstance(fields, Mapping | Headers) else fields
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError(f"header fields are (name, value) pairs, not {pair!r}")
        headers.add(*pair)
    return headers


@dataclass(slots=True)
class Request:
    """An opening handshake request head."""

    method: str
    target: str
    headers: Headers
    http_version: str = "HTTP/1.1"

    @property
    def path(self) -> str:
        """The request target, query included: websockets' name for `target`."""
        return self.target

    @property
    def origin(self) -> str | None:
        """`Origin` (RFC 6455) or `Sec-WebSocket-Origin` (versions 7 and 8), whichever came."""
        return self.headers.get("Origin") or self.headers.get("Sec-WebSocket-Origin")

    def serialize(self) -> bytes:
        start = f"{self.method} {self.target} {self.http_version}\r\n".encode("latin-1")
        return start + self.headers.serialize() + b"\r\n"


@dataclass(slots=True)
class Response:
    """An HTTP response head with an optional body, sent whole."""

    status: int
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    http_version: str = "HTTP/1.1"

    @property
    def status_code(self) -> int:
        """websockets' name for `status`."""
        return self.status

    @property
    def reason_phrase(self) -> str:
        """websockets' name for `reason`."""
        return self.reason

    def serialize(self) -> bytes:
        start = f"{self.http_version} {self.status} {self.reason}\r\n".encode("latin-1")
        return start + self.headers.serialize() + b"\r\n" + self.body


REASON_PHRASES = {
    400: "Bad Request",
    403: "Forbidden",
    414: "URI Too Long",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    505: "HTTP Version Not Supported",
}


def text_response(status: int, text: str, headers: Headers | None = None) -> Response:
    """A response whose body is `text` as UTF-8 plain text, with its length."""
    body = text.encode()
    headers = Headers(headers or ())
    headers.add("Content-Type", "text/plain; charset=utf-8")
    headers.add("Content-Length", str(len(body)))
    return Response(status, REASON_PHRASES.get(status, "Error"), headers, body)


def _http_version(raw: bytes) -> str:
    """`HTTP/1.0` or `HTTP/1.1` as text; InvalidHTTP (505 for another major version) else."""
    if len(raw) == 8 and raw[:5] == b"HTTP/" and raw[5:6].isdigit() and raw[6:7] == b"." and raw[7:8].isdigit():
        if raw[5:6] != b"1":
            raise InvalidHTTP(f"unsupported HTTP version {raw.decode('ascii')!r}", status=505)
        return raw.decode("ascii")
    raise InvalidHTTP(f"malformed HTTP version {raw[:20]!r}")


def _find_head_end(buffer: bytes | bytearray, limits: HTTPLimits, searched: int) -> int:
    """Index just past the blank line ending the head, or -1 if more bytes are needed.

    The first `searched` bytes are known to hold no blank line, so a head that arrives in
    many small pieces is scanned once, not once per piece.
    """
    end = buffer.find(b"\r\n\r\n", max(0, searched - 3), limits.max_head + 4)
    if end < 0:
        if len(buffer) > limits.max_head:
            raise InvalidHTTP(f"handshake head is longer than {limits.max_head} bytes", status=431)
        # A single line longer than the limit can be refused before the head ends.
        if buffer.rfind(b"\r\n", max(0, len(buffer) - limits.max_line - 2)) < 0 and len(buffer) > limits.max_line:
            raise InvalidHTTP(f"a handshake line is longer than {limits.max_line} bytes", status=431)
        return -1
    return end + 4


def _parse_fields(lines: list[bytes], limits: HTTPLimits) -> Headers:
    if len(lines) > limits.max_headers:
        raise InvalidHTTP(f"more than {limits.max_headers} header fields", status=431)
    headers = Headers()
    for raw in lines:
        if len(raw) > limits.max_line:
            raise InvalidHTTP(f"a header line is longer than {limits.max_line} bytes", status=431)
        if b"\n" in raw or b"\r" in raw or b"\0" in raw:
            raise InvalidHTTP("bare CR, LF or NUL in a header line")
        if raw[:1] in (b" ", b"\t"):
            raise InvalidHTTP("obsolete line folding in header fields is not allowed")
        name, colon, value = raw.partition(b":")
        if not colon or not name or not all(c in _TOKEN_CHARS for c in name):
            raise InvalidHTTP(f"malformed header line {raw[:60]!r}")
        headers._items.append((name.decode("ascii"), value.strip(b" \t").decode("latin-1")))
    return headers


def parse_request_head(
    buffer: bytes | bytearray, limits: HTTPLimits = DEFAULT_LIMITS, searched: int = 0
) -> tuple[Request, int] | None:
    """Parse a request head from the start of `buffer`.

    Returns the request and the number of bytes it took, or None when the head is not
    complete yet. Raises InvalidHTTP (carrying the status to answer) when it is malformed.
    `searched`: how many bytes an earlier call already looked at without finding the end.
    """
    if buffer[:1] and buffer[0] not in _TOKEN_CHARS:
        # Not even a method's first letter: a TLS ClientHello (0x16) sent to a plain server,
        # or noise. Said at once rather than after waiting for a head that will never end.
        raise InvalidHTTP(f"not an HTTP request (it starts with {bytes(buffer[:4])!r}): TLS to a plain server?")
    end = _find_head_end(buffer, limits, searched)
    if end < 0:
        return None
    head = bytes(buffer[: end - 4])
    request = _plain_request(head, limits)
    if request is None:
        request = _checked_request(head, limits)
    return request, end


def _plain_request(head: bytes, limits: HTTPLimits) -> Request | None:
    """The request in `head` when it is an ordinary one, else None.

    The common case in a few passes over the whole head: every check of `_checked_request`
    holds when this returns a request (and it returns the same one); on anything unusual
    it gives up, and `_checked_request` finds the fault and says which.
    """
    lines = head.split(b"\r\n")
    separators = len(lines) - 1
    if (
        separators > limits.max_headers
        or head.count(b"\n") != separators
        or head.count(b"\r") != separators
        or b"\0" in head
        or (len(head) > limits.max_line and max(map(len, lines)) > limits.max_line)
    ):
        return None  # too many or too long lines, or a bare CR, LF or NUL somewhere
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        return None
    method, target, raw_version = parts
    version = _VERSIONS.get(raw_version)
    if (
        version is None
        or not method
        or method.translate(None, _TOKEN_BYTES)
        or not target
        or target.translate(None, _VISIBLE_BYTES)
    ):
        return None
    headers = Headers()
    items = headers._items
    names = _NAMES
    for raw in lines[1:]:
        name, colon, value = raw.partition(b":")
        if not colon:
            return None
        text = names.get(name)
        if text is None:
            if not name or name.translate(None, _TOKEN_BYTES):
                return None  # also a line that starts with a space or tab: obsolete folding
            text = name.decode("ascii")
            if len(names) < _CACHE_SIZE:
                names[name] = text
        items.append((text, value.strip(b" \t").decode("latin-1")))
    return Request(method.decode("ascii"), target.decode("ascii"), headers, version)


_VERSIONS = {b"HTTP/1.1": "HTTP/1.1", b"HTTP/1.0": "HTTP/1.0"}


def _checked_request(head: bytes, limits: HTTPLimits) -> Request:
    """The request in `head`, each check in turn; InvalidHTTP names the first that fails."""
    lines = head.split(b"\r\n")
    request_line = lines[0]
    if len(request_line) > limits.max_line:
        raise InvalidHTTP(f"request line is longer than {limits.max_line} bytes", status=414)
    parts = request_line.split(b" ")
    if len(parts) != 3 or not all(parts):
        raise InvalidHTTP(f"malformed request line {request_line[:80]!r}")
    method, target, raw_version = parts
    version = _http_version(raw_version)
    if not all(c in _TOKEN_CHARS for c in method):
        raise InvalidHTTP(f"malformed method {method[:20]!r}")
    if any(c < 0x21 or c > 0x7E for c in target):
        raise InvalidHTTP("request target contains characters outside visible ASCII")
    headers = _parse_fields(lines[1:], limits)
    return Request(method.decode("ascii"), target.decode("ascii"), headers, version)


def parse_response_head(
    buffer: bytes | bytearray, limits: HTTPLimits = DEFAULT_LIMITS, searched: int = 0
) -> tuple[Response, int] | None:
    """Parse a status line and header fields; the body is left to the caller."""
    end = _find_head_end(buffer, limits, searched)
    if end < 0:
        return None
    lines = bytes(buffer[: end - 4]).split(b"\r\n")
    raw_version, _, rest = lines[0].partition(b" ")
    code, _, reason = rest.partition(b" ")
    try:
        version = _http_version(raw_version)
    except InvalidHTTP:
        version = ""
    if not version or len(code) != 3 or not code.isdigit():
        raise InvalidHTTP(f"malformed status line {lines[0][:80]!r}")
    headers = _parse_fields(lines[1:], limits)
    response = Response(int(code), reason.decode("latin-1"), headers, http_version=version)
    return response, end
