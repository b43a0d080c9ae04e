"""A small Starlette application that tests/interop/test_asgi.py serves with uvicorn and
`hybi.asgi:UvicornWebSocketProtocol`. It knows nothing of hybi but the `hybi` scope
extension (the version) and `hybi.UnsupportedFeature`, which it catches to report.

- `GET /`: a plain HTTP page; `GET /log`: what the WebSocket endpoints saw, as JSON, each
  entry under the `tag` its client gave in the query string;
- `/echo`: echoes each message as it came (text as text, binary as binary, or a note where
  the version has no binary messages); "close-me" makes it close; it accepts the
  subprotocol "chat" when offered;
- `/guarded?token=...`: "let-me-in" is accepted; "close" is refused with websocket.close
  (403); anything else gets the application's own 401 with a body;
- `/closing`: sends "bye" and closes with 4001 "done here";
- `/scope/...`: sends the scope as JSON and closes;
- `/binary`: tries a binary message and says what happened;
- `/crash`: accepts, then raises;
- `/raw/...`: a plain ASGI application breaking the ASGI rules on purpose, and recording
  what the server raised.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

import hybi

LOG: list[dict[str, Any]] = []


async def homepage(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello over plain HTTP\n")


async def log(request: Request) -> JSONResponse:
    return JSONResponse(LOG)


def version_of(websocket: WebSocket) -> Any:
    return websocket.scope["extensions"]["hybi"]["version"]


async def echo(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol="chat" if "chat" in websocket.scope["subprotocols"] else None)
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            LOG.append({"tag": websocket.query_params.get("tag"), "version": version_of(websocket), **message})
            return
        text, data = message.get("text"), message.get("bytes")
        if text == "close-me":
            await websocket.close()
            LOG.append({"tag": websocket.query_params.get("tag"), "version": version_of(websocket), "closed": True})
            return
        if text is not None:
            await websocket.send_text(text)
        else:
            try:
                await websocket.send_bytes(data or b"")
            except hybi.UnsupportedFeature as error:
                await websocket.send_text(f"unsupported: {error}")


async def guarded(websocket: WebSocket) -> None:
    token = websocket.query_params.get("token")
    if token == "close":
        await websocket.close()
        return
    if token != "let-me-in":
        response = PlainTextResponse("a token is required\n", status_code=401, headers={"WWW-Authenticate": "Token"})
        await websocket.send_denial_response(response)
        return
    await websocket.accept()
    await websocket.send_text("welcome")
    await websocket.close()


async def closing(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("bye")
    await websocket.close(code=4001, reason="done here")


async def scope(websocket: WebSocket) -> None:
    await websocket.accept()
    fields = ("type", "asgi", "http_version", "scheme", "server", "client", "root_path", "path", "subprotocols")
    described = {name: websocket.scope.get(name) for name in fields}
    described["raw_path"] = websocket.scope["raw_path"].decode("latin-1")
    described["query_string"] = websocket.scope["query_string"].decode("latin-1")
    described["headers"] = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in websocket.scope["headers"]]
    described["extensions"] = websocket.scope["extensions"]
    await websocket.send_text(json.dumps(described))
    await websocket.close()


async def binary(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        await websocket.send_bytes(b"\x00\x01\x02")
    except hybi.UnsupportedFeature as error:
        await websocket.send_text(f"{type(error).__name__}: {error}")
    await websocket.close()


async def crash(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("about to fail")
    raise RuntimeError("this endpoint fails on purpose")


Message = MutableMapping[str, Any]


async def raw(
    scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    """Breaks the ASGI rules and records what the server raised for each."""
    if scope["type"] != "websocket":
        return
    path = scope["path"]
    assert (await receive())["type"] == "websocket.connect"
    if path.endswith("/no-decision"):
        return  # neither accepts nor refuses: the server answers 500
    if path.endswith("/undecided"):
        LOG.append({"tag": path, "seen": ["deciding"]})
        await receive()  # still deciding when uvicorn shuts down: the server answers 503
        return
    seen: list[str] = []

    async def attempt(message: Message) -> None:
        try:
            await send(message)
        except Exception as error:
            bases = [cls.__name__ for cls in type(error).__mro__ if cls in (OSError, RuntimeError, ValueError)]
            seen.append(f"{message['type']}: {type(error).__name__} ({', '.join(bases)})")
        else:
            seen.append(f"{message['type']}: ok")

    if path.endswith("/after-close"):
        await attempt({"type": "websocket.accept"})
        await attempt({"type": "websocket.close", "code": 4003})
        await attempt({"type": "websocket.send", "text": "too late"})
        await attempt({"type": "websocket.close"})
    elif path.endswith("/after-disconnect"):
        await attempt({"type": "websocket.accept"})
        event = await receive()
        seen.append(f"received {event['type']} {event.get('code')}")
        await attempt({"type": "websocket.send", "text": "nobody is there"})
    elif path.endswith("/bad-accept"):
        await attempt({"type": "websocket.accept", "subprotocol": "not-offered"})
        await attempt({"type": "websocket.accept", "headers": [(b"sec-websocket-protocol", b"chat")]})
        await attempt({"type": "websocket.accept", "headers": [(b"x-bad", b"a\r\nb")]})
        await attempt({"type": "websocket.send", "text": "not accepted yet"})
        await attempt({"type": "websocket.accept", "headers": [(b"x-hello", b"world")]})
        await attempt({"type": "websocket.send", "text": "accepted"})
        await attempt({"type": "websocket.send"})
        await attempt({"type": "websocket.close", "code": 1006})
        await attempt({"type": "websocket.close", "code": 4004, "reason": "checked"})
    LOG.append({"tag": path, "seen": seen})


app = Starlette(
    routes=[
        Route("/", homepage),
        Route("/log", log),
        WebSocketRoute("/echo", echo),
        WebSocketRoute("/guarded", guarded),
        WebSocketRoute("/closing", closing),
        WebSocketRoute("/scope/{rest:path}", scope),
        WebSocketRoute("/binary", binary),
        WebSocketRoute("/crash", crash),
        Mount("/raw", app=raw),
    ]
)
