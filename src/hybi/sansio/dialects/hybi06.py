"""Version 6: draft-ietf-hybi-thewebsocketprotocol-06 (February 2011).

Framed as version 5; close frames now carry a 2-byte status code and a reason (em-websocket
`close06.rb`). The "HTML5 Labs" add-on for Internet Explorer 8 and 9 spoke it.
"""

from __future__ import annotations

from hybi.sansio.dialects.hybi05 import Hybi05

__all__ = ["Hybi06"]


class Hybi06(Hybi05):
    name = "6"
    version = 6
    summary = "hybi-06 (IE 8/9 HTML5 Labs add-on)"
    close_status = True
