"""The `hybi` command: `hybi serve`, `hybi connect URL`, `hybi probe URL`, `hybi gateway`.

Each command is one `_add_<command>_command` function that declares its options and names
the coroutine that runs it (`run`); `main` runs whichever was chosen. Exit status: 0 when
all went well (for `connect`, a normal close), 1 on a failure, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import inspect
import json
import logging
import os
import signal
import ssl
import stat
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TextIO

from hybi import _gateway_cli
from hybi._logging import HANDSHAKE_FAILED
from hybi._probe import format_probe, probe
from hybi._serve_page import ServeSite
from hybi._version import __version__
from hybi.aio.client import ClientConnection, connect
from hybi.aio.server import Handler, ServerConnection, serve
from hybi.exceptions import (
    ConnectionClosed,
    HandshakeError,
    HybiError,
    InvalidProxy,
    NoCommonVersion,
    ProxyError,
)
from hybi.sansio.connection import DEFAULT_MAX_SIZE
from hybi.sansio.deflate import PRESETS, CompressionSetting
from hybi.sansio.dialects import ALL_VERSIONS, DEFAULT_VERSIONS, resolve_versions
from hybi.sansio.uri import parse_uri

__all__ = ["main", "probe"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command line that cannot be carried out as given (exit status 2)."""


# -- option types shared by the commands ---------------------------------------------------


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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("give a number of seconds above 0")
    return value


COMPRESSION_HELP = (
    "permessage-deflate (and deflate-frame in the drafts that have it): on (the balanced preset, the default), "
    "off, or one of the presets " + ", ".join(PRESETS)
)


def _compression(text: str) -> CompressionSetting:
    """--compression: on, off, or a preset's name."""
    if text in ("on", "yes", "true"):
        return True
    if text in ("off", "no", "false"):
        return None
    if text not in PRESETS:
        raise argparse.ArgumentTypeError(f"{text!r}: use on, off or one of {', '.join(PRESETS)}")
    return text  # type: ignore[return-value]


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or name != name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: write a header as 'Name: value'")
    return name, value.strip()


MAX_SIZE_HELP = "largest message accepted, in bytes (default 1 MiB; 0 for no limit); a larger one closes with 1009"
VERSIONS_HELP = f"comma-separated, most preferred first; known: {', '.join(ALL_VERSIONS)}, or 'all'"


def _say(message: str) -> None:
    print(f"hybi: {message}", file=sys.stderr, flush=True)


# -- hybi serve ----------------------------------------------------------------------------


async def _echo(connection: ServerConnection) -> None:
    async for message in connection:
        await connection.send(message)


def _load_handler(spec: str) -> Handler:
    """`module:function` (the function may be dotted: `module:object.method`), imported
    with the current directory first on sys.path, as uvicorn does for `module:app`."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise UsageError(f"{spec!r}: give the handler as module:function")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or whatever the module raised while loading
        raise UsageError(f"cannot import {module_name!r}: {type(error).__name__}: {error}") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageError(f"module {module_name!r} has no {attribute!r}") from None
    if not callable(target):
        raise UsageError(f"{spec!r} is not a function")
    function: Callable[[ServerConnection], Any] = target

    async def handler(connection: ServerConnection) -> None:
        result = function(connection)
        if inspect.isawaitable(result):
            await result

    return handler


def _server_tls(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if cert is None:
        if key is not None:
            raise UsageError("--key needs --cert")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise UsageError(f"cannot load the certificate {cert}{f' and key {key}' if key else ''}: {error}") from None
    return context


def _not_a_refusal_record(record: logging.LogRecord) -> bool:
    """False for the library's INFO record of a failed handshake; errors always pass."""
    return not (record.levelno == logging.INFO and str(record.msg).endswith(HANDSHAKE_FAILED))


def _setup_logging(level: str) -> None:
    """hybi's records on standard error: one line per connection at INFO, the traffic at DEBUG.

    Above DEBUG, the library's own record of a refused handshake is left out: the line
    logged for the connection says it already, with what was asked and what is accepted."""
    handler = logging.StreamHandler(sys.stderr)
    if level != "debug":
        handler.addFilter(_not_a_refusal_record)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger("hybi")
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False


