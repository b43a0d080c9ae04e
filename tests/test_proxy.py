"""The sans-I/O proxy handshakes (hybi.sansio.proxy): byte-exact requests, replies fed whole,
byte by byte and followed by the server's first bytes, every refusal as a clear error."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import hybi
from hybi.sansio.http import HTTPLimits
from hybi.sansio.proxy import (
    HTTPConnect,
    Proxy,
    ProxyHandshake,
    SOCKS4Handshake,
    SOCKS5Handshake,
    parse_proxy,
    proxy_handshake,
    select_proxy,
)
from hybi.sansio.reconnect import retryable
from hybi.sansio.uri import parse_uri

TRAILING = b"HTTP/1.1 101 Switching Protocols\r\n"


def feed(handshake: ProxyHandshake, data: bytes, split: str) -> None:
    if split == "whole":
        handshake.receive_data(data)
    else:
        for i in range(len(data)):
            handshake.receive_data(data[i : i + 1])


SPLITS = ["whole", "bytewise"]


# -- URLs and selection ------------------------------------------------------------------------


def test_proxy_urls_are_parsed_with_default_ports_and_decoded_credentials() -> None:
    assert parse_proxy("http://proxy.example") == Proxy("http", "proxy.example", 80)
    assert parse_proxy("https://proxy.example/") == Proxy("https", "proxy.example", 443)
    assert parse_proxy("socks5h://u%40x:p%3Ass%20w@[::1]:9050") == Proxy("socks5h", "::1", 9050, "u@x", "p:ss w")
    assert parse_proxy("SOCKS4A://h") == Proxy("socks4a", "h", 1080)
    assert parse_proxy("socks5://h").remote_dns is False
    assert parse_proxy("socks5h://h").remote_dns is True
    assert str(parse_proxy("https://u:p@[::1]:8443")) == "https://[::1]:8443"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://h", "scheme 'ftp'"),
        ("h:8080", "scheme"),
        ("http://", "no host"),
        ("http://h/path", "path"),
        ("http://u@h", "without a password"),
        ("http://h:99999", "port"),
        ("http://u:%ff@h", "percent-encoded UTF-8"),
    ],
)
def test_bad_proxy_urls_say_what_is_wrong(url: str, words: str) -> None:
    with pytest.raises(hybi.InvalidProxy, match=words):
        parse_proxy(url)


def test_selection_follows_the_environment_variables() -> None:
    ws, wss = parse_uri("ws://example.com/"), parse_uri("wss://example.com/")
    every = {
        "https": "http://s:1",
        "http": "http://p:2",
        "all": "socks5h://a:3",
    }
    assert select_proxy(wss, every) == "http://s:1"
    assert select_proxy(ws, every) == "http://s:1"  # HTTPS_PROXY first, as websockets does
    assert select_proxy(ws, {"http": "http://p:2", "all": "socks5://a:3"}) == "http://p:2"
    assert select_proxy(wss, {"http": "http://p:2", "all": "socks5://a:3"}) == "socks5://a:3"
    assert select_proxy(wss, {"http": "http://p:2"}) is None  # HTTP_PROXY is not for TLS
    assert select_proxy(wss, {"wss": "http://w:4", **every}) == "http://w:4"
    assert select_proxy(ws, {"socks": "http://k:5", **every}) == "socks5h://k:5"
    assert select_proxy(ws, {"https": "s:6"}) == "http://s:6"
    assert select_proxy(wss, every, bypass=lambda host: host == "example.com:443") is None
    assert select_proxy(ws, every, bypass=lambda host: host == "example.com:443") == "http://s:1"


# -- HTTP CONNECT ------------------------------------------------------------------------------


def test_connect_request_is_byte_exact() -> None:
    handshake = HTTPConnect("example.com", 443, user_agent="ua/1")
    assert handshake.data_to_send() == (
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: ua/1\r\n\r\n"
    )
    assert handshake.data_to_send() == b""
    handshake = proxy_handshake(parse_proxy("http://us%C3%A9r:p%40ss@proxy"), "::1", 8080)
    assert handshake.data_to_send() == (
        b"CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n"
        b"Proxy-Authorization: Basic dXPDqXI6cEBzcw==\r\n\r\n"  # base64 of UTF-8 "usér:p@ss"
    )


@pytest.mark.parametrize("split", SPLITS)
def test_connect_200_opens_the_tunnel_and_keeps_what_follows(split: str) -> None:
    handshake = HTTPConnect("example.com", 80)
    handshake.data_to_send()
    feed(handshake, b"HTTP/1.1 200 Connection established\r\nVia: p\r\n\r\n" + TRAILING, split)
    assert handshake.done
    assert handshake.trailing == TRAILING
    handshake.receive_data(b"more")
    assert handshake.trailing == TRAILING + b"more"


@pytest.mark.parametrize("split", SPLITS)
def test_connect_407_carries_status_and_headers(split: str) -> None:
    handshake = HTTPConnect("example.com", 80, username="u", password="wrong")
    answer = b'HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="p"\r\n\r\nno'
    with pytest.raises(hybi.InvalidProxyStatus) as caught:
        feed(handshake, answer, split)
    error = caught.value
    assert error.response.status == 407
    assert error.response.headers["Proxy-Authenticate"] == 'Basic realm="p"'
    assert "407 Proxy Authentication Required" in str(error)
    assert not handshake.done
    assert retryable(error) is False


@pytest.mark.parametrize(("status", "again"), [(403, False), (404, False), (502, True), (503, True)])
def test_connect_refusals_are_retryable_only_when_the_proxy_is_in_trouble(status: int, again: bool) -> None:
    handshake = HTTPConnect("example.com", 80)
    with pytest.raises(hybi.InvalidProxyStatus) as caught:
        handshake.receive_data(f"HTTP/1.1 {status} Nope\r\n\r\n".encode())
    assert caught.value.response.status == status
    assert retryable(caught.value) is again


def test_connect_answers_that_are_not_http_or_too_long_fail_clearly() -> None:
    with pytest.raises(hybi.InvalidProxyMessage, match="not valid HTTP"):
        HTTPConnect("h", 1).receive_data(b"SSH-2.0-OpenSSH\r\n\r\n")
    handshake = HTTPConnect("h", 1, limits=HTTPLimits(max_line=100, max_head=200))
    with pytest.raises(hybi.InvalidProxyMessage, match="longer than 200"):
        for _ in range(30):
            handshake.receive_data(b"HTTP/1.1 200 OK\r\nX: " + b"y" * 5 + b"\r\n")
    with pytest.raises(hybi.InvalidProxyMessage, match="closed the connection") as caught:
        HTTPConnect("h", 1).receive_eof()
    assert retryable(caught.value) is True


# -- SOCKS5 ------------------------------------------------------------------------------------


SOCKS5_OK_IPV4 = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x1f\x90"


@pytest.mark.parametrize("split", SPLITS)
def test_socks5_without_credentials_sends_the_name_for_the_proxy_to_resolve(split: str) -> None:
    handshake = SOCKS5Handshake("example.com", 443)
    assert handshake.data_to_send() == b"\x05\x01\x00"
    feed(handshake, b"\x05\x00", split)
    assert handshake.data_to_send() == b"\x05\x01\x00\x03\x0bexample.com\x01\xbb"
    assert not handshake.done
    feed(handshake, SOCKS5_OK_IPV4 + TRAILING, split)
    assert handshake.done
    assert handshake.trailing == TRAILING


@pytest.mark.parametrize("split", SPLITS)
def test_socks5_with_credentials_rfc1929(split: str) -> None:
    handshake = proxy_handshake(parse_proxy("socks5://us%3Ar:pw@proxy"), "192.0.2.7", 80)
    assert handshake.data_to_send() == b"\x05\x02\x00\x02"
    feed(handshake, b"\x05\x02", split)
    assert handshake.data_to_send() == b"\x01\x04us:r\x02pw"
    feed(handshake, b"\x01\x00", split)
    assert handshake.data_to_send() == b"\x05\x01\x00\x01\xc0\x00\x02\x07\x00\x50"
    feed(handshake, b"\x05\x00\x00\x04" + bytes(16) + b"\x00\x50", split)  # bound to an IPv6 address
    assert handshake.done
    assert handshake.trailing == b""


@pytest.mark.parametrize("split", SPLITS)
def test_socks5_ipv6_target_and_domain_bound_address(split: str) -> None:
    handshake = SOCKS5Handshake("2001:db8::1", 8080)
    handshake.data_to_send()
    feed(handshake, b"\x05\x00", split)
    assert handshake.data_to_send() == b"\x05\x01\x00\x04" + bytes.fromhex("20010db8" + "0" * 22 + "01") + b"\x1f\x90"
    feed(handshake, b"\x05\x00\x00\x03\x05proxy\x04\x38" + TRAILING, split)
    assert handshake.done
    assert handshake.trailing == TRAILING


@pytest.mark.parametrize(
    ("code", "words", "again"),
    [
        (1, "general SOCKS server failure", True),
        (2, "not allowed by ruleset", False),
        (3, "network unreachable", True),
        (4, "host unreachable", True),
        (5, "connection refused", True),
        (6, "TTL expired", True),
        (7, "command not supported", False),
        (8, "address type not supported", False),
        (9, "unknown reply code", False),
    ],
)
def test_socks5_reply_codes(code: int, words: str, again: bool) -> None:
    handshake = SOCKS5Handshake("h", 1)
    handshake.receive_data(b"\x05\x00")
    with pytest.raises(hybi.SOCKSRefused, match=words) as caught:
        handshake.receive_data(bytes([5, code, 0, 1]) + bytes(6))
    assert (caught.value.version, caught.value.code) == (5, code)
    assert retryable(caught.value) is again


@pytest.mark.parametrize(
    ("make", "replies", "error", "words"),
    [
        (lambda: SOCKS5Handshake("h", 1), [b"\x05\xff"], hybi.SOCKSRefused, "it wants credentials"),
        (lambda: SOCKS5Handshake("h", 1, username="u", password="p"), [b"\x05\xff"], hybi.SOCKSRefused, "another"),
        (
            lambda: SOCKS5Handshake("h", 1, username="u", password="p"),
            [b"\x05\x02", b"\x01\x01"],
            hybi.SOCKSRefused,
            "username or password rejected",
        ),
        (lambda: SOCKS5Handshake("h", 1), [b"\x05\x02"], hybi.InvalidProxyMessage, "not offered"),
        (lambda: SOCKS5Handshake("h", 1), [b"\x04\x00"], hybi.InvalidProxyMessage, "not a SOCKS5 answer"),
        (lambda: SOCKS5Handshake("h", 1), [b"\x05\x00", b"\x05\x00\x00\x09"], hybi.InvalidProxyMessage, "type 9"),
        (lambda: SOCKS5Handshake("h", 1), [b"\x05\x00", b"HTTP/"], hybi.InvalidProxyMessage, "not a SOCKS5 reply"),
    ],
)
def test_socks5_refusals_and_nonsense(
    make: Callable[[], ProxyHandshake], replies: list[bytes], error: type[Exception], words: str
) -> None:
    handshake = make()
    with pytest.raises(error, match=words) as caught:
        for reply in replies:
            handshake.receive_data(reply)
    assert retryable(caught.value) is False


def test_socks5_names_and_credentials_have_limits() -> None:
    handshake = SOCKS5Handshake("a" * 256, 1)
    with pytest.raises(hybi.InvalidProxy, match="does not fit"):
        handshake.receive_data(b"\x05\x00")
    handshake = SOCKS5Handshake("h", 1, username="u" * 256, password="p")
    with pytest.raises(hybi.InvalidProxy, match="255 bytes"):
        handshake.receive_data(b"\x05\x02")


# -- SOCKS4 and 4a -----------------------------------------------------------------------------


@pytest.mark.parametrize("split", SPLITS)
def test_socks4a_sends_the_name_after_0_0_0_1(split: str) -> None:
    handshake = proxy_handshake(parse_proxy("socks4a://someone:x@proxy"), "example.com", 80)
    assert handshake.data_to_send() == b"\x04\x01\x00\x50\x00\x00\x00\x01someone\x00example.com\x00"
    feed(handshake, b"\x00\x5a\x00\x00\x00\x00\x00\x00" + TRAILING, split)
    assert handshake.done
    assert handshake.trailing == TRAILING


def test_socks4_sends_an_address() -> None:
    handshake = SOCKS4Handshake("127.0.0.1", 8080)
    assert handshake.data_to_send() == b"\x04\x01\x1f\x90\x7f\x00\x00\x01\x00"
    handshake.receive_data(b"\x04\x5a" + bytes(6))  # some servers answer with version 4
    assert handshake.done
    with pytest.raises(hybi.InvalidProxy, match="IPv6"):
        SOCKS4Handshake("::1", 1)


@pytest.mark.parametrize(
    ("code", "words"),
    [(0x5B, "rejected or failed"), (0x5C, "identd"), (0x5D, "identd reported"), (0x42, "unknown")],
)
def test_socks4_refusals(code: int, words: str) -> None:
    handshake = SOCKS4Handshake("example.com", 1)
    with pytest.raises(hybi.SOCKSRefused, match=words) as caught:
        handshake.receive_data(bytes([0, code]) + bytes(6))
    assert (caught.value.version, caught.value.code) == (4, code)
    with pytest.raises(hybi.InvalidProxyMessage, match="not a SOCKS4 reply"):
        SOCKS4Handshake("h", 1).receive_data(b"\x05\x00\x00\x01\x00\x00\x00\x00")


# -- the I/O layers against a proxy that misbehaves ----------------------------------------------


def test_a_tunnel_closed_right_after_the_answer_fails_at_once_in_both_layers() -> None:
    """A proxy that grants the tunnel and hangs up: the opening fails with an error, not
    after open_timeout (which would raise TimeoutError)."""
    import socket
    import threading

    import hybi.sync
    from conftest import run

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    requests: list[bytes] = []

    def grant_and_hang_up() -> None:
        for _ in range(2):
            sock, _ = listener.accept()
            with sock:
                requests.append(sock.recv(4096))
                sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

    thread = threading.Thread(target=grant_and_hang_up, daemon=True)
    thread.start()
    try:
        url = "ws://example.invalid/"

        async def main() -> None:
            await hybi.connect(url, proxy=f"http://127.0.0.1:{port}", open_timeout=60)

        for attempt in (lambda: run(main()), lambda: hybi.sync.connect(url, proxy=f"http://127.0.0.1:{port}").open()):
            with pytest.raises((OSError, hybi.HybiError)) as caught:
                attempt()
            assert not isinstance(caught.value, TimeoutError)
        thread.join(30)
        assert all(request.startswith(b"CONNECT example.invalid:80 HTTP/1.1\r\n") for request in requests)
        assert len(requests) == 2
    finally:
        listener.close()
