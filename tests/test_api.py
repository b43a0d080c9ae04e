"""What a websockets user reaches for, on asyncio: reconnection, headers, hooks, broadcast,
logging, a typed API."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

import hybi
from conftest import run
from hybi.sansio.reconnect import Backoff, retryable


async def echo(ws: hybi.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


# -- reconnection ----------------------------------------------------------------------------


def test_backoff_is_random_first_then_grows_to_a_cap() -> None:
    backoff = Backoff(initial=2.0, factor=2.0, maximum=10.0, rng=random.Random(7))
    first = backoff.next_delay()
    assert 0 <= first <= 2.0
    assert [backoff.next_delay() for _ in range(4)] == [4.0, 8.0, 10.0, 10.0]
    backoff.reset()
    assert backoff.next_delay() <= 2.0


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (hybi.InvalidStatus(hybi.Response(503, "Unavailable")), True),
        (hybi.InvalidStatus(hybi.Response(403, "Forbidden")), False),
        (hybi.NoCommonVersion(hybi.Response(426, "Upgrade Required"), ["13"], [8], []), False),
        (hybi.ConnectionClosedError(1012, "restart"), True),
        (hybi.ConnectionClosedError(1002, "protocol error"), False),
        (hybi.InvalidHandshake("bad accept"), False),
        (ValueError("bad uri"), False),
    ],
)
def test_what_is_worth_another_try(error: BaseException, expected: bool) -> None:
    assert retryable(error) is expected


def test_async_for_reconnects_after_the_server_goes_away() -> None:
    async def main() -> None:
        goodbye = asyncio.Event()

        async def first_then_gone(ws: hybi.ServerConnection) -> None:
            await ws.send("hello")
            await goodbye.wait()  # held until the client has seen the first connection

        async with hybi.serve(first_then_gone, "127.0.0.1", 0) as server:
            port = server.port
            seen = []
            attempts = 0
            async for ws in hybi.connect(f"ws://127.0.0.1:{port}/", backoff=Backoff(initial=0.05, maximum=0.1)):
                attempts += 1
                seen.append(await ws.recv())
                if attempts == 1:
                    for connection in list(server.connections):
                        connection.close_anyhow(1012, "restarting")
                    with pytest.raises(hybi.ConnectionClosed):
                        await ws.recv()
                    continue
                break
            goodbye.set()
            assert seen == ["hello", "hello"]

    run(main())


def test_async_for_retries_a_refused_connection_then_stops_on_a_fatal_answer() -> None:
    async def main() -> None:
        answers = [
            "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        ]

        async def refusing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answers.pop(0).encode())
            await writer.drain()
            writer.close()

        listening = await asyncio.start_server(refusing, "127.0.0.1", 0)
        async with listening:
            port = listening.sockets[0].getsockname()[1]
            with pytest.raises(hybi.InvalidStatus, match="403"):
                async for _ws in hybi.connect(f"ws://127.0.0.1:{port}/", backoff=Backoff(initial=0.01)):
                    raise AssertionError("no connection is ever accepted")
            assert answers == []  # the 503 was retried, the 403 was not

    run(main())


# -- headers, hooks, TLS ----------------------------------------------------------------------


def test_headers_are_a_case_insensitive_multidict() -> None:
    headers = hybi.Headers([("Upgrade", "websocket"), ("X-A", "1"), ("x-a", "2")])
    assert headers["upgrade"] == "websocket" and headers["X-A"] == "1, 2"
    assert headers.get_all("X-A") == ["1", "2"] and "x-A" in headers and "nope" not in headers
    assert headers.items()[0] == ("Upgrade", "websocket")
    with pytest.raises(KeyError):
        headers["nope"]
    headers["X-A"] = "3"
    assert headers.get_all("x-a") == ["3"]


@pytest.mark.parametrize(
    "fields",
    [{"X-Token": "abc"}, [("X-Token", "abc")], hybi.Headers([("X-Token", "abc")])],
    ids=["dict", "pairs", "Headers"],
)
def test_additional_headers_take_a_dict_pairs_or_headers(fields: object) -> None:
    async def main() -> None:
        async with (
            hybi.serve(echo, "127.0.0.1", 0, additional_headers={"X-Server": "yes"}) as server,
            hybi.connect(f"ws://127.0.0.1:{server.port}/", additional_headers=fields) as ws,  # type: ignore[arg-type]
        ):
            assert ws.request_headers["X-Token"] == "abc"
            assert ws.request_headers["User-Agent"].startswith("hybi/")
            assert ws.response_headers["X-Server"] == "yes" and ws.response_headers["Server"].startswith("hybi/")

    run(main())


def test_old_name_extra_headers_and_no_user_agent() -> None:
    async def main() -> None:
        async with (
            hybi.serve(echo, "127.0.0.1", 0, server_header=None) as server,
            hybi.connect(
                f"ws://127.0.0.1:{server.port}/", extra_headers=[("X-Old", "1")], user_agent_header=None
            ) as ws,
        ):
            assert ws.request_headers["X-Old"] == "1" and "User-Agent" not in ws.request_headers
            assert "Server" not in ws.response_headers

    run(main())


def test_process_response_changes_or_replaces_the_101() -> None:
    async def main() -> None:
        def stamp(ws: hybi.ServerConnection, request: hybi.Request, response: hybi.Response) -> hybi.Response | None:
            if request.target == "/deny":
                return hybi.Response(451, "Unavailable For Legal Reasons", body=b"no\n")
            response.headers.add("X-Stamp", ws.path)
            return None

        async with hybi.serve(echo, "127.0.0.1", 0, process_response=stamp) as server:
            async with hybi.connect(f"ws://127.0.0.1:{server.port}/chat") as ws:
                assert ws.response_headers["X-Stamp"] == "/chat"
            with pytest.raises(hybi.InvalidStatus) as caught:
                await hybi.connect(f"ws://127.0.0.1:{server.port}/deny")
            assert caught.value.response.status == 451 and caught.value.response.body == b"no\n"

    run(main())


def test_require_subprotocol_refuses_with_400() -> None:
    async def main() -> None:
        async with hybi.serve(echo, "127.0.0.1", 0, subprotocols=["chat.v2"], require_subprotocol=True) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            async with hybi.connect(url, subprotocols=["chat.v2"]) as ws:
                assert ws.subprotocol == "chat.v2"
            with pytest.raises(hybi.InvalidStatus) as caught:
                await hybi.connect(url, subprotocols=["other"])
            assert caught.value.response.status == 400 and b"no subprotocol in common" in caught.value.response.body

    run(main())


def test_origins_take_patterns() -> None:
    async def main() -> None:
        async with hybi.serve(echo, "127.0.0.1", 0, origins=[re.compile(r"https://[a-z]+\.example\.com")]) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            async with hybi.connect(url, origin="https://app.example.com"):
                pass
            with pytest.raises(hybi.InvalidStatus, match="403"):
                await hybi.connect(url, origin="https://evil.example.org")

    run(main())


def test_wss_to_a_plain_server_fails_at_once_and_says_why() -> None:
    async def main() -> None:
        async with hybi.serve(echo, "127.0.0.1", 0) as server:
            context = ssl.create_default_context()
            started = asyncio.get_running_loop().time()
            with pytest.raises(hybi.InvalidHandshake, match=r"TLS handshake .* failed"):
                await hybi.connect(f"wss://127.0.0.1:{server.port}/", ssl=context, open_timeout=30)
            assert asyncio.get_running_loop().time() - started < 5  # the server says so at once, no open timeout

    run(main())


# -- broadcast ---------------------------------------------------------------------------------


def test_broadcast_to_every_version_once() -> None:
    async def main() -> None:
        async def hold(ws: hybi.ServerConnection) -> None:
            await ws.wait_closed()

        async with hybi.serve(hold, "127.0.0.1", 0, versions="all") as server:
            url = f"ws://127.0.0.1:{server.port}/"
            clients = [
                await hybi.connect(url, versions=[version], compression=compression)
                for version, compression in [
                    (13, None),
                    (13, "balanced"),
                    (8, None),
                    ("hixie-76", None),
                    ("hybi-02", None),
                ]
            ]
            while len(server.connections) < len(clients):
                await asyncio.sleep(0.01)
            assert hybi.broadcast(server.connections, "to all") == 0
            assert [await client.recv() for client in clients] == ["to all"] * len(clients)
            assert hybi.broadcast(server.connections, b"bytes") == 1  # hixie-76 has no binary messages
            for client in clients:
                await client.close()
            assert hybi.broadcast(server.connections, "after") == len(server.connections)

    run(main())


# -- logging -------------------------------------------------------------------------------------


def test_debug_logs_the_exchange_with_the_connection_id(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with (
            hybi.serve(echo, "127.0.0.1", 0) as server,
            hybi.connect(f"ws://127.0.0.1:{server.port}/") as ws,
        ):
            await ws.send("x" * 200)
            assert await ws.recv() == "x" * 200

    with caplog.at_level(logging.DEBUG, logger="hybi"):
        run(main())
    server_records = [r for r in caplog.records if r.name == "hybi.server"]
    client_records = [r for r in caplog.records if r.name == "hybi.client"]
    assert server_records and client_records
    assert all(hasattr(r, "connection_id") for r in server_records + client_records)
    text = "\n".join(r.getMessage() for r in client_records)
    assert "request: GET / HTTP/1.1" in text and "response: HTTP/1.1 101" in text
    assert "> text [200] 'xxx" in text and "…" in text  # elided past 60 characters
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_port_scanner_is_logged_at_info_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with hybi.serve(echo, "127.0.0.1", 0) as server:
            _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"\x16\x03\x01garbage\r\n\r\n")
            await writer.drain()
            writer.close()
            await asyncio.sleep(0.2)

    with caplog.at_level(logging.INFO, logger="hybi"):
        run(main())
    failures = [r for r in caplog.records if "opening handshake failed" in r.getMessage()]
    assert failures and all(r.levelno == logging.INFO and not r.exc_info for r in failures)


# -- a typed API -------------------------------------------------------------------------------

USER_PROGRAM = """
import asyncio
import hybi

