"""The older dialects over loopback: every dialect end to end, and the client's fallbacks."""

from __future__ import annotations

import asyncio

import pytest

import hybi
from conftest import run
from hybi.cli import probe
from test_asyncio import FakeServer, echo, echo_server
from test_drafts import HIXIE76_ANSWER, HIXIE76_KEY3, HIXIE76_REQUEST

OLD = ["6", "5", "hybi-02", "hixie-76", "hixie-75"]
TEXT_ONLY = {"hixie-76", "hixie-75"}


@pytest.mark.parametrize("version", OLD)
def test_every_old_dialect_end_to_end(version: str) -> None:
    async def main() -> None:
        seen: list[int | str | None] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            seen.append(ws.version)
            await echo(ws)

        async with echo_server(handler, versions="all") as url:
            async with hybi.connect(url + "path?q=1", versions=[version], origin="http://hybi.test") as ws:
                assert str(ws.version) == version
                for size in (0, 1, 125, 126, 65535, 65536, 200_000):
                    text = ("é" + "x" * 9) * (size // 10)
                    await ws.send(text)
                    assert await ws.recv() == text
                if version in TEXT_ONLY:
                    with pytest.raises(hybi.UnsupportedFeature, match=f"{version} has no binary"):
                        await ws.send(b"bytes")
                    with pytest.raises(hybi.UnsupportedFeature, match="no ping"):
                        await ws.ping()
                    with pytest.raises(hybi.UnsupportedFeature, match="no status code"):
                        await ws.close(4000, "why")
                else:
                    await ws.send(bytes(70000))
                    assert await ws.recv() == bytes(70000)
                    await (await ws.ping())
            # Closes of hixie, hybi-02 and 5 carry no status: 1005.
            assert ws.close_code == (1000 if version == "6" else 1005)
        assert [str(v) for v in seen] == [version]

    run(main())


def test_hixie76_server_answers_when_key3_comes_late() -> None:
    """Behind HAProxy, key3 reaches the server only after the 101 head went out."""

    async def main() -> None:
        async with hybi.serve(echo, "127.0.0.1", 0, versions="hixie-76") as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(HIXIE76_REQUEST.replace(b"example.com", b"127.0.0.1"))
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 WebSocket Protocol Handshake\r\n")
            writer.write(HIXIE76_KEY3 + b"\x00hello\xff")
            assert await reader.readexactly(16) == HIXIE76_ANSWER
            assert await reader.readuntil(b"\xff") == b"\x00hello\xff"
            writer.write(b"\xff\x00")
            assert await reader.read() == b"\xff\x00"
            writer.close()

    run(main())


def test_hixie76_server_drops_a_client_that_never_sends_key3() -> None:
    async def main() -> None:
        async with hybi.serve(echo, "127.0.0.1", 0, versions="hixie-76", open_timeout=0.3) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(HIXIE76_REQUEST + HIXIE76_KEY3[:3])
            data = await reader.read()  # the head, then the connection ends: no hang
            assert data.startswith(b"HTTP/1.1 101 ") and data.endswith(b"\r\n\r\n")
            writer.close()

    run(main())


def test_hixie75_server_shutdown_just_closes() -> None:
    async def main() -> None:
        server = await hybi.serve(echo, "127.0.0.1", 0, versions="hixie-75")
        ws = await hybi.connect(f"ws://127.0.0.1:{server.port}/", versions="hixie-75")
        server.close()
        await server.wait_closed()
        with pytest.raises(hybi.ConnectionClosedOK) as caught:
            await ws.recv()
        assert caught.value.code == 1005

    run(main())


# -- the client's fallbacks ---------------------------------------------------------------------


def test_all_falls_back_by_the_version_list() -> None:
    async def main() -> None:
        async with echo_server(versions="6,5") as url, hybi.connect(url, versions="all") as ws:
            assert ws.version == 6
            assert [(a.version, a.status, a.server_versions) for a in ws.handshake_attempts] == [
                ("13", 426, (6, 5)),
                ("6", 101, ()),
            ]

    run(main())


def test_a_listed_zero_means_hixie76() -> None:
    async def main() -> None:
        async with echo_server(versions="hixie-76") as url, hybi.connect(url, versions="all") as ws:
            assert ws.version == "hixie-76"
            assert ws.handshake_attempts[0].server_versions == (0,)
            await ws.send("via 0")
            assert await ws.recv() == "via 0"

    run(main())


class LegacyServer(FakeServer):
    """Ignores the version header and answers every request as hixie-75 does."""

    def __init__(self) -> None:
        super().__init__(0, [], None)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append("Sec-WebSocket-Version" if b"Sec-WebSocket-Version" in head else "none")
        host = next(line.split(b": ", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"host:"))
        writer.write(
            b"HTTP/1.1 101 Web Socket Protocol Handshake\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
            b"WebSocket-Origin: http://o\r\nWebSocket-Location: ws://" + host + b"/\r\n\r\n"
        )
        while frame := await reader.readuntil(b"\xff"):
            writer.write(frame)
        writer.close()


def test_a_hixie_style_answer_to_a_versioned_request() -> None:
    async def main() -> None:
        server = LegacyServer()
        async with server.running() as url:
            async with hybi.connect(url, versions="13,8,hixie-75", origin="http://o") as ws:
                assert ws.version == "hixie-75"
                assert [(a.version, a.status) for a in ws.handshake_attempts] == [("13", 101), ("hixie-75", 101)]
                assert "as hixie-75 does" in (ws.handshake_attempts[0].error or "")
                await ws.send("old")
                assert await ws.recv() == "old"
            assert server.requests == ["Sec-WebSocket-Version", "none"]
            with pytest.raises(hybi.LegacyAnswer, match="as hixie-75 does"):
                await hybi.connect(url, versions="13,8")  # without the draft, no fallback

    run(main())


def test_probe_reports_every_dialect() -> None:
    async def main() -> dict[str, object]:
        async with echo_server(versions="8,hixie-76,hixie-75") as url:
            return await probe(url)

    report = run(main())
    assert report["accepted"] == ["8", "hixie-76", "hixie-75"]
    assert report["listed"] == ["8", "hixie-76"]
    versions = report["versions"]
    assert isinstance(versions, dict)
    assert versions["13"]["result"] == "refused"
    assert versions["hybi-02"]["status"] == 426


def test_a_wrong_challenge_answer_fails_the_handshake() -> None:
    """A server that answers hixie-76 without proving it read the keys is refused."""

    async def main() -> None:
        async def liar(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(8)
            host = next(line.split(b": ", 1)[1] for line in head.split(b"\r\n") if line.startswith(b"Host:"))
            writer.write(
                b"HTTP/1.1 101 WebSocket Protocol Handshake\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Location: ws://" + host + b"/\r\n\r\n" + bytes(16)
            )
            await reader.read()
            writer.close()

        server = await asyncio.start_server(liar, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(hybi.InvalidHandshake, match="wrong answer to the hixie-76 challenge"):
                await hybi.connect(f"ws://127.0.0.1:{port}/", versions="hixie-76")

    run(main())
