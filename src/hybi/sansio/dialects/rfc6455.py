"""Version 13: RFC 6455 (December 2011), also spoken by hybi drafts 13 to 17."""

from __future__ import annotations

from hybi.sansio.close import rfc6455_close_code
from hybi.sansio.dialects.base import CloseRules
from hybi.sansio.dialects.keyaccept import KeyAcceptDialect

__all__ = ["RFC6455"]


class RFC6455(KeyAcceptDialect):
    """The standard protocol: clients send `Origin` (section 4.1 item 8)."""

    name = "13"
    version = 13
    origin_header = "Origin"
    close_rules = CloseRules(rfc6455_close_code)