async def handler(ws: hybi.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)

async def main() -> None:
    async with hybi.serve(handler, "127.0.0.1", 0, versions=(13, 8), subprotocols=["chat"], max_size=1 << 16):
        async with hybi.connect("ws://127.0.0.1:1/", versions=[8, 13], compression="memory", proxy=None) as ws:
            await ws.send("hi")
            reply: str | bytes = await ws.recv()
            print(reply, ws.version, ws.latency)
"""


def mypy(program: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "user_program.py"
    path.write_text(program)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_user_program_type_checks(tmp_path: Path) -> None:
    result = mypy(USER_PROGRAM, tmp_path)
    assert result.returncode == 0, result.stdout


def test_proxy_options_are_typed(tmp_path: Path) -> None:
    """`proxy` is True (the environment), a URL or None; False means nothing and fails."""
    program = USER_PROGRAM.replace(
        "proxy=None",
        'proxy="https://u:p@proxy.example:3128", proxy_ssl=ssl.create_default_context(), proxy_server_hostname="p"',
    ).replace("import hybi\n", "import ssl\nimport hybi\n", 1)
    result = mypy(program, tmp_path)
    assert result.returncode == 0, result.stdout
    result = mypy(USER_PROGRAM.replace("proxy=None", "proxy=False"), tmp_path)
    assert result.returncode == 1 and 'Argument "proxy" to "connect"' in result.stdout, result.stdout
    with pytest.raises(hybi.InvalidProxy, match="scheme 'ftp'"):
        hybi.connect("ws://127.0.0.1:1/", proxy="ftp://proxy.example")


def test_a_misspelt_option_fails_type_checking_and_at_run_time(tmp_path: Path) -> None:
    result = mypy(USER_PROGRAM.replace("subprotocols=", "subprotocol="), tmp_path)
    assert result.returncode == 1 and 'Unexpected keyword argument "subprotocol"' in result.stdout
    with pytest.raises(TypeError, match="subprotocol"):
        hybi.serve(echo, "127.0.0.1", 0, subprotocol=["chat"])  # type: ignore[call-arg]
