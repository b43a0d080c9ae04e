"""Interoperability with the Python `websockets` package (version 13 only), both roles."""

from __future__ import annotations

import pytest
from tests.interop.peers import SIZES, bytes_of, require, text_of

import hybi
from conftest import run

pytestmark = pytest.mark.interop

try:
    from websockets.asyncio.client import connect as ws_connect
    from websockets.asyncio.server import ServerConnection as WsServerConnection
    from websockets.asyncio.server import serve as ws_serve
    from websockets.exceptions import ConnectionClosed as WsConnectionClosed
except ImportError:  # pragma: no cover - reported by require() below
    ws_connect = ws_serve = None  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def websockets_installed() -> None:
    require(ws_connect is not None, "the Python package websockets")


async def ws_echo(connection: WsServerConnection) -> None:
    try:
        async for message in connection:
            if message == "close-me":
                await connection.close(4001, "server-bye")
            else:
                await connection.send(message)
    except WsConnectionClosed:
        pass


def test_hybi_client_to_websockets_server() -> None:
    async def main() -> None:
        async with ws_serve(ws_echo, "127.0.0.1", 0, max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            url = f"ws://127.0.0.1:{port}/"
            async with hybi.connect(url, max_size=None) as ws:
                assert ws.version == 13
                for size in SIZES:
                    await ws.send(text_of(size))
                    assert await ws.recv() == text_of(size)
                    await ws.send(bytes_of(size))
                    assert await ws.recv() == bytes_of(size)
                await ws.close(4000, "client-bye")
                assert ws.close_code == 4000
            async with hybi.connect(url) as ws:
                await ws.send("close-me")
                with pytest.raises(hybi.ConnectionClosedError) as caught:
                    await ws.recv()
                assert (caught.value.code, caught.value.reason) == (4001, "server-bye")

    run(main())


def test_websockets_client_to_hybi_server() -> None:
    async def main() -> None:
        seen: list[tuple[int | None, str | None]] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            try:
                async for message in ws:
                    if message == "close-me":
                        await ws.close(4001, "server-bye")
                    else:
                        await ws.send(message)
            except hybi.ConnectionClosedError:
                pass
            seen.append((ws.close_code, ws.close_reason))

        async with hybi.serve(handler, "127.0.0.1", 0, max_size=None) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            async with ws_connect(url, max_size=None) as client:
                for size in SIZES:
                    await client.send(text_of(size))
                    assert await client.recv() == text_of(size)
                    await client.send(bytes_of(size))
                    assert await client.recv() == bytes_of(size)
                await client.close(4000, "client-bye")
            async with ws_connect(url) as client:
                await client.send("close-me")
                with pytest.raises(WsConnectionClosed) as caught:
                    await client.recv()
                assert caught.value.rcvd is not None
                assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (4001, "server-bye")
        assert seen[0] == (4000, "client-bye")

    run(main())


def test_refusal_without_a_version_list() -> None:
    """websockets answers an unsupported version with 400 and no Sec-WebSocket-Version."""

    async def main() -> None:
        async with ws_serve(ws_echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(hybi.NoCommonVersion) as caught:
                await hybi.connect(f"ws://127.0.0.1:{port}/", versions="8,13")
        error = caught.value
        assert error.response.status == 400
        assert error.server_versions == ()
        assert "refused version 8 with 400 Bad Request" in str(error)
        assert "client offers 8, 13; server accepts (not listed)" in str(error)

    run(main())
