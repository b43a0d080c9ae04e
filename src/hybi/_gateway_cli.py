"""`hybi gateway`: the command line of `hybi.gateway`, with `--workers` processes sharing
the listening port (SO_REUSEPORT)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

from hybi.gateway import parse_route, serve
from hybi.sansio.bridge import BinaryRule
from hybi.sansio.connection import DEFAULT_MAX_SIZE
from hybi.sansio.deflate import CompressionSetting
from hybi.sansio.dialects import DEFAULT_VERSIONS
from hybi.sansio.uri import parse_uri

__all__ = ["add_parser", "run"]

_WORKER_ENV = "HYBI_GATEWAY_WORKER"


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: use HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def _uri(text: str) -> str:
    try:
        parse_uri(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _route(text: str) -> str:
    try:
        parse_route(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def add_parser(
    commands: Any,
    versions: Callable[[str], tuple[str, ...]],
    size: Callable[[str], int | None],
    compression: Callable[[str], CompressionSetting],
    known: str,
) -> None:
    """Add `gateway` to the `hybi` command's subcommands (the shared option types passed in)."""
    cmd = commands.add_parser(
        "gateway",
        help="a reverse proxy that lets clients and upstream servers of different versions talk",
        description="Accept WebSocket clients in any version and open, for each, an upstream "
        "connection in whichever version the upstream speaks (RFC 6455 section 4.4).",
    )
    cmd.add_argument("--listen", type=_listen, default=("127.0.0.1", 8080), help="HOST:PORT (default 127.0.0.1:8080)")
    cmd.add_argument("--upstream", type=_uri, help="ws:// or wss:// URL every request goes to")
    cmd.add_argument(
        "--route", type=_route, action="append", default=[], help="/PREFIX=URL: requests under /PREFIX go to URL"
    )
    cmd.add_argument("--versions", type=versions, default=DEFAULT_VERSIONS, help=f"accepted from clients; {known}")
    cmd.add_argument("--upstream-versions", type=versions, default="all", help=f"offered upstream; {known}")
    cmd.add_argument(
        "--origin",
        default="keep",
        help="Origin sent upstream: keep (the client's), upstream (the upstream's own), none, or a value",
    )
    cmd.add_argument("--allow-origin", action="append", help="accept clients with this Origin only (repeatable)")
    cmd.add_argument(
        "--binary",
        choices=[rule.value for rule in BinaryRule],
        default="refuse",
        help="binary messages towards a text-only (hixie) side: refuse (close with 1003), drop, or base64",
    )
    cmd.add_argument("--max-per-address", type=int, help="connections at once from one client address (429 past it)")
    cmd.add_argument(
        "--max-size", type=size, default=DEFAULT_MAX_SIZE, help="largest message, in bytes (default 1 MiB)"
    )
    cmd.add_argument("--max-queue", type=int, default=8, help="messages held per direction before reading pauses")
    cmd.add_argument("--compression", type=compression, default=True, help="towards clients: on, off or a preset")
    cmd.add_argument("--upstream-compression", type=compression, default=True, help="towards the upstream")
    cmd.add_argument("--public-scheme", choices=["ws", "wss"], help="wss when a TLS terminator sits in front")
    cmd.add_argument("--open-timeout", type=float, default=10.0, help="seconds the upstream may take to accept")
    cmd.add_argument(
        "--ping-interval", type=float, default=20.0, help="keepalive on each side that has pings (0: none)"
    )
    cmd.add_argument("--idle-timeout", type=float, help="close (1001) a side silent for this long (hixie has no ping)")
    cmd.add_argument("--drain-timeout", type=float, default=10.0, help="seconds SIGTERM waits for closes (default 10)")
    cmd.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default="warning", help="on standard error"
    )
    cmd.add_argument("--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)")
    cmd.add_argument("--reuse-port", action="store_true", help="set SO_REUSEPORT (implied by --workers)")


def _say(message: str) -> None:
    print(f"hybi: {message}", file=sys.stderr, flush=True)


async def run(args: argparse.Namespace) -> int:
    if args.upstream is None and not args.route:
        _say("gateway: give --upstream URL or at least one --route /PREFIX=URL")
        return 2
    if args.workers > 1 and not os.environ.get(_WORKER_ENV):
        return await _supervise(args)
    return await _serve(args)


async def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    host, port = args.listen
    origin = None if args.origin == "none" else args.origin
    try:
        context = serve(
            args.upstream,
            host,
            port,
            routes=args.route,
            versions=args.versions,
            upstream_versions=args.upstream_versions,
            origin=origin,
            origins=args.allow_origin,
            binary=args.binary,
            max_per_address=args.max_per_address,
            max_size=args.max_size,
            max_queue=args.max_queue,
            compression=args.compression,
            upstream_compression=args.upstream_compression,
            public_scheme=args.public_scheme,
            open_timeout=args.open_timeout,
            ping_interval=args.ping_interval or None,
            idle_timeout=args.idle_timeout,
            reuse_port=args.reuse_port or args.workers > 1,
        )
        gw = await context.__aenter__()
    except OSError as error:
        _say(f"cannot listen on {host} port {port}: {error.strerror or error}")
        return 1
    shown = f"[{host}]" if ":" in host else host
    targets = [f"{route.prefix} -> {route.upstream.host_header}{route.upstream.resource}" for route in gw.routes]
    print(
        f"hybi: gateway on ws://{shown}:{gw.port}/ (pid {os.getpid()}), versions {', '.join(args.versions)}; "
        + "; ".join(targets),
        flush=True,
    )
    await stop.wait()
    _say(f"draining {len(gw.pairs)} connection pair(s) with 1001, at most {args.drain_timeout:g} s")
    gw.close()
    await gw.wait_closed(args.drain_timeout)
    return 0


async def _supervise(args: argparse.Namespace) -> int:
    """Start `--workers` processes of the same command, each listening with SO_REUSEPORT;
    pass SIGTERM and SIGINT on to them and wait for them all."""
    argv: Sequence[str] = args.argv
    env = {**os.environ, _WORKER_ENV: "1"}
    workers = [subprocess.Popen([sys.executable, "-m", "hybi", *argv], env=env) for _ in range(args.workers)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    codes: list[int] = []

    async def wait_all() -> None:
        codes.extend(await asyncio.gather(*(asyncio.to_thread(worker.wait) for worker in workers)))
        stop.set()

    waiting = asyncio.ensure_future(wait_all())
    await stop.wait()
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    await waiting
    return max(codes, default=0)
