"""hybi-02 and hybi-03 (autumn 2010): the hixie-76 handshake plus `Sec-WebSocket-Draft: 2`,
with the first binary framing (MORE bit, opcodes 0-5, no masking).

No browser shipped these drafts. em-websocket's `framing03.rb` and websocket-ruby's
`handler03.rb` are the implementations this follows. A hybi-01 client sends no Draft
header and is answered as hixie-76 (see hixie76.py).
"""

from __future__ import annotations

from hybi.sansio.dialects.base import CloseRules
from hybi.sansio.dialects.hixie76 import Hixie76, _unversioned
from hybi.sansio.events import Role
from hybi.sansio.framing import Codec
from hybi.sansio.framing.interim import InterimCodec
from hybi.sansio.http import Headers, Request, Response

__all__ = ["Hybi02"]


class Hybi02(Hixie76):
    name = "hybi-02"
    aliases = ("hybi-03", "draft-2", "draft-3")
    close_rules = CloseRules(None)
    description = "Sec-WebSocket-Draft requests (hybi-02/03)"

    def claims_request(self, request: Request) -> bool:
        return _unversioned(request) and "Sec-WebSocket-Draft" in request.headers

    def claims_response(self, response: Response) -> bool:
        """Its answer is written as hixie-76's, so an answer of that form is taken as hixie-76's."""
        return False

    @property
    def listed_as(self) -> int | None:
        return None

    def add_client_headers(self, headers: Headers) -> None:
        headers.add("Sec-WebSocket-Draft", "2")

    def new_codec(self, role: Role, *, max_size: int | None) -> Codec:
        return InterimCodec(role, more_bit=True, prefix_mask=False)