async def _serve(args: argparse.Namespace) -> int:
    _setup_logging(args.log_level)
    handler = _echo if args.app is None else _load_handler(args.app)
    tls = _server_tls(args.cert, args.key)
    origins: list[str | None] | None = None
    if args.origin:
        origins = [None if origin.lower() == "none" else origin for origin in args.origin]
    host = args.host if ":" not in args.host else f"[{args.host}]"
    scheme = "wss" if tls else "ws"
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    probe_tls = None
    if tls is not None:
        probe_tls = ssl.create_default_context()
        probe_tls.check_hostname = False
        probe_tls.verify_mode = ssl.CERT_NONE  # its own certificate, whatever signed it
    site = ServeSite(resolve_versions(args.versions), subprotocols=args.subprotocol or (), probe_ssl=probe_tls)
    try:
        server_context = serve(
            handler,
            args.host,
            args.port,
            versions=args.versions,
            process_request=site.process_request,
            max_size=args.max_size,
            compression=args.compression,
            subprotocols=args.subprotocol or (),
            origins=origins,
            ssl=tls,
        )
        server = await server_context.__aenter__()
    except OSError as error:
        _say(f"cannot listen on {args.host} port {args.port}: {error.strerror or error}")
        return EXIT_FAILURE
    try:
        own = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(args.host, host)
        site.probe_url = f"{scheme}://{own}:{server.port}/"  # the port is known now (--port 0)
        what = "an echo server" if args.app is None else args.app
        print(
            f"hybi: serving {what}, WebSocket versions {', '.join(args.versions)}, on {scheme}://{host}:{server.port}/",
            flush=True,
        )
        web = "https" if tls else "http"
        print(f"hybi: open {web}://{host}:{server.port}/ in a browser to try it; Ctrl-C to stop", flush=True)
        await stop.wait()
        _say(f"shutting down, closing {len(server.connections)} connection(s) with 1001")
    finally:
        await server_context.__aexit__(None, None, None)
    return EXIT_OK


def _add_serve_command(commands: Any) -> None:
    command = commands.add_parser(
        "serve",
        help="run a WebSocket server (an echo server by default) with a page at /",
        description=(
            "Serve WebSockets of the given versions: the echo server, or the handler given as module:function. "
            "A browser opening / gets a page that shows the version negotiation; each connection is logged "
            "on standard error when it ends."
        ),
    )
    command.add_argument(
        "app",
        nargs="?",
        metavar="MODULE:FUNCTION",
        help="the handler: an async function taking the connection (imported with the current directory on "
        "sys.path); default: echo every message back",
    )
    command.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    command.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0 picks a free one)")
    command.add_argument(
        "--versions", type=_versions, default=DEFAULT_VERSIONS, help=VERSIONS_HELP + " (default 13,8,7)"
    )
    command.add_argument("--max-size", type=_size, default=DEFAULT_MAX_SIZE, metavar="BYTES", help=MAX_SIZE_HELP)
    command.add_argument("--compression", type=_compression, default=True, metavar="MODE", help=COMPRESSION_HELP)
    command.add_argument(
        "-s", "--subprotocol", action="append", help="a subprotocol spoken, most preferred first (repeatable)"
    )
    command.add_argument(
        "--origin",
        action="append",
        help="accept only this Origin (repeatable; 'none' admits requests without one); others get 403",
    )
    command.add_argument("--cert", help="serve wss:// with this certificate chain (PEM)")
    command.add_argument("--key", help="the certificate's private key (PEM), if not in --cert's file")
    command.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="info (default): a line per connection; debug: every message too",
    )
    command.set_defaults(run=_serve)


# -- hybi connect: what it prints ----------------------------------------------------------

_RESET = "\x1b[0m"
_COLOURS = {"received": "\x1b[32m", "info": "\x1b[2m", "error": "\x1b[31m"}


