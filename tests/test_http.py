"""The HTTP head parser and its limits."""

from __future__ import annotations

import pytest

from hybi.exceptions import InvalidHTTP
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
