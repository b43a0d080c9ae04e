"""asyncio adapters over the sans-I/O core."""

from hybi.aio.broadcast import broadcast
from hybi.aio.client import ClientConnection, connect
from hybi.aio.connection import Connection, Data
from hybi.aio.server import Server, ServerConnection, serve

__all__ = ["ClientConnection", "Connection", "Data", "Server", "ServerConnection", "broadcast", "connect", "serve"]
