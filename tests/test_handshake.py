"""Opening handshakes of versions 7, 8 and 13 and the negotiation between them."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from hybi.exceptions import HandshakeRejected, InvalidHandshake, InvalidStatus
from hybi.sansio.connection import ServerConnection, open_connection
from hybi.sansio.dialects import DIALECTS, resolve_versions
from hybi.sansio.dialects.keyaccept import accept_value
from hybi.sansio.events import RequestReceived, Role, State
from hybi.sansio.handshake import ClientHandshake, ServerHandshake
from hybi.sansio.http import Headers, HTTPLimits, Request
from hybi.sansio.negotiation import choose_retry, parse_version_list

RFC_REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)
RFC_RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"Sec-WebSocket-Protocol: chat\r\n"
    b"\r\n"
)


@pytest.mark.parametrize(
    ("key", "accept"),
    [
        ("dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),  # RFC 6455 section 1.3
        ("x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk="),
    ],
)
def test_accept_value(key: str, accept: str) -> None:
    assert accept_value(key) == accept


def request_bytes(version: str | None = "13", **changes: str | None) -> bytes:
    fields = {
        "Host": "example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": version,
    }
    for name, value in changes.items():
        fields[name.replace("_", "-")] = value
    lines = [f"{name}: {value}" for name, value in fields.items() if value is not None]
    return ("GET / HTTP/1.1\r\n" + "".join(line + "\r\n" for line in lines) + "\r\n").encode()


def server_answer(data: bytes, versions: str = "13,8,7") -> bytes:
    handshake = ServerHandshake(versions, subprotocols=["chat"])
    request = handshake.receive_data(data)
    assert request is not None
    try:
        dialect = handshake.negotiate(request)
    except HandshakeRejected as rejection:
        return rejection.response.serialize()
    reply, _ = handshake.accept(request, dialect, subprotocol=handshake.select_subprotocol(request, dialect))
    return reply


class TestServer:
    def test_rfc_example(self, feed_mode: str) -> None:
        handshake = ServerHandshake(subprotocols=["chat"])
        frame = bytes.fromhex("818537fa213d7f9f4d5158")
        data = RFC_REQUEST + frame
        if feed_mode == "bytewise":
            results = [handshake.receive_data(data[i : i + 1]) for i in range(len(data))]
            request = results[-1]
            assert results[: len(RFC_REQUEST) - 1] == [None] * (len(RFC_REQUEST) - 1)
        else:
            request = handshake.receive_data(data)
        assert request is not None
        assert handshake.trailing == frame
        dialect = handshake.negotiate(request)
        assert dialect.version == 13
        assert request.origin == "http://example.com"
        reply, accepted = handshake.accept(request, dialect, subprotocol=handshake.select_subprotocol(request, dialect))
        assert reply == RFC_RESPONSE
        assert open_connection(accepted.dialect, Role.SERVER).receive_data(handshake.trailing) == ["Hello"]

    def test_server_prefers_its_own_subprotocol_order(self) -> None:
        handshake = ServerHandshake(subprotocols=["superchat", "chat"])
        request = handshake.receive_data(RFC_REQUEST)
        assert request is not None
        assert handshake.select_subprotocol(request, handshake.negotiate(request)) == "superchat"
        assert ServerHandshake(subprotocols=["other"]).select_subprotocol(request, DIALECTS["13"]) is None

    @pytest.mark.parametrize("version", ["8", "7"])
    def test_old_versions_send_sec_websocket_origin(self, version: str) -> None:
        data = request_bytes(version, Sec_WebSocket_Origin="http://old.example")
        handshake = ServerHandshake()
        request = handshake.receive_data(data)
        assert request is not None and request.origin == "http://old.example"
        assert handshake.negotiate(request).version == int(version)

    @pytest.mark.parametrize(
        ("changes", "status", "words"),
        [
            ({"Host": None}, 400, "Host"),
            ({"Sec-WebSocket-Key": None}, 400, "missing Sec-WebSocket-Key"),
            ({"Sec-WebSocket-Key": "c2hvcnQ="}, 400, "not 16 bytes"),
            ({"Sec-WebSocket-Key": "not base64!!!!!!!!!!!!=="}, 400, "not 16 bytes"),
            ({"Upgrade": None}, 426, "no 'Upgrade: websocket'"),
            ({"Upgrade": "h2c"}, 426, "no 'Upgrade: websocket'"),
            ({"Connection": "keep-alive"}, 426, "no 'Connection: Upgrade'"),
        ],
    )
    def test_rejections_say_why(self, changes: dict[str, str | None], status: int, words: str) -> None:
        answer = server_answer(request_bytes("13", **{k.replace("-", "_"): v for k, v in changes.items()}))
        assert answer.startswith(f"HTTP/1.1 {status} ".encode())
        assert words.encode() in answer

    def test_repeated_key_is_refused(self) -> None:
        data = request_bytes("13").replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        assert b"repeated Sec-WebSocket-Key" in server_answer(data)

    def test_post_is_refused_with_the_version_list(self) -> None:
        answer = server_answer(request_bytes("13").replace(b"GET", b"POST", 1))
        assert answer.startswith(b"HTTP/1.1 426 ") and b"Sec-WebSocket-Version: 13, 8, 7\r\n" in answer

    def test_version_is_checked_before_the_key(self) -> None:
        answer = server_answer(request_bytes("9", Sec_WebSocket_Key=None))
        assert answer.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
        assert b"Sec-WebSocket-Version: 13, 8, 7\r\n" in answer

    def test_malformed_head_gets_400(self) -> None:
        with pytest.raises(HandshakeRejected) as caught:
            ServerHandshake().receive_data(b"GET / HTTP/1.1\r\nbad header\r\n\r\n")
        assert caught.value.response.status == 400

    def test_oversized_head_gets_431(self) -> None:
        with pytest.raises(HandshakeRejected) as caught:
            ServerHandshake().receive_data(b"GET / HTTP/1.1\r\nX: " + b"a" * 10000)
        assert caught.value.response.status == 431
        assert caught.value.response.reason == "Request Header Fields Too Large"


# Every request version against every server configuration: 101 or 426 with the exact list.
REQUEST_VERSIONS = [None, "13", "8", "7", "9", "6", "0", "4", "14", "abc", "", "13, 8", "013"]
SERVER_CONFIGS = ["13,8,7", "13", "8,13", "7", "7,8"]


@pytest.mark.parametrize(("requested", "accepted"), list(itertools.product(REQUEST_VERSIONS, SERVER_CONFIGS)))
def test_negotiation_matrix(requested: str | None, accepted: str) -> None:
    answer = server_answer(request_bytes(requested), accepted)
    if requested in accepted.split(","):
        assert answer.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    else:
        assert answer.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
        assert f"Sec-WebSocket-Version: {accepted.replace(',', ', ')}\r\n".encode() in answer
        assert b"Upgrade: websocket\r\n" in answer
        body = answer.split(b"\r\n\r\n", 1)[1]
        assert body.startswith(b"missing" if requested is None else b"unsupported WebSocket version")


class TestClient:
    @pytest.mark.parametrize(
        ("version", "origin_header"), [("13", "Origin"), ("8", "Sec-WebSocket-Origin"), ("7", "Sec-WebSocket-Origin")]
    )
    def test_request(self, version: str, origin_header: str) -> None:
        handshake = ClientHandshake(
            DIALECTS[version], "/x?y=1", "example.com:8080", origin="http://o", subprotocols=["a", "b"]
        )
        request = handshake.request
        assert request.serialize().startswith(b"GET /x?y=1 HTTP/1.1\r\nHost: example.com:8080\r\n")
        assert request.headers.get("Sec-WebSocket-Version") == version
        assert request.headers.get(origin_header) == "http://o"
        other = "Sec-WebSocket-Origin" if origin_header == "Origin" else "Origin"
        assert other not in request.headers
        assert request.headers.get("Sec-WebSocket-Protocol") == "a, b"

    def test_against_the_server(self, feed_mode: str) -> None:
        for version in ("13", "8", "7"):
            client = ClientHandshake(DIALECTS[version], "/", "h", subprotocols=["chat"])
            reply = server_answer(client.request_bytes())
            frame = b"\x81\x02hi"
            if feed_mode == "bytewise":
                data = reply + frame
                results = [client.receive_data(data[i : i + 1]) for i in range(len(data))]
                assert results[: len(reply) - 1] == [None] * (len(reply) - 1)
                accepted = results[-1]
            else:
                accepted = client.receive_data(reply + frame)
            assert accepted is not None
            assert accepted.subprotocol == "chat"
            assert accepted.dialect.name == version
            assert client.trailing == frame
            assert open_connection(accepted.dialect, Role.CLIENT).receive_data(client.trailing) == ["hi"]

    def response_for(self, client: ClientHandshake, **changes: str | None) -> bytes:
        fields: dict[str, str | None] = {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Accept": accept_value(client.offer.secret),
        }
        fields.update({k.replace("_", "-"): v for k, v in changes.items()})
        lines = "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v is not None)
        return f"HTTP/1.1 101 Switching Protocols\r\n{lines}\r\n".encode()

    @pytest.mark.parametrize(
        ("changes", "words"),
        [
            ({"Upgrade": None}, "Upgrade"),
            ({"Upgrade": "h2c"}, "Upgrade"),
            ({"Connection": "close"}, "Connection"),
            ({"Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}, "Sec-WebSocket-Accept"),
            ({"Sec-WebSocket-Accept": None}, "Sec-WebSocket-Accept"),
            ({"Sec-WebSocket-Extensions": "permessage-deflate"}, "extensions"),
            ({"Sec-WebSocket-Protocol": "other"}, "subprotocol"),
            ({"Sec-WebSocket-Protocol": "chat, other"}, "subprotocol"),
        ],
    )
    def test_bad_101_responses(self, changes: dict[str, str | None], words: str) -> None:
        client = ClientHandshake(DIALECTS["13"], "/", "h", subprotocols=["chat"])
        with pytest.raises(InvalidHandshake, match=words):
            client.receive_data(self.response_for(client, **changes))

    def test_upgrade_token_is_case_insensitive(self) -> None:
        client = ClientHandshake(DIALECTS["13"], "/", "h")
        assert client.receive_data(self.response_for(client, Upgrade="WebSocket", Connection="keep-alive, upgrade"))

    def test_refusal_carries_the_listed_versions(self) -> None:
        client = ClientHandshake(DIALECTS["8"], "/", "h")
        with pytest.raises(InvalidStatus) as caught:
            client.receive_data(b"HTTP/1.1 400 Bad Request\r\nSec-WebSocket-Version: 13,8\r\n\r\n")
        assert caught.value.server_versions == (13, 8)
        assert caught.value.response.status == 400

    def test_oversized_response_head(self) -> None:
        client = ClientHandshake(DIALECTS["13"], "/", "h", limits=HTTPLimits(max_head=1000))
        client.receive_data(b"HTTP/1.1 101 Switching Protocols\r\n")
        with pytest.raises(InvalidHandshake, match="longer than 1000 bytes"):
            for _ in range(100):
                client.receive_data(b"X-Filler: " + b"f" * 20 + b"\r\n")

    def test_malformed_response(self) -> None:
        client = ClientHandshake(DIALECTS["13"], "/", "h")
        with pytest.raises(InvalidHandshake, match="invalid HTTP response"):
            client.receive_data(b"HTTP/1.1 OK\r\n\r\n")


# The forms servers send (shared/versions.md section 5) and what a client reads in them.
@pytest.mark.parametrize(
    ("fields", "versions"),
    [
        (["13"], [13]),
        (["7, 8, 13"], [7, 8, 13]),
        (["13, 8, 7"], [13, 8, 7]),
        (["13,8"], [13, 8]),
        (["13, 8"], [13, 8]),
        (["13, 8, 6, 0"], [13, 8, 6, 0]),
        (["13, 6, 0"], [13, 6, 0]),
        (["13", "8, 7"], [13, 8, 7]),
        (["  13 ,8 ,, 7  "], [13, 8, 7]),
        (["13, 13", "13"], [13]),
        (["13, draft-76, 8"], [13, 8]),
        ([], []),
    ],
)
def test_parse_version_list(fields: list[str], versions: list[int]) -> None:
    headers = Headers(
        [("sec-websocket-version" if i % 2 else "Sec-WebSocket-Version", v) for i, v in enumerate(fields)]
    )
    assert parse_version_list(headers) == versions


@pytest.mark.parametrize(
    ("client", "tried", "listed", "chosen"),
    [
        ("8,13", "8", [13], "13"),
        ("13,8,7", "13", [7, 8, 13], "8"),
        ("7,8,13", "7", [13, 8], "8"),
        ("8,7", "8", [13], None),
        ("13", "13", [13], None),
        ("8,13", "8", [], None),
        ("13,8,7", "13", [6, 0], None),
    ],
)
def test_choose_retry(client: str, tried: str, listed: list[int], chosen: str | None) -> None:
    dialect = choose_retry(resolve_versions(client), resolve_versions(tried), listed)
    assert (dialect.name if dialect else None) == chosen


def test_resolve_versions() -> None:
    assert [d.name for d in resolve_versions("all")] == ["13", "8", "7", "6", "5", "hybi-02", "hixie-76", "hixie-75"]
    assert [d.name for d in resolve_versions("hybi-00, 75, hybi-03")] == ["hixie-76", "hixie-75", "hybi-02"]
    assert [d.name for d in resolve_versions([8, "13", 8])] == ["8", "13"]
    assert [d.name for d in resolve_versions("7, 13")] == ["7", "13"]
    with pytest.raises(
        ValueError, match=r"unknown WebSocket version '9'.*known: 13, 8, 7, 6, 5, hybi-02, hixie-76, hixie-75"
    ):
        resolve_versions("13,9")
    with pytest.raises(ValueError, match="no WebSocket version"):
        resolve_versions([])


def test_request_origin_prefers_origin() -> None:
    request = Request("GET", "/", Headers([("Sec-WebSocket-Origin", "a"), ("Origin", "b")]))
    assert request.origin == "b"


def test_superscript_digits_are_not_versions_or_lengths() -> None:
    """'²' and '¹' pass str.isdigit() but not int(): they are skipped, never an error."""
    assert parse_version_list(Headers([("Sec-WebSocket-Version", "\xb2, 8")])) == [8]
    client = ClientHandshake(DIALECTS["13"], "/", "h")
    refusal = "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: \xb2\r\nContent-Length: \xb9\r\n\r\n"
    with pytest.raises(InvalidStatus) as caught:
        client.receive_data(refusal.encode("latin-1"))
    assert caught.value.server_versions == ()


def test_resolved_versions_are_remembered_for_values_only() -> None:
    """Specs that are values answer from what was resolved before; an iterator never does
    (the same one, used up, names no version)."""
    assert resolve_versions(("13", 8)) is resolve_versions(("13", 8))
    assert resolve_versions("8,7") is resolve_versions("8,7")
    versions = iter(["8"])
    assert [d.name for d in resolve_versions(versions)] == ["8"]
    with pytest.raises(ValueError, match="no WebSocket version"):
        resolve_versions(versions)
    with pytest.raises(ValueError, match="unknown WebSocket version"):
        resolve_versions(("13", "9"))
    with pytest.raises(ValueError, match="unknown WebSocket version"):
        resolve_versions(("13", "9"))  # a refusal is never remembered


class TestNegotiatedOnce:
    """A server asks `negotiate` for RequestReceived and again to decide: the second answer
    is the first, unless the request changed in between (a process_request hook may)."""

    def test_an_unchanged_request_is_negotiated_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        handshake = ServerHandshake()
        request = handshake.receive_data(request_bytes("8"))
        assert request is not None
        dialect = handshake.negotiate(request)
        monkeypatch.setattr("hybi.sansio.handshake.classify_request", None)  # not called again
        assert handshake.negotiate(request) is dialect
        reply, accepted = handshake.decide(request)
        assert accepted.dialect is dialect and reply.startswith(b"HTTP/1.1 101 ")

    @pytest.mark.parametrize(
        "change",
        [
            lambda request: request.headers.__delitem__("Sec-WebSocket-Key"),
            lambda request: request.headers.__setitem__("Sec-WebSocket-Version", "13"),
            lambda request: request.headers.add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            lambda request: setattr(request, "headers", Headers([("Host", "h")])),
            lambda request: setattr(request, "method", "POST"),
            lambda request: setattr(request, "http_version", "HTTP/1.0"),
        ],
        ids=["key removed", "version changed", "key repeated", "headers replaced", "method", "http version"],
    )
    def test_a_changed_request_is_negotiated_again(self, change: Callable[[Request], None]) -> None:
        handshake = ServerHandshake()
        request = handshake.receive_data(request_bytes("8"))
        assert request is not None
        handshake.negotiate(request)
        change(request)
        fresh = ServerHandshake()
        try:
            expected: object = fresh.negotiate(request)
        except HandshakeRejected as rejection:
            expected = rejection.response.serialize()
        try:
            got: object = handshake.negotiate(request)
        except HandshakeRejected as rejection:
            got = rejection.response.serialize()
        assert got == expected and got is not DIALECTS["8"]

    def test_a_connection_refuses_a_request_its_hook_spoiled(self) -> None:
        server = ServerConnection()
        [event] = server.receive_data(request_bytes("13"))
        assert isinstance(event, RequestReceived) and event.dialect is DIALECTS["13"]
        del event.request.headers["Host"]
        server.accept()
        assert server.state is State.REJECTED
        assert server.data_to_send().startswith(b"HTTP/1.1 400 ")


def test_a_decided_handshake_keeps_no_lookup_index() -> None:
    """A server connection keeps its request for its lifetime: the lookup index and the
    negotiation memo, needed only to decide, are let go (and made again if asked)."""
    handshake = ServerHandshake()
    request = handshake.receive_data(request_bytes("13"))
    assert request is not None
    handshake.decide(request)
    assert request.headers._index is None and handshake._negotiated is None
    assert request.headers.get("upgrade") == "websocket"
