"""Sending one message to many connections at once."""

from __future__ import annotations

from collections.abc import Iterable

from hybi.aio.connection import Connection, Data
from hybi.exceptions import HybiError

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
        protocol = connection.protocol
        transport = connection.transport
        if not protocol.can_send or transport is None or transport.is_closing() or connection.writing_paused:
            skipped += 1
            continue
        try:
            if protocol.extensions or protocol.dialect is None:
                if isinstance(message, str):
                    protocol.send_text(message)
                else:
                    protocol.send_binary(message)
            else:
                frame = frames.get(protocol.dialect.name)
                if frame is None:
                    frame = frames[protocol.dialect.name] = protocol.encode_message(message)
                protocol.send_encoded(frame)
        except HybiError:
            skipped += 1
            continue
        connection.flush()
    return skipped
