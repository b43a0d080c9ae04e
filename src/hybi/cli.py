"""The `hybi` command: `hybi serve`, `hybi connect URL`, `hybi probe URL`, `hybi gateway`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import stat
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from hybi import _gateway_cli
from hybi._version import __version__
from hybi.aio.client import ClientConnection, connect
from hybi.aio.server import ServerConnection, serve
from hybi.exceptions import ConnectionClosed, HandshakeError, InvalidStatus
from hybi.sansio.connection import DEFAULT_MAX_SIZE
from hybi.sansio.deflate import PRESETS, CompressionSetting
from hybi.sansio.dialects import ALL_VERSIONS, DEFAULT_VERSIONS, resolve_versions
from hybi.sansio.http import Headers, Request, Response

__all__ = ["main"]


def _versions(text: str) -> tuple[str, ...]:
    try:
        return tuple(d.name for d in resolve_versions(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _size(text: str) -> int | None:
    """A byte count for --max-size; 0 means no limit."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of bytes") from None
    if value < 0:
        raise argparse.ArgumentTypeError("a size cannot be negative")
    return value or None


COMPRESSION_HELP = "permessage-deflate (and deflate-frame): on (the balanced preset), off, or " + ", ".join(PRESETS)


def _compression(text: str) -> CompressionSetting:
    """--compression: on, off, or a preset's name."""
    if text in ("on", "yes", "true"):
        return True
    if text in ("off", "no", "false"):
        return None
    if text not in PRESETS:
        raise argparse.ArgumentTypeError(f"{text!r}: use on, off or one of {', '.join(PRESETS)}")
    return text  # type: ignore[return-value]


def _say(message: str) -> None:
    print(f"hybi: {message}", file=sys.stderr, flush=True)


# -- hybi serve ----------------------------------------------------------------------------


def _page() -> bytes:
    return resources.files("hybi").joinpath("static/index.html").read_bytes()


def _serve_page(connection: ServerConnection, request: Request) -> Response | None:
    """A plain GET (no upgrade) of / gets the echo page; everything else is a handshake."""
    if request.headers.has_token("Upgrade", "websocket") or request.method != "GET":
        return None
    if request.target.split("?", 1)[0] not in ("/", "/index.html"):
        return None
    body = _page()
    headers = Headers(
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
        ]
    )
    return Response(200, "OK", headers, body)


async def _echo(connection: ServerConnection) -> None:
    async for message in connection:
        await connection.send(message)


async def _serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    try:
        server_context = serve(
            _echo,
            args.host,
            args.port,
            versions=args.versions,
            process_request=_serve_page,
            max_size=args.max_size,
            compression=args.compression,
        )
        server = await server_context.__aenter__()
    except OSError as error:
        _say(f"cannot listen on {args.host} port {args.port}: {error.strerror or error}")
        return 1
    try:
        host = args.host if ":" not in args.host else f"[{args.host}]"
        url = f"ws://{host}:{server.port}/"
        print(f"hybi: serving WebSocket versions {', '.join(args.versions)} on {url}", flush=True)
        print(f"hybi: open http://{host}:{server.port}/ in a browser to try it; Ctrl-C to stop", flush=True)
        await stop.wait()
        _say(f"shutting down, closing {len(server.connections)} connection(s) with 1001")
    finally:
        await server_context.__aexit__(None, None, None)
    return 0


# -- hybi connect --------------------------------------------------------------------------


def _describe_handshake(connection: ClientConnection) -> str:
    text = f"connected with version {connection.version}"
    if connection.subprotocol:
        text += f", subprotocol {connection.subprotocol}"
    refused = connection.handshake_attempts[:-1]
    for attempt in refused:
        listed = ", ".join(map(str, attempt.server_versions)) or "none"
        text += f" (after version {attempt.version} was refused with {attempt.status}; server listed {listed})"
    return text


