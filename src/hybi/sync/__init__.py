"""A threaded API on plain sockets, with the options, defaults, errors and versions of the
asyncio one: a pump over the same sans-I/O core.

```python
from hybi.sync import connect, serve

with connect("ws://127.0.0.1:8765/", versions=(8, 13)) as ws:
    ws.send("hi")
    print(ws.recv(timeout=5), ws.version)
```
"""

from hybi.sync.broadcast import broadcast
from hybi.sync.client import ClientConnection, connect
from hybi.sync.connection import Connection, Data, PongWaiter
from hybi.sync.server import Server, ServerConnection, ServerOptions, serve

__all__ = [
    "ClientConnection",
    "Connection",
    "Data",
    "PongWaiter",
    "Server",
    "ServerConnection",
    "ServerOptions",
    "broadcast",
    "connect",
    "serve",
]
