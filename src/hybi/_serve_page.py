"""What `hybi serve` adds around a handler: the page at /, its status and probe endpoints,
and one log line per connection.

- `GET /` (or /index.html): the page, where a browser connects and sees what it negotiated;
- `GET /_hybi/status`: JSON, the versions this server accepts and the connections it holds
  or has held (the last `HISTORY` that ended), refusals included;
- `GET /_hybi/probe`: JSON, `hybi probe` of this very server (the report and its lines);
- `GET /favicon.ico`: 204, nothing.

Only plain GETs are answered here; a WebSocket handshake to any path goes on as usual.
Every handshake request (not the page's own HTTP requests) gets one INFO line on
`hybi.server` when its connection ends: address, path, version, subprotocol, extensions,
duration and close code, or the refusal and why.
"""

from __future__ import annotations

import json
import logging
import ssl as ssl_module
import time
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from hybi._probe import format_probe, probe
from hybi.aio.server import ServerConnection
from hybi.exceptions import HandshakeRejected
from hybi.sansio.dialects import ALL_VERSIONS, DIALECTS, Dialect
from hybi.sansio.dialects.base import requested_version
from hybi.sansio.http import Headers, Request, Response

__all__ = ["HISTORY", "ServeSite", "asked_version"]

HISTORY = 50
"""Connections that ended which the status endpoint still shows."""

logger = logging.getLogger("hybi.server")


def asked_version(request: Request) -> str:
    """The version a request asks for, by the name hybi gives it, as written if hybi has
    none ("99"), "none" when the request names no version at all, or "no upgrade" when it
    is no WebSocket request."""
    if not request.headers.has_token("Upgrade", "websocket"):
        return "no upgrade"
    claimant = next((dialect for dialect in DIALECTS.values() if dialect.claims_request(request)), None)
    if claimant is not None:
        return claimant.name
    return requested_version(request) or "none"


def _address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address or "?")


def _json_response(data: object) -> Response:
    body = json.dumps(data).encode()
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
        ]
    )
    return Response(200, "OK", headers, body)


def page() -> bytes:
    return resources.files("hybi").joinpath("static/index.html").read_bytes()


def page_response() -> Response:
    body = page()
    headers = Headers(
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
        ]
    )
    return Response(200, "OK", headers, body)


@dataclass
class _Record:
    """One handshake request and, once it has ended, what became of it."""

    connection: ServerConnection | None
    remote: str
    path: str
    asked: str
    user_agent: str
    started: float = field(default_factory=time.time)
    ended: dict[str, Any] | None = None


