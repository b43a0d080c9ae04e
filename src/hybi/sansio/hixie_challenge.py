"""The hixie-76 / hybi-00 challenge (also used by hybi-01 to -03).

The client sends `Sec-WebSocket-Key1`, `Sec-WebSocket-Key2` and, after the request head,
8 raw bytes (key3). The server answers, after its 101 head, with the 16-byte MD5 of
`be32(part1) || be32(part2) || key3`, where a key's part is the number formed by its digits
divided by its count of spaces. Those bytes travel outside HTTP, so the session, not the
HTTP layer, exchanges them: a server writes its head at once and answers when key3 comes
(which proxies such as HAProxy hold back until they see the 101).
"""

from __future__ import annotations

import hashlib
import os
import random
import struct

from hybi.exceptions import InvalidHandshake
from hybi.sansio.events import Role

__all__ = ["HixieChallenge", "challenge_answer", "generate_key", "key_part"]

_MAX_PART = 0xFFFFFFFF
# Characters a client mixes into a key: U+0021-U+002F and U+003A-U+007E (no digits).
_NOISE = [chr(c) for c in (*range(0x21, 0x30), *range(0x3A, 0x7F))]


def key_part(key: str) -> int:
    """The number a Sec-WebSocket-Key1/Key2 stands for; ValueError says what is wrong."""
    digits = "".join(c for c in key if "0" <= c <= "9")
    spaces = key.count(" ")
    if not digits:
        raise ValueError(f"key {key!r} has no digits")
    if spaces == 0:
        raise ValueError(f"key {key!r} has no spaces")
    number = int(digits)
    if number % spaces:
        raise ValueError(f"key {key!r}: {number} is not a multiple of its {spaces} spaces")
    part = number // spaces
    if part > _MAX_PART:
        raise ValueError(f"key {key!r} stands for {part}, more than 32 bits")
    return part


def challenge_answer(part1: int, part2: int, key3: bytes) -> bytes:
    return hashlib.md5(struct.pack(">II", part1, part2) + key3).digest()


def generate_key(rng: random.Random | None = None) -> tuple[str, int]:
    """A client key and the part it stands for, made as the draft describes: a number times
    1-12 spaces, written out, with 1-12 noise characters and the spaces inserted inside."""
    rng = rng or random.SystemRandom()
    spaces = rng.randint(1, 12)
    part = rng.randint(0, _MAX_PART // spaces)
    characters = list(str(part * spaces))
    for _ in range(rng.randint(1, 12)):
        characters.insert(rng.randint(0, len(characters)), rng.choice(_NOISE))
    for _ in range(spaces):
        characters.insert(rng.randint(1, len(characters) - 1), " ")
    return "".join(characters), part


class HixieChallenge:
    """The bytes after the HTTP heads: key3 for a server, the 16-byte answer for a client."""

    __slots__ = ("expected", "need", "parts", "role")

    def __init__(self, role: Role, *, parts: tuple[int, int] | None = None, expected: bytes | None = None) -> None:
        self.role = role
        self.parts = parts
        self.expected = expected
        self.need = 8 if role is Role.SERVER else 16

    def complete(self, received: bytes) -> bytes:
        """Take the `need` bytes; return what to send (the server's answer, or b"")."""
        if self.role is Role.SERVER:
            assert self.parts is not None
            return challenge_answer(self.parts[0], self.parts[1], received)
        if received != self.expected:
            raise InvalidHandshake("wrong answer to the hixie-76 challenge: the server did not prove it read the keys")
        return b""


def new_key3() -> bytes:
    return os.urandom(8)
