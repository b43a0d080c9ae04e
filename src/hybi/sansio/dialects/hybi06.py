"""Version 6: draft-ietf-hybi-thewebsocketprotocol-06 (February 2011).

Framed as version 5; close frames now carry a 2-byte status code and a reason (em-websocket
`close06.rb`). The "HTML5 Labs" add-on for Internet Explorer 8 and 9 spoke it.
"""

from __future__ import annotations

from hybi.sansio.dialects.base import CloseRules
from hybi.sansio.dialects.hybi05 import Hybi05
from hybi.sansio.dialects.hybi08 import hybi07_08_close_code

__all__ = ["Hybi06"]


class Hybi06(Hybi05):
    name = "6"
    version = 6
    close_rules = CloseRules(hybi07_08_close_code)
