"""What `broadcast` decides the same way in the asyncio and sync APIs: whether a connection
can take the message, and how it is framed (once per dialect where it can be)."""

from __future__ import annotations

from hybi.exceptions import HybiError
from hybi.sansio.connection import Connection as Protocol

__all__ = ["queue_broadcast"]


def queue_broadcast(protocol: Protocol, message: str | bytes, frames: dict[str, bytes]) -> bool:
    """Queue `message` on `protocol` for a broadcast; False if it was skipped.

    `frames` holds the frame already made for each dialect, shared by every connection of
    that dialect; a connection with extensions (compression keeps state of its own) frames
    it itself. A connection that cannot send (closed or closing), or whose dialect cannot
    carry the message (binary to a hixie client), is skipped; nothing is raised for it.
    The caller writes what was queued, and skips first whatever its transport says is
    closed or slow.
    """
    if not protocol.can_send:
        return False
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
        return False
    return True