def _colour_for(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _attempts(attempts: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {"version": attempt.version, "status": attempt.status, "listed": list(attempt.server_versions)}
        for attempt in attempts
    ]


class _Output:
    """Where `hybi connect` writes: messages on standard output (as they are, or as JSON
    events with --json), notes on standard error; in interactive mode, around the prompt."""

    def __init__(self, *, json_events: bool, binary: str | None, interactive: bool) -> None:
        self.json = json_events
        self.binary = binary or "hex"
        self.interactive = interactive
        self.colour = interactive and _colour_for(sys.stdout)
        self.prompt = ""

    def _paint(self, kind: str, text: str) -> str:
        return f"{_COLOURS[kind]}{text}{_RESET}" if self.colour else text

    def _write(self, stream: TextIO, text: str) -> None:
        if self.interactive and self.prompt:
            # Above the line being typed: clear it, write, then show the prompt and the typing again.
            import readline  # noqa: PLC0415 - only in interactive mode

            stream.write(f"\r\x1b[2K{text}\n")
            stream.flush()
            sys.stdout.write(self.prompt + readline.get_line_buffer())
            sys.stdout.flush()
        else:
            stream.write(text + "\n")
            stream.flush()

    def event(self, **fields: Any) -> None:
        self._write(sys.stdout, json.dumps(fields, ensure_ascii=False))

    def note(self, text: str, kind: str = "info") -> None:
        self._write(sys.stderr, self._paint(kind, f"hybi: {text}"))

    def encode(self, data: bytes) -> str:
        return base64.b64encode(data).decode() if self.binary == "base64" else data.hex()

    def message(self, message: str | bytes) -> None:
        if self.json:
            text = isinstance(message, str)
            data = message if isinstance(message, str) else self.encode(message)
            extra = {} if text else {"encoding": self.binary}
            self.event(event="message", type="text" if text else "binary", data=data, **extra)
        elif self.interactive:
            shown = message if isinstance(message, str) else f"[binary, {len(message)} bytes] {self.encode(message)}"
            self._write(sys.stdout, self._paint("received", f"< {shown}"))
        else:
            self._write(sys.stdout, message if isinstance(message, str) else self.encode(message))

    def opened(self, url: str, connection: ClientConnection) -> None:
        extensions = connection.response_headers.get_all("Sec-WebSocket-Extensions")
        if self.json:
            self.event(
                event="open",
                url=url,
                version=connection.dialect.name if connection.dialect else None,
                subprotocol=connection.subprotocol,
                extensions=extensions,
                attempts=_attempts(connection.handshake_attempts),
            )
        text = f"connected with version {connection.dialect.name if connection.dialect else '?'}"
        for attempt in connection.handshake_attempts[:-1]:
            listed = ", ".join(map(str, attempt.server_versions)) or "none"
            text += f" (after version {attempt.version} was refused with {attempt.status}; server listed {listed})"
        if connection.subprotocol:
            text += f", subprotocol {connection.subprotocol}"
        if extensions:
            text += f", extensions {', '.join(extensions)}"
        self.note(text)

    def failed(self, text: str, attempts: Sequence[Any] = ()) -> None:
        if self.json:
            self.event(event="error", error=text, attempts=_attempts(attempts))
        self.note(f"handshake failed: {text}", "error")

    def pong(self, rtt: float) -> None:
        if self.json:
            self.event(event="pong", rtt=round(rtt, 6))
        else:
            self.note(f"pong after {rtt * 1000:.2f} ms")

    def closed(self, ending: ConnectionClosed, clean: bool) -> None:
        """The peer's close code and reason (1005: it gave none; 1006: no close frame came),
        and what this side sent if that was not a plain 1000."""
        sent = ending.sent_code if ending.sent_code not in (None, 1000, ending.code) else None
        if self.json:
            fields: dict[str, Any] = {"code": ending.code, "reason": ending.reason, "clean": clean}
            if sent is not None:
                fields.update(sent_code=sent, detail=ending.detail)
            self.event(event="close", **fields)
        text = f"closed with code {ending.code}{f' {ending.reason}' if ending.reason else ''}"
        if sent is not None:
            text += f" (this side closed with {sent}{f': {ending.detail}' if ending.detail else ''})"
        self.note(text, "info" if clean else "error")


# -- hybi connect: where lines come from ---------------------------------------------------


async def _input_lines(output: _Output, queue: asyncio.Queue[str | None]) -> None:
    """Put the lines of standard input in `queue`, then None. A terminal (interactive mode)
    is read with readline in a thread of its own; pipes without blocking; a file or
    /dev/null whole."""
    loop = asyncio.get_running_loop()
    if output.interactive:
        output.prompt = "> "

        def read_terminal() -> None:
            import readline  # noqa: F401, PLC0415 - line editing and history for input()

            while True:
                try:
                    line: str | None = input(output.prompt)
                except (EOFError, OSError, ValueError):
                    line = None
                loop.call_soon_threadsafe(queue.put_nowait, line)
                if line is None:
                    return

        # A daemon thread: input() cannot be interrupted, and the process must not wait for it.
        threading.Thread(target=read_terminal, name="hybi-input", daemon=True).start()
        return
    mode = os.fstat(sys.stdin.fileno()).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or sys.stdin.isatty()):
        # A file, or a device such as /dev/null, which the event loop cannot watch: read it whole.
        for line in sys.stdin.read().splitlines():
            queue.put_nowait(line)
        queue.put_nowait(None)
        return
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def pump() -> None:
        while line := await reader.readline():
            await queue.put(line.decode("utf-8", "replace").rstrip("\r\n"))
        await queue.put(None)

    _background.add(loop.create_task(pump()))


