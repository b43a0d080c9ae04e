"""The HTTP head parser and its limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybi.exceptions import HandshakeRejected, InvalidHTTP
from hybi.sansio import http
from hybi.sansio.handshake import ServerHandshake
from hybi.sansio.http import Headers, HTTPLimits, parse_request_head, parse_response_head

REQUEST = b"GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nx-a: 2\r\n\r\n"


def test_request_head() -> None:
    parsed = parse_request_head(REQUEST + b"rest")
    assert parsed is not None
    request, used = parsed
    assert (request.method, request.target, request.http_version) == ("GET", "/chat?x=1", "HTTP/1.1")
    assert used == len(REQUEST)
    assert request.headers.get("host") == "example.com"
    assert request.headers.get_all("X-A") == ["1", "2"]
    assert request.headers.get("x-a") == "1, 2"


def test_incomplete_head_waits() -> None:
    for end in range(len(REQUEST)):
        assert parse_request_head(REQUEST[:end]) is None


def test_search_resumes_where_it_stopped() -> None:
    """Whatever the split, a search that skips what an earlier call saw finds the end."""
    for split in range(len(REQUEST)):
        assert parse_request_head(REQUEST[:split], searched=0) is None
        parsed = parse_request_head(REQUEST + b"more", searched=split)
        assert parsed is not None and parsed[1] == len(REQUEST)


def test_header_helpers() -> None:
    headers = Headers(
        [("Connection", "keep-alive, Upgrade"), ("Sec-WebSocket-Version", "13"), ("sec-websocket-version", "8, 7")]
    )
    assert headers.has_token("connection", "upgrade")
    assert not headers.has_token("connection", "close")
    assert headers.tokens("Sec-WebSocket-Version") == ["13", "8", "7"]
    assert "SEC-WEBSOCKET-VERSION" in headers
    assert "Missing" not in headers
    with pytest.raises(ValueError):
        headers.add("Bad Name", "x")
    with pytest.raises(ValueError):
        headers.add("X", "a\r\nInjected: yes")


def test_values_are_trimmed_of_whitespace() -> None:
    parsed = parse_request_head(b"GET / HTTP/1.1\r\nHost:   spaced \t\r\n\r\n")
    assert parsed is not None and parsed[0].headers.get("Host") == "spaced"


@pytest.mark.parametrize(
    ("head", "status", "words"),
    [
        (b"GET /\r\n\r\n", 400, "request line"),
        (b"GET  / HTTP/1.1\r\n\r\n", 400, "request line"),
        (b"GET / HTTP/2.0\r\n\r\n", 505, "HTTP version"),
        (b"G(T / HTTP/1.1\r\n\r\n", 400, "method"),
        (b"GET /\x7f HTTP/1.1\r\n\r\n", 400, "visible ASCII"),
        (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "malformed header"),
        (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "malformed header"),
        (b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400, "folding"),
        (b"GET / HTTP/1.1\r\nA: b\nB: c\r\n\r\n", 400, "bare CR, LF"),
        (b"GET / HTTP/1.1\r\nA: b\0\r\n\r\n", 400, "NUL"),
    ],
)
def test_malformed_requests(head: bytes, status: int, words: str) -> None:
    with pytest.raises(InvalidHTTP, match=words) as caught:
        parse_request_head(head)
    assert caught.value.status == status


class TestLimits:
    limits = HTTPLimits(max_line=100, max_headers=5, max_head=400)

    def test_long_line_is_refused_before_the_head_ends(self) -> None:
        with pytest.raises(InvalidHTTP, match="line is longer") as caught:
            parse_request_head(b"GET /" + b"a" * 200, self.limits)
        assert caught.value.status == 431

    def test_long_request_line(self) -> None:
        with pytest.raises(InvalidHTTP) as caught:
            parse_request_head(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n\r\n", self.limits)
        assert caught.value.status == 414

    def test_too_many_headers(self) -> None:
        head = b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: x\r\n" % i for i in range(6)) + b"\r\n"
        with pytest.raises(InvalidHTTP, match="more than 5 header fields"):
            parse_request_head(head, self.limits)

    def test_long_head_without_end(self) -> None:
        head = b"GET / HTTP/1.1\r\n" + b"H: x\r\n" * 80
        with pytest.raises(InvalidHTTP, match="longer than 400 bytes"):
            parse_request_head(head, self.limits)

    def test_within_limits(self) -> None:
        head = b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: x\r\n" % i for i in range(5)) + b"\r\n"
        assert parse_request_head(head, self.limits) is not None


def test_response_head() -> None:
    data = b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 8, 7\r\n\r\nbody"
    parsed = parse_response_head(data)
    assert parsed is not None
    response, used = parsed
    assert (response.status, response.reason) == (426, "Upgrade Required")
    assert data[used:] == b"body"
    assert response.headers.get_all("sec-websocket-version") == ["13", "8, 7"]


@pytest.mark.parametrize("line", [b"HTTP/1.1 abc Nope", b"SPDY/3 200 OK", b"HTTP/1.1 1000 Big"])
def test_malformed_status_lines(line: bytes) -> None:
    with pytest.raises(InvalidHTTP, match="status line"):
        parse_response_head(line + b"\r\n\r\n")


def test_status_line_without_reason() -> None:
    parsed = parse_response_head(b"HTTP/1.1 101\r\n\r\n")
    assert parsed is not None and parsed[0].status == 101 and parsed[0].reason == ""


# -- bytes that are not ASCII where digits or versions belong (found by fuzzing) --------------


@pytest.mark.parametrize(("head", "status"), [(b"GET / HTTP/1.\xff\r\n\r\n", 400), (b"GET / HTTP/2.0\r\n\r\n", 505)])
def test_request_version_must_be_ascii(head: bytes, status: int) -> None:
    with pytest.raises(InvalidHTTP) as caught:
        parse_request_head(head)
    assert caught.value.status == status


@pytest.mark.parametrize(
    "line", [b"HTTP/1.\xff 101 Switching Protocols", b"HTTP/1.1 1\xb20 OK", b"HTTP/1.1 \xb9\xb9\xb9 X"]
)
def test_status_line_must_be_ascii(line: bytes) -> None:
    with pytest.raises(InvalidHTTP, match="malformed status line"):
        parse_response_head(line + b"\r\n\r\n")


def test_a_tls_client_hello_is_refused_at_once() -> None:
    with pytest.raises(InvalidHTTP, match="not an HTTP request"):
        parse_request_head(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")


def test_websockets_names_for_request_and_response_fields() -> None:
    from hybi.sansio.http import Headers, Request, Response

    request = Request("GET", "/chat?room=1", Headers())
    assert request.path == request.target == "/chat?room=1"
    response = Response(404, "Not Found")
    assert (response.status_code, response.reason_phrase) == (404, "Not Found")


# -- the parser's fast path for ordinary requests gives the answers of the checked path -------

LIMITS = HTTPLimits(max_line=100, max_headers=5, max_head=400)

ORDINARY = [
    REQUEST,
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"GET /x HTTP/1.0\r\n\r\n",
    b"POST /x?y=%20 HTTP/1.1\r\nX: \r\nY:\r\nZ:\t  v  \t\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: caf\xe9\r\nx: \xff\x80\r\n\r\n",
    b"GET / HTTP/1.1\r\nA: b: c\r\n!#$%&'*+-.^_`|~09az: 1\r\n\r\n",
]

MALFORMED = [
    b"\r\n\r\n",
    b" GET / HTTP/1.1\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET  / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1 \r\n\r\n",
    b"GET / HTTP/2.0\r\n\r\n",
    b"GET / HTTP/1.2\r\n\r\n",
    b"GET / HTTP/1.\xff\r\n\r\n",
    b"GET / http/1.1\r\n\r\n",
    b"G(T / HTTP/1.1\r\n\r\n",
    b"GET /\x7f HTTP/1.1\r\n\r\n",
    b"GET /\xe9 HTTP/1.1\r\n\r\n",
    b"GET /\x00 HTTP/1.1\r\n\r\n",
    b"GET /\n HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
    b"GET / HTTP/1.1\r\n: no name\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad\xe9: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nName : x\r\n\r\n",
    b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
    b"GET / HTTP/1.1\r\nA: b\r\n\tfolded: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nA: b\nB: c\r\n\r\n",
    b"GET / HTTP/1.1\r\nA: b\rB: c\r\n\r\n",
    b"GET / HTTP/1.1\r\nA: b\0\r\n\r\n",
    b"GET / HTTP/1.1\r\nA\0: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nA: " + b"x" * 120 + b"\r\n\r\n",
    b"GET /" + b"x" * 120 + b" HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: x\r\n" % i for i in range(6)) + b"\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: x\r\n" % i for i in range(5)) + b"\r\n",  # just within
    b"GET / HTTP/1.1\r\nA: " + b"x" * 95 + b"\r\n\r\n",  # a line of exactly 100 bytes
]


def answer(data: bytes | bytearray, limits: HTTPLimits) -> object:
    """What parse_request_head says of `data`: (request, used), None, or the error."""
    try:
        return parse_request_head(data, limits)
    except InvalidHTTP as error:
        return ("error", error.status, error.reason)


def checked_answer(data: bytes | bytearray, limits: HTTPLimits) -> object:
    """What the checked path alone says of `data`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(http, "_plain_request", lambda head, limits: None)
        return answer(data, limits)


