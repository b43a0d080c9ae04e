"""Driving hybi's sans-I/O core by hand: a server connection fed bytes, no socket at all.

Usage: python examples/sansio_by_hand.py

The bytes are those of RFC 6455's own examples (sections 1.3 and 5.7), so every line
printed can be checked against the RFC. A real server does the same in a loop: whatever
it reads goes into `receive_data()`, and whatever `data_to_send()` returns is written.
"""

from hybi.sansio import (
    CloseReceived,
    Opened,
    Options,
    RequestReceived,
    ServerConnection,
    State,
    TransportAction,
)

# No keepalive pings in this example: the connection would ask for a timer otherwise.
server = ServerConnection(versions="13", options=Options(ping_interval=None), now=0.0)

# 1. The opening request, from RFC 6455 section 1.3. It may come in any number of pieces;
#    here the head comes in two.
request = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)
assert server.receive_data(request[:40], now=0.1) == []  # not complete yet: no event
events = server.receive_data(request[40:], now=0.2)
assert isinstance(events[0], RequestReceived)
print(f"request for {events[0].request.target}, state {server.state.value}")

# 2. The application decides. accept() runs the checks (version, origin, subprotocol,
#    extensions) and queues the 101; reject(response) would answer with anything else.
events = server.accept(now=0.3)
assert events == [Opened()]
print(f"state {server.state.value}")
answer = server.data_to_send()
print(answer.decode().replace("\r\n", "\n  ").rstrip())  # contains s3pPLMBiTxaQ9kYGzzhZRbK+xOo=

# 3. A masked text frame "Hello" from the client (RFC 6455 section 5.7). The message is
#    reported as the str itself; binary messages are reported as bytes.
events = server.receive_data(bytes.fromhex("818537fa213d7f9f4d5158"), now=1.0)
print(f"received {events!r}")
message = events[0]
assert isinstance(message, str)

# 4. Echo it. Server frames are not masked: 81 05 48 65 6c 6c 6f.
server.send_text(message)
print(f"to send: {server.data_to_send().hex(' ')}")

# 5. The client closes with 1000 (a masked close frame with the code and no reason). The
#    server answers with its own close frame and is then done: it must close TCP.
events = server.receive_data(bytes.fromhex("888211223344") + bytes([0x03 ^ 0x11, 0xE8 ^ 0x22]), now=2.0)
assert events == [CloseReceived(1000, "")]
print(f"received {events!r}")
print(f"to send: {server.data_to_send().hex(' ')}")
assert server.state is State.CLOSED and server.transport_action is TransportAction.CLOSE
print(f"state {server.state.value}, transport: {server.transport_action.value}")
info = server.close_info()
assert info is not None and info.ok
print(f"closed normally: code {info.code}, sent {info.sent_code}")