_background: set[asyncio.Task[None]] = set()


def _decode_line(line: str, encoding: str | None) -> str | bytes:
    """A line of input as the message to send: text, or with --binary the bytes it encodes."""
    if encoding is None:
        return line
    if encoding == "hex":
        return bytes.fromhex(line)
    return base64.b64decode(line.strip(), validate=True)


# -- hybi connect: the options -------------------------------------------------------------


def _client_tls(args: argparse.Namespace, secure: bool) -> ssl.SSLContext | None:
    """The TLS context --insecure, --cafile, --cert and --key ask for (None: the default)."""
    if not (args.insecure or args.cafile or args.cert or args.key):
        return None
    if not secure:
        raise UsageError("--insecure, --cafile, --cert and --key are for wss:// URLs")
    if args.key and not args.cert:
        raise UsageError("--key needs --cert")
    try:
        context = ssl.create_default_context(cafile=args.cafile)
        if args.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if args.cert:
            context.load_cert_chain(args.cert, args.key)
    except (OSError, ssl.SSLError) as error:
        raise UsageError(f"cannot load the TLS files: {error}") from None
    return context


def _proxy(url: str | None) -> dict[str, Any]:
    """--proxy, passed on to connect() as `proxy=`: a URL, `none` to connect directly, or
    (without the option) the environment's proxy, as the library does by default."""
    if url is None:
        return {}
    if url.lower() == "none":
        return {"proxy": None}
    return {"proxy": url}


def _connect_options(args: argparse.Namespace) -> dict[str, Any]:
    try:
        uri = parse_uri(args.url)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return {
        "versions": args.versions,
        "subprotocols": args.subprotocol or (),
        "origin": args.origin,
        "additional_headers": args.header or None,
        "ssl": _client_tls(args, uri.secure),
        "ping_interval": None,
        "open_timeout": args.open_timeout,
        "max_size": args.max_size,
        "compression": args.compression,
        **_proxy(args.proxy),
    }


# -- hybi connect --------------------------------------------------------------------------


async def _pinger(connection: ClientConnection, every: float, output: _Output) -> None:
    """--ping: a ping every `every` seconds, and its round trip when the pong comes."""
    while True:
        await asyncio.sleep(every)
        try:
            waiter = await connection.ping()
            rtt = await waiter
        except ConnectionClosed:
            return
        except HybiError as error:  # the hixie drafts have no pings
            output.note(f"cannot ping: {error}", "error")
            return
        output.pong(rtt)


