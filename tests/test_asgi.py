"""UvicornHTTPProtocol's cutting of reads, without sockets: wherever reads split a stream of
requests, the inner HTTP protocol sees each head end a read, and the protocol it hands the
transport to gets every byte after the upgrade request's head (tests/interop/test_asgi.py
runs the real thing)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("uvicorn")

from hybi.asgi import UvicornHTTPProtocol

PLAIN = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nbody\r\n\r\nx"
UPGRADE = b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n"
AFTER = b"^n:ds[4U\x00hello\xff\r\n\r\n\x00more\xff"


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.protocol: asyncio.BaseProtocol | None = None

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol


class Upgraded(asyncio.Protocol):
    def __init__(self) -> None:
        self.received = b""

    def data_received(self, data: bytes) -> None:
        self.received += data


class RecordingHTTP(asyncio.Protocol):
    """Stands for uvicorn's HTTP protocol: hands the transport over as soon as what it has
    read ends with the upgrade request's head, as uvicorn's do."""

    def __init__(self, **kwargs: Any) -> None:
        self.reads: list[bytes] = []
        self.upgraded: Upgraded | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reads.append(data)
        if b"".join(self.reads).endswith(UPGRADE):
            self.upgraded = Upgraded()
            self.transport.set_protocol(self.upgraded)


class Wrapper(UvicornHTTPProtocol):
    http = f"{__name__}:RecordingHTTP"


@pytest.mark.parametrize("cut", range(1, len(PLAIN + UPGRADE + AFTER)))
def test_every_byte_after_the_upgrade_head_reaches_the_new_protocol(cut: int) -> None:
    stream = PLAIN + UPGRADE + AFTER
    wrapper = Wrapper(config=None, server_state=None, app_state={})  # type: ignore[arg-type]
    transport = FakeTransport()
    transport.set_protocol(wrapper)
    wrapper.connection_made(transport)
    for piece in (stream[:cut], stream[cut:]):
        transport.get_protocol().data_received(piece)  # type: ignore[attr-defined]
    inner = wrapper.inner
    assert isinstance(inner, RecordingHTTP) and inner.upgraded is not None
    assert b"".join(inner.reads) == PLAIN + UPGRADE
    assert inner.upgraded.received == AFTER
