"""Sending one message to many connections at once."""

from __future__ import annotations

from collections.abc import Iterable

from hybi._broadcast import queue_broadcast
from hybi.aio.connection import Connection, Data

__all__ = ["broadcast"]


def broadcast(connections: Iterable[Connection], message: Data) -> int:
    """Send `message` to every connection that can take it now, without waiting; return how
    many were skipped.

    The message is framed once per dialect in use (per connection where an extension such
    as compression keeps state of its own). A connection that is closed or closing, whose
    write buffer is above its high-water mark (a slow reader: waiting for it would hold
    everyone up), or whose dialect cannot carry the message (binary to a hixie client) is
    skipped and counted; nothing is raised for it.
    """
    frames: dict[str, bytes] = {}
    skipped = 0
    for connection in connections:
        transport = connection.transport
        if (
            transport is None
            or transport.is_closing()
            or connection.writing_paused
            or not queue_broadcast(connection.protocol, message, frames)
        ):
            skipped += 1
            continue
        connection.flush()
    return skipped
