"""The lifecycle of a connection, in one table (RFC 6455 sections 4 and 7).

Every change of `Connection.state` goes through `next_state`, so this table is the whole
of it; a pair that is not in it is a bug in hybi and raises InvalidState.

    state        what happens                          next state   RFC 6455
    CONNECTING   the opening handshake completes       OPEN         4.1 (client), 4.2.2 (server)
    CONNECTING   the opening handshake fails           REJECTED     4.1 "fail the WebSocket Connection",
                 (refused, invalid, timed out, TCP                  4.2.2 item 4, 4.4
                 closed first)
    OPEN         this side sends a close frame          CLOSING      7.1.2 "Start the WebSocket Closing Handshake"
    OPEN         a close frame arrives (and is echoed)  CLOSED       5.5.1, 7.1.5: the closing handshake is complete
    OPEN         the connection is failed               CLOSED       7.1.7 "Fail the WebSocket Connection"
    OPEN         TCP closes                             CLOSED       7.1.4 (hixie-75: its normal close), 7.1.5 1006
    CLOSING      the peer's close frame arrives         CLOSED       7.1.3 "The WebSocket Closing Handshake is Started"
    CLOSING      the connection is failed               CLOSED       7.1.7
    CLOSING      TCP closes, or the peer's close frame  CLOSED       7.1.1, 7.1.4
                 does not come within close_timeout
    CLOSED       TCP closes                             CLOSED       7.1.4: the transport follows the protocol
    REJECTED     TCP closes                             REJECTED

CLOSED means that no frame will be read or written any more; the transport is then closed
as `Connection.transport_action` says (the server first, section 7.1.1).
"""

from __future__ import annotations

from enum import Enum

from hybi.exceptions import InvalidState
from hybi.sansio.events import State

__all__ = ["Happening", "next_state"]


class Happening(Enum):
    HANDSHAKE_COMPLETED = "the opening handshake completed"
    HANDSHAKE_FAILED = "the opening handshake failed"
    CLOSE_SENT = "a close frame was sent"
    CLOSE_RECEIVED = "a close frame was received"
    FAILED = "the connection was failed"
    TCP_CLOSED = "TCP closed"

    __hash__ = object.__hash__  # as State's: members compare by identity


_TABLE: dict[tuple[State, Happening], State] = {
    (State.CONNECTING, Happening.HANDSHAKE_COMPLETED): State.OPEN,
    (State.CONNECTING, Happening.HANDSHAKE_FAILED): State.REJECTED,
    (State.OPEN, Happening.CLOSE_SENT): State.CLOSING,
    (State.OPEN, Happening.CLOSE_RECEIVED): State.CLOSED,
    (State.OPEN, Happening.FAILED): State.CLOSED,
    (State.OPEN, Happening.TCP_CLOSED): State.CLOSED,
    (State.CLOSING, Happening.CLOSE_RECEIVED): State.CLOSED,
    (State.CLOSING, Happening.FAILED): State.CLOSED,
    (State.CLOSING, Happening.TCP_CLOSED): State.CLOSED,
    (State.CLOSED, Happening.TCP_CLOSED): State.CLOSED,
    (State.REJECTED, Happening.TCP_CLOSED): State.REJECTED,
}


def next_state(state: State, happening: Happening) -> State:
    try:
        return _TABLE[state, happening]
    except KeyError:
        raise InvalidState(f"{happening.value} while the connection is {state.value}") from None