def same(a: object, b: object) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple) and a[:1] == b[:1] == ("error",):
        return a == b
    if a is None or b is None:
        return a is b
    assert isinstance(a, tuple) and isinstance(b, tuple)
    (request_a, used_a), (request_b, used_b) = a, b
    return bool(used_a == used_b and request_a == request_b and request_a.headers.items() == request_b.headers.items())


@pytest.mark.parametrize("head", ORDINARY + MALFORMED)
@pytest.mark.parametrize("limits", [http.DEFAULT_LIMITS, LIMITS], ids=["default", "small"])
def test_fast_path_answers_as_the_checked_path(head: bytes, limits: HTTPLimits) -> None:
    expected = checked_answer(head + b"rest", limits)
    assert same(answer(head + b"rest", limits), expected)
    assert same(answer(bytearray(head + b"rest"), limits), expected)


@pytest.mark.parametrize("head", ORDINARY)
def test_fast_path_takes_ordinary_requests(head: bytes) -> None:
    assert http._plain_request(head[:-4], http.DEFAULT_LIMITS) is not None


@pytest.mark.parametrize("head", MALFORMED[:-2])
def test_fast_path_leaves_malformed_requests_to_the_checked_path(head: bytes) -> None:
    end = head.find(b"\r\n\r\n")
    assert http._plain_request(head[:end], LIMITS) is None