class ServeSite:
    """The page, the endpoints and the connection log of one `hybi serve`.

    `process_request` is the server's hook: it answers the page's GETs and notes every
    handshake request, to log and list it when its connection ends.
    """

    def __init__(
        self,
        dialects: Sequence[Dialect],
        *,
        subprotocols: Sequence[str] = (),
        probe_url: str = "",
        probe_ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        self.dialects = tuple(dialects)
        self.subprotocols = tuple(subprotocols)
        self.probe_url = probe_url
        self.probe_ssl = probe_ssl
        self.live: dict[int, _Record] = {}
        self.history: deque[_Record] = deque(maxlen=HISTORY)

    # -- the server's hook ---------------------------------------------------------------

    def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | Coroutine[Any, Any, Response] | None:
        """The page's own plain GETs get their answer (the probe's once it has run); every
        other request is noted, and left to the handshake."""
        if request.method == "GET" and not request.headers.has_token("Upgrade", "websocket"):
            path = request.target.split("?", 1)[0]
            if path in ("/", "/index.html"):
                return page_response()
            if path == "/favicon.ico":
                return Response(204, "No Content", Headers([("Connection", "close")]))
            if path == "/_hybi/status":
                return _json_response(self.status())
            if path == "/_hybi/probe":
                return self._probe()
        self._note(connection, request)
        return None

    async def _probe(self) -> Response:
        report = await probe(self.probe_url, ALL_VERSIONS, 5.0, ssl=self.probe_ssl)
        return _json_response({"report": report, "text": format_probe(report)})

    def _note(self, connection: ServerConnection, request: Request) -> None:
        record = _Record(
            connection,
            _address(connection.remote_address),
            request.target,
            asked_version(request),
            request.headers.get("User-Agent") or "",
        )
        self.live[id(connection)] = record
        connection.connection_lost_waiter.add_done_callback(lambda _: self._ended(record))

    def _ended(self, record: _Record) -> None:
        connection = record.connection
        assert connection is not None
        record.ended = self._describe(record, connection)
        record.ended["duration"] = round(time.time() - record.started, 3)
        record.connection = None
        self.live.pop(id(connection), None)
        self.history.append(record)
        logger.info("[%s] %s", record.ended["id"], self.log_line(record.ended))

    # -- what is shown -------------------------------------------------------------------

    def _describe(self, record: _Record, connection: ServerConnection) -> dict[str, Any]:
        response = connection.response
        error = connection.protocol.handshake_error
        if isinstance(error, HandshakeRejected):
            response = error.response  # the refusal (426, 403, 400...) sent instead of a 101
        status = response.status if response is not None else None
        opened = status == 101 and connection.version is not None
        state = connection.state.value
        if not opened and state != "connecting":
            state = "refused" if status is not None else "failed"
        return {
            "id": str(connection.id)[:8],
            "remote": record.remote,
            "path": record.path,
            "asked": record.asked,
            "user_agent": record.user_agent,
            "state": state,
            "status": status,
            "refusal": self._refusal(response) if status is not None and not opened else "",
            "version": str(connection.dialect.name) if opened and connection.dialect is not None else None,
            "subprotocol": connection.subprotocol if opened else None,
            "extensions": connection.response_headers.get_all("Sec-WebSocket-Extensions") if opened else [],
            "close_code": connection.close_code if opened else None,
            "close_reason": connection.close_reason or "" if opened else "",
            "started": record.started,
            "duration": round(time.time() - record.started, 3),
        }

    @staticmethod
    def _refusal(response: Response | None) -> str:
        if response is None:
            return ""
        first = response.body.decode("utf-8", "replace").strip().splitlines()
        return first[0] if first else response.reason

    def log_line(self, entry: dict[str, Any]) -> str:
        """One connection, as the log shows it when it has ended."""
        if entry["state"] == "refused" and entry["status"] == 426:
            accepts = ", ".join(d.name for d in self.dialects)
            return f"426 to {entry['remote']} {entry['path']}: asked {entry['asked']}, accepts {accepts}"
        if entry["state"] == "refused":
            return f"{entry['status']} to {entry['remote']} {entry['path']}: {entry['refusal']}"
        if entry["state"] == "failed":
            return f"no handshake with {entry['remote']} {entry['path']}: the connection ended first"
        extensions = ", ".join(entry["extensions"]) or "none"
        reason = f" {entry['close_reason']}" if entry["close_reason"] else ""
        return (
            f"{entry['remote']} {entry['path']}: version {entry['version']}, "
            f"subprotocol {entry['subprotocol'] or 'none'}, extensions {extensions}, "
            f"{entry['duration']:.3f} s, closed with {entry['close_code']}{reason}"
        )

    def status(self) -> dict[str, Any]:
        """What GET /_hybi/status answers."""
        live = [
            self._describe(record, record.connection) for record in self.live.values() if record.connection is not None
        ]
        ended = [record.ended for record in self.history if record.ended is not None]
        return {
            "versions": [dialect.name for dialect in self.dialects],
            "listed": [dialect.listed_as for dialect in self.dialects if dialect.listed_as is not None],
            "subprotocols": list(self.subprotocols),
            "connections": live + ended[::-1],
        }