async def _converse(connection: ClientConnection, args: argparse.Namespace, output: _Output) -> None:
    """Send each input line until input ends (then close with 1000) or the server closes
    (noticed at once, not when the next line comes)."""
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lines.put_nowait, None)  # Ctrl-C: close normally
    await _input_lines(output, lines)

    sent = received = 0
    caught_up = asyncio.Event()  # as many messages have come as lines were sent

    async def receive() -> None:
        nonlocal received
        try:
            async for message in connection:
                output.message(message)
                received += 1
                if received >= sent:
                    caught_up.set()
        except ConnectionClosed:
            pass  # its code is reported below, once

    receiver = asyncio.create_task(receive())
    tasks = [asyncio.create_task(_pinger(connection, args.ping, output))] if args.ping else []
    number = 0
    try:
        while True:
            next_line = asyncio.ensure_future(lines.get())
            await asyncio.wait({next_line, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if not next_line.done():
                next_line.cancel()
                break
            line = next_line.result()
            if line is None:
                # Input is over: wait for replies still in flight (until as many messages have
                # come as were sent, for at most --linger seconds), then close.
                if received < sent:
                    caught_up.clear()
                    waiter = asyncio.ensure_future(caught_up.wait())
                    await asyncio.wait({receiver, waiter}, timeout=args.linger, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                await connection.close(1000)
                break
            number += 1
            try:
                message = _decode_line(line, args.binary)
            except ValueError as error:
                output.note(f"line {number} is not {args.binary} ({error}); not sent", "error")
                continue
            sent += 1
            await connection.send(message)
    except ConnectionClosed:
        pass
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        for task in tasks:
            task.cancel()
    await connection.wait_closed()
    await receiver


async def _connect(args: argparse.Namespace) -> int:
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not args.json
    output = _Output(json_events=args.json, binary=args.binary, interactive=interactive)
    options = _connect_options(args)
    try:
        connection = await connect(args.url, **options)
    except TimeoutError:
        output.failed(f"no answer within {args.open_timeout:g} s (--open-timeout)")
        return EXIT_FAILURE
    except NoCommonVersion as error:
        output.failed(str(error), error.attempts)
        return EXIT_FAILURE
    except InvalidProxy as error:
        raise UsageError(f"--proxy: {error}") from None
    except (HandshakeError, ProxyError, OSError) as error:
        output.failed(str(error) or type(error).__name__)
        return EXIT_FAILURE
    output.opened(args.url, connection)
    terminal = _save_terminal() if interactive else None
    try:
        await _converse(connection, args, output)
    finally:
        output.prompt = ""
        if terminal is not None:
            terminal()
    try:
        await connection.recv()  # every message was shown: this raises how the connection ended
    except ConnectionClosed as closed:
        ending = closed
    else:
        ending = ConnectionClosed(connection.close_code or 1006, connection.close_reason or "")
    clean = ending.code in (1000, 1001, 1005)
    output.closed(ending, clean)
    return EXIT_OK if clean else EXIT_FAILURE


def _save_terminal() -> Callable[[], None] | None:
    """The terminal's settings now, to put back however the reading thread was left."""
    try:
        import termios  # noqa: PLC0415 - POSIX only

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
    except (ImportError, OSError):
        return None

    def restore() -> None:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        sys.stdout.write("\r\x1b[2K")  # the prompt left on the last line
        sys.stdout.flush()

    return restore


def _add_connect_command(commands: Any) -> None:
    command = commands.add_parser(
        "connect",
        help="send standard input line by line, print what comes back",
        description=(
            "Connect to a WebSocket server and send each line of standard input as a message; print each message "
            "received on standard output and notes on standard error. From a terminal, an interactive prompt. "
            "Exit status: 0 after a normal close (1000, 1001 or no code), 1 on a failure or another close code, "
            "2 on a usage error."
        ),
    )
    command.add_argument("url", help="ws:// or wss:// URL")
    command.add_argument(
        "--versions", type=_versions, default=DEFAULT_VERSIONS, help=VERSIONS_HELP + " (default 13,8,7)"
    )
    command.add_argument(
        "-H", "--header", type=_header, action="append", help="add a header to the request, 'Name: value' (repeatable)"
    )
    command.add_argument("-s", "--subprotocol", action="append", help="offer this subprotocol (repeatable, in order)")
    command.add_argument("--origin", help="send this origin (Origin, or Sec-WebSocket-Origin in versions 7 and 8)")
    command.add_argument(
        "--binary",
        choices=("hex", "base64"),
        help="send each input line decoded from hex or base64 as a binary message, and print binary messages "
        "received in that encoding (without it: lines are sent as text, binary messages are printed in hex)",
    )
    command.add_argument("--ping", type=_seconds, metavar="SECONDS", help="send a ping this often and print its rtt")
    command.add_argument(
        "--json", action="store_true", help="print one JSON object per line per event: open, message, pong, close"
    )
    command.add_argument("--max-size", type=_size, default=DEFAULT_MAX_SIZE, metavar="BYTES", help=MAX_SIZE_HELP)
    command.add_argument("--compression", type=_compression, default=True, metavar="MODE", help=COMPRESSION_HELP)
    command.add_argument("--insecure", action="store_true", help="wss://: do not check the server's certificate")
    command.add_argument("--cafile", help="wss://: trust the certificates in this PEM file")
    command.add_argument("--cert", help="wss://: present this client certificate (PEM)")
    command.add_argument("--key", help="wss://: the client certificate's private key, if not in --cert's file")
    command.add_argument(
        "--proxy",
        metavar="URL",
        help="connect through this proxy (http://, https://, socks5://, socks5h://, socks4://, socks4a://), "
        "or 'none' to connect directly; by default the environment's (WSS_PROXY, HTTPS_PROXY, ALL_PROXY, ...)",
    )
    command.add_argument(
        "--linger",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="once input ends, wait at most this long for replies, until as many messages have come as lines "
        "were sent (default 2)",
    )
    command.add_argument(
        "--open-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds the opening handshake may take (default 10)",
    )
    command.set_defaults(run=_connect)


# -- hybi probe ----------------------------------------------------------------------------


async def _probe(args: argparse.Namespace) -> int:
    try:
        parse_uri(args.url)
    except ValueError as error:
        raise UsageError(str(error)) from None
    tls = None
    if args.insecure:
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    report = await probe(args.url, args.versions, args.timeout, ssl=tls)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(format_probe(report)))
    reachable = any(r["result"] != "error" for r in report["versions"].values())
    return EXIT_OK if reachable else EXIT_FAILURE


def _add_probe_command(commands: Any) -> None:
    command = commands.add_parser(
        "probe",
        help="report which versions a server accepts",
        description=(
            "Ask the server for each version in turn, one connection each, offering compression, and report its "
            "answers: the versions it accepted with a real 101 and the extensions each agreed to, and the "
            "versions it listed when refusing one (RFC 6455 section 4.4). Exit status 1 when no attempt got an answer."
        ),
    )
    command.add_argument("url", help="ws:// or wss:// URL")
    command.add_argument("--versions", type=_versions, default=ALL_VERSIONS, help=VERSIONS_HELP + " (default all)")
    command.add_argument(
        "--timeout", type=float, default=5.0, metavar="SECONDS", help="seconds per attempt (default 5)"
    )
    command.add_argument("--insecure", action="store_true", help="wss://: do not check the server's certificate")
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.set_defaults(run=_probe)


# -- entry point ---------------------------------------------------------------------------


def _add_gateway_command(commands: Any) -> None:
    _gateway_cli.add_parser(commands, _versions, _size, _compression, VERSIONS_HELP)
    commands.choices["gateway"].set_defaults(run=_gateway_cli.run)


COMMANDS: list[Callable[[Any], None]] = [
    _add_serve_command,
    _add_connect_command,
    _add_probe_command,
    _add_gateway_command,
]
"""Each adds one subcommand to the parser, with `run` set to the coroutine that runs it."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybi",
        description="WebSocket server, client and prober for every version of the protocol.",
        epilog="Exit status: 0 success, 1 failure, 2 usage error. 'hybi COMMAND --help' describes each command.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"hybi {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    return parser


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed, else asyncio's own."""
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for `gateway --workers`
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, int]] = args.run
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as loop_runner:
            return loop_runner.run(run(args))
    except UsageError as error:
        parser.exit(EXIT_USAGE, f"hybi {args.command}: error: {error}\n")
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