@pytest.mark.parametrize("head", ORDINARY + MALFORMED)
def test_fed_whole_or_byte_by_byte_as_by_the_checked_path(head: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ServerHandshake fed whole or a byte at a time: the same request or refusal as the
    checked path alone gives it fed the same way."""

    def feed(pieces: list[bytes]) -> object:
        handshake = ServerHandshake(limits=LIMITS)
        request = None
        try:
            for piece in pieces:
                request = handshake.receive_data(piece)
        except HandshakeRejected as rejection:
            return ("refused", rejection.response.status, str(rejection))
        if request is None:
            return None
        return (request, request.headers.items(), handshake.trailing)

    data = head + b"tail"
    ways = [[data], [data[i : i + 1] for i in range(len(data))], [data[:7], data[7:]]]
    answers = [feed(pieces) for pieces in ways]
    monkeypatch.setattr(http, "_plain_request", lambda head, limits: None)
    assert answers == [feed(pieces) for pieces in ways]


@given(st.lists(st.sampled_from(ORDINARY + MALFORMED), min_size=1, max_size=3), st.data())
@settings(max_examples=300, deadline=None)
def test_mutated_requests_get_the_same_answer_from_both_paths(heads: list[bytes], data: st.DataObject) -> None:
    """Ordinary and malformed heads, with bytes changed, added or removed anywhere."""
    head = bytearray(b"".join(heads))
    for _ in range(data.draw(st.integers(0, 4))):
        at = data.draw(st.integers(0, len(head)))
        byte = data.draw(st.sampled_from(b" \t\r\n\0:,aA~\x7f\xe9/"))
        kind = data.draw(st.sampled_from(["set", "insert", "delete"]))
        if kind == "insert" or at == len(head):
            head.insert(at, byte)
        elif kind == "set":
            head[at] = byte
        else:
            del head[at]
    for limits in (http.DEFAULT_LIMITS, LIMITS):
        assert same(answer(bytes(head), limits), checked_answer(bytes(head), limits))


def test_header_names_cache_is_bounded() -> None:
    for i in range(2 * http._CACHE_SIZE):
        parsed = parse_request_head(b"GET / HTTP/1.1\r\nX-%d: v\r\n\r\n" % i)
        assert parsed is not None and parsed[0].headers.items() == [(f"X-{i}", "v")]
    assert len(http._NAMES) <= http._CACHE_SIZE
    for i in range(2 * http._CACHE_SIZE):
        Headers().add(f"Y-{i}", "v")
    assert len(http._CHECKED_NAMES) <= http._CACHE_SIZE
    with pytest.raises(ValueError):
        Headers().add("Bad Name", "x")  # never cached, so refused every time
    with pytest.raises(ValueError):
        Headers().add("Bad Name", "x")


# -- the lookup index of Headers follows every change ---------------------------------------


def test_lookups_see_every_change() -> None:
    headers = Headers([("A", "1")])
    assert headers.get_all("a") == ["1"] and "A" in headers
    headers.add("a", "2")
    assert headers.get_all("A") == ["1", "2"] and headers.get("a") == "1, 2"
    headers["A"] = "3"
    assert headers.get_all("a") == ["3"] and headers.items() == [("A", "3")]
    del headers["a"]
    assert headers.get_all("A") == [] and "A" not in headers and headers.get("A") is None
    headers.add("Connection", "keep-alive, Upgrade")
    assert headers.has_token("connection", "UPGRADE") and not headers.has_token("connection", "")
    copy = headers.copy()
    copy.add("Connection", "close")
    assert headers.has_token("Connection", "upgrade") and not headers.has_token("Connection", "close")
    assert copy.has_token("Connection", "close")


def test_get_all_returns_a_list_of_its_own() -> None:
    headers = Headers([("A", "1")])
    headers.get_all("A").append("2")
    assert headers.get_all("A") == ["1"]


@pytest.mark.parametrize(
    ("values", "token", "found"),
    [
        (["websocket"], "websocket", True),
        (["WebSocket"], "websocket", True),
        (["a, b ,c"], "B", True),
        (["a,,b"], "", False),
        ([" , "], "", False),
        (["a", "b, websocket"], "websocket", True),
        (["websockets"], "websocket", False),
        (["web socket"], "web socket", True),
        ([], "websocket", False),
    ],
)
def test_has_token(values: list[str], token: str, found: bool) -> None:
    headers = Headers([("Upgrade", value) for value in values])
    assert headers.has_token("upgrade", token) is found
    assert found is any(t.lower() == token.lower() for t in headers.tokens("Upgrade"))