async def _stdin_lines() -> asyncio.Queue[str | None]:
    """Lines of standard input, then None; pipes and terminals are read without blocking."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    mode = os.fstat(sys.stdin.fileno()).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or sys.stdin.isatty()):
        # A file, or a device such as /dev/null, which the event loop cannot watch: read it whole.
        for line in sys.stdin.read().splitlines():
            queue.put_nowait(line)
        queue.put_nowait(None)
        return queue
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def pump() -> None:
        while line := await reader.readline():
            await queue.put(line.decode("utf-8", "replace").rstrip("\r\n"))
        await queue.put(None)

    _background.add(loop.create_task(pump()))
    return queue


_background: set[asyncio.Task[None]] = set()


def _show(message: str | bytes) -> None:
    print(message if isinstance(message, str) else message.hex(), flush=True)


async def _connect(args: argparse.Namespace) -> int:
    try:
        connection = await connect(
            args.url,
            versions=args.versions,
            subprotocols=args.subprotocol or (),
            origin=args.origin,
            ping_interval=None,
            open_timeout=args.open_timeout,
            compression=args.compression,
        )
    except TimeoutError:
        _say(f"handshake failed: no answer within {args.open_timeout:g} s (--open-timeout)")
        return 1
    except (HandshakeError, OSError, ValueError) as error:
        _say(f"handshake failed: {str(error) or type(error).__name__}")
        return 1
    _say(_describe_handshake(connection))
    lines = await _stdin_lines()

    async def receive() -> None:
        async for message in connection:
            _show(message)

    receiver = asyncio.create_task(receive())
    try:
        while True:
            # The next line, unless the server closes first (noticed at once, not at the next line).
            next_line = asyncio.ensure_future(lines.get())
            await asyncio.wait({next_line, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if not next_line.done():
                next_line.cancel()
                break
            line = next_line.result()
            if line is None:
                # Input is over: give the server a moment for replies still in flight, then close.
                await asyncio.wait({receiver}, timeout=args.linger)
                await connection.close(1000)
                await asyncio.wait({receiver}, timeout=1)
                break
            await connection.send(line)
    except ConnectionClosed:
        pass
    if receiver.done() and (failure := receiver.exception()) is not None:
        _say(str(failure))
        return 1
    receiver.cancel()
    reason = f" {connection.close_reason}" if connection.close_reason else ""
    _say(f"closed with code {connection.close_code}{reason}")
    return 0 if connection.close_code in (1000, 1001, 1005) else 1


# -- hybi probe ----------------------------------------------------------------------------


async def _probe_one(url: str, version: str, timeout: float) -> dict[str, Any]:
    try:
        connection = await connect(url, versions=[version], open_timeout=timeout, ping_interval=None)
    except InvalidStatus as refusal:
        return {
            "result": "refused",
            "status": refusal.response.status,
            "listed": list(refusal.server_versions),
            "reason": refusal.response.reason,
        }
    except (HandshakeError, OSError, TimeoutError) as error:
        return {"result": "error", "error": str(error) or type(error).__name__}
    await connection.close(1000)
    reason = connection.response.reason if connection.response is not None else ""
    return {"result": "accepted", "status": 101, "reason": reason, "subprotocol": connection.subprotocol}


async def probe(url: str, versions: Sequence[str] = ALL_VERSIONS, timeout: float = 5.0) -> dict[str, Any]:
    """Ask `url` for each version in turn and report what its answers show.

    `accepted` are versions the server completed a handshake for (a real 101);
    `listed` are those it named in `Sec-WebSocket-Version` when refusing one.
    """
    results = {version: await _probe_one(url, version, timeout) for version in versions}
    listed: list[int] = []
    for result in results.values():
        for number in result.get("listed", ()):
            if number not in listed:
                listed.append(number)
    accepted = [version for version, result in results.items() if result["result"] == "accepted"]
    return {"url": url, "versions": results, "accepted": accepted, "listed": listed}


def _print_probe(report: dict[str, Any]) -> None:
    print(f"{report['url']}")
    for version, result in report["versions"].items():
        if result["result"] == "accepted":
            line = f"accepted ({result['status']} {result['reason']})"
        elif result["result"] == "refused":
            listed = ", ".join(map(str, result["listed"])) or "no versions"
            line = f"refused with {result['status']} {result['reason']}; listed {listed}"
        else:
            line = f"error: {result['error']}"
        print(f"  {version:>8}: {line}")
    print(f"accepted by a real 101: {', '.join(report['accepted']) or 'none'}")
    print(f"listed in refusals (RFC 6455 section 4.4): {', '.join(map(str, report['listed'])) or 'none'}")


async def _probe(args: argparse.Namespace) -> int:
    try:
        report = await probe(args.url, args.versions, args.timeout)
    except ValueError as error:
        _say(str(error))
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_probe(report)
    reachable = any(r["result"] != "error" for r in report["versions"].values())
    return 0 if reachable else 1


# -- entry point ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hybi", description="WebSocket server, client and prober for every version.")
    parser.add_argument("-V", "--version", action="version", version=f"hybi {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    known = f"comma-separated, most preferred first; known: {', '.join(ALL_VERSIONS)}, or 'all'"

    serve_cmd = commands.add_parser("serve", help="run an echo server with a browser page at /")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8765)
    serve_cmd.add_argument("--versions", type=_versions, default=DEFAULT_VERSIONS, help=known)
    serve_cmd.add_argument(
        "--max-size",
        type=_size,
        default=DEFAULT_MAX_SIZE,
        help="largest message accepted, in bytes (default 1 MiB; 0 for no limit); larger ones close with 1009",
    )
    serve_cmd.add_argument(
        "--compression",
        type=_compression,
        default=True,
        help=COMPRESSION_HELP,
    )

    connect_cmd = commands.add_parser("connect", help="send standard input line by line, print what comes back")
    connect_cmd.add_argument("url")
    connect_cmd.add_argument("--versions", type=_versions, default=DEFAULT_VERSIONS, help=known)
    connect_cmd.add_argument("--subprotocol", action="append", help="offer this subprotocol (repeatable)")
    connect_cmd.add_argument("--origin", help="send this origin")
    connect_cmd.add_argument(
        "--linger", type=float, default=0.5, help="seconds to wait for replies after input ends (default 0.5)"
    )
    connect_cmd.add_argument(
        "--open-timeout", type=float, default=10.0, help="seconds the opening handshake may take (default 10)"
    )
    connect_cmd.add_argument(
        "--compression",
        type=_compression,
        default=True,
        help=COMPRESSION_HELP,
    )

    probe_cmd = commands.add_parser("probe", help="report which versions a server accepts")
    probe_cmd.add_argument("url")
    probe_cmd.add_argument("--versions", type=_versions, default=ALL_VERSIONS, help=known)
    probe_cmd.add_argument("--timeout", type=float, default=5.0, help="seconds per attempt")
    probe_cmd.add_argument("--json", action="store_true", help="print the report as JSON")

    _gateway_cli.add_parser(commands, _versions, _size, _compression, known)
    return parser


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed, else asyncio's own."""
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for `gateway --workers`
    runner = {"serve": _serve, "connect": _connect, "probe": _probe, "gateway": _gateway_cli.run}[args.command]
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as loop_runner:
            return loop_runner.run(runner(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
