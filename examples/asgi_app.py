"""A Starlette application served by uvicorn, with hybi speaking its WebSockets.

    pip install uvicorn starlette
Usage: python examples/asgi_app.py [--host 127.0.0.1] [--port 8000] [--versions 13,8,7]

The same application runs from the command line with

    HYBI_ASGI_VERSIONS=all uvicorn examples.asgi_app:app \\
        --ws hybi.asgi:UvicornWebSocketProtocol --http hybi.asgi:UvicornHTTPProtocol

The application knows nothing of hybi: it is plain Starlette. Only the scope's `hybi`
extension tells it which version the client speaks.
"""

import argparse
import os

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


async def homepage(request: Request) -> PlainTextResponse:
    return PlainTextResponse("WebSocket echo at /echo\n")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    version = websocket.scope["extensions"]["hybi"]["version"]  # 13, 8, ..., "hixie-76"
    await websocket.send_text(f"hello, you speak {version}")
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


app = Starlette(routes=[Route("/", homepage), WebSocketRoute("/echo", echo)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--versions", default="13,8,7", help='as `hybi serve --versions`, e.g. "all"')
    args = parser.parse_args()
    os.environ["HYBI_ASGI_VERSIONS"] = args.versions  # read by hybi.asgi
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ws="hybi.asgi:UvicornWebSocketProtocol",
        # Needed for hixie-76 only, and only with the httptools parser: it keeps the 8
        # bytes that follow that draft's request head, which httptools would drop.
        http="hybi.asgi:UvicornHTTPProtocol",
    )
