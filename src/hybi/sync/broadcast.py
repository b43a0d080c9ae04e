"""Sending one message to many connections at once, from any thread."""

from __future__ import annotations

from collections.abc import Iterable

from hybi._broadcast import queue_broadcast
from hybi.sync.connection import Connection, Data

__all__ = ["broadcast"]


def broadcast(connections: Iterable[Connection], message: Data) -> int:
    """Send `message` to every connection that can take it now, without waiting; return how
    many were skipped.

    As `hybi.broadcast` on asyncio: the message is framed once per dialect in use (per
    connection where an extension such as compression keeps state of its own). A
    connection that is closed or closing, whose unwritten bytes are above the high-water
    mark (a slow reader: waiting for it would hold everyone up), or whose dialect cannot
    carry the message (binary to a hixie client) is skipped and counted; nothing is raised
    for it.
    """
    frames: dict[str, bytes] = {}
    skipped = 0
    for connection in connections:
        with connection._lock:
            if connection._can_write_now() and queue_broadcast(connection.protocol, message, frames):
                connection._flush()
                continue
        skipped += 1
    return skipped
