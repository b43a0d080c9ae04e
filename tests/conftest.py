"""Helpers shared by the tests."""

from __future__ import annotations

import asyncio
import os
import ssl
import struct
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from hybi.sansio.events import Event

T = TypeVar("T")

FEED_MODES = ("whole", "bytewise", "trailing")


def run(coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run a coroutine on a fresh event loop, failing (never hanging) after `timeout`."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coroutine

    return asyncio.run(bounded())


def feed(receive: Callable[[bytes], list[Event]], data: bytes, mode: str) -> list[Event]:
    """Give `data` to a receiver whole, one byte at a time, or followed by the start of
    another frame (which must stay buffered and produce nothing)."""
    events: list[Event] = []
    if mode == "whole":
        events += receive(data)
    elif mode == "bytewise":
        for index in range(len(data)):
            events += receive(data[index : index + 1])
    elif mode == "trailing":
        events += receive(data + b"\x81")
    else:
        raise AssertionError(mode)
    return events


def raw_frame(first: int, payload: bytes, *, mask: bytes | None = b"\x37\xfa\x21\x3d", length: str = "short") -> bytes:
    """Build a frame byte by byte, including ones hybi itself would never send.

    `first` is byte 0 as is (FIN, RSV and opcode); `length` picks the length encoding:
    "short" (7-bit when it fits), "16" or "64" whatever the size.
    """
    size = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    if length == "short" and size < 126:
        header = bytes((first, mask_bit | size))
    elif length == "16" or (length == "short" and size < 65536):
        header = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, size)
    if mask is None:
        return header + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


@pytest.fixture(params=FEED_MODES)
def feed_mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fixed_mask(monkeypatch: pytest.MonkeyPatch) -> Iterator[bytes]:
    """Make every masking key the RFC 6455 section 5.7 example key 37 fa 21 3d."""
    key = bytes.fromhex("37fa213d")
    original = os.urandom
    monkeypatch.setattr("hybi.sansio.frames.os.urandom", lambda n: key if n == 4 else original(n))
    yield key


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for "localhost" and a client context that trusts
    it, from a throwaway authority (trustme); the test is skipped where trustme is missing."""
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    return server_context, client_context
