"""The dialects hybi speaks, by name, in the order a client prefers them."""

from __future__ import annotations

from collections.abc import Iterable

from hybi.sansio.dialects.base import ClientOffer, CloseRules, Dialect
from hybi.sansio.dialects.hixie75 import Hixie75
from hybi.sansio.dialects.hixie76 import Hixie76
from hybi.sansio.dialects.hybi02 import Hybi02
from hybi.sansio.dialects.hybi05 import Hybi05
from hybi.sansio.dialects.hybi06 import Hybi06
from hybi.sansio.dialects.hybi07 import Hybi07
from hybi.sansio.dialects.hybi08 import Hybi08
from hybi.sansio.dialects.rfc6455 import RFC6455

__all__ = [
    "ALL_VERSIONS",
    "DEFAULT_VERSIONS",
    "DIALECTS",
    "ClientOffer",
    "CloseRules",
    "Dialect",
    "VersionSpec",
    "resolve_versions",
]

DIALECTS: dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (RFC6455(), Hybi08(), Hybi07(), Hybi06(), Hybi05(), Hybi02(), Hixie76(), Hixie75())
}
"""Every dialect, newest first. hybi-04 is not among them: see docs/versions.md."""

_ALIASES: dict[str, Dialect] = {alias: d for d in DIALECTS.values() for alias in d.aliases}

ALL_VERSIONS: tuple[str, ...] = tuple(DIALECTS)
DEFAULT_VERSIONS: tuple[str, ...] = ("13", "8", "7")
"""The masked versions. The drafts before 7 are opt-in: their frames are not masked (or,
in 5 and 6, masked differently), which is what exposed 2010's proxies to cache poisoning."""

VersionSpec = str | int | Dialect | Iterable[str | int | Dialect]
"""How callers name versions: 13, "13", "13,8,7", "all", a dialect, or a sequence of those."""


def resolve_versions(versions: VersionSpec) -> tuple[Dialect, ...]:
    """The dialects `versions` names, in the order given, without repeats.

    Raises ValueError naming the known versions when one is unknown or none is given.
    """
    cacheable = type(versions) is tuple or isinstance(versions, (str, int, Dialect))
    if cacheable:
        try:
            return _RESOLVED[versions]
        except (KeyError, TypeError):  # not resolved yet, or an unhashable item
            pass
    resolved = _resolve(versions)
    if cacheable and len(_RESOLVED) < 64 and _only_names(versions):
        _RESOLVED[versions] = resolved
    return resolved


_RESOLVED: dict[VersionSpec, tuple[Dialect, ...]] = {}
"""What `resolve_versions` answered for the specs it was given most (a server resolves its own
for every connection): values (strings, numbers, dialects, tuples of those) only, never an
iterator, which the next call would find used up."""


def _only_names(versions: VersionSpec) -> bool:
    items = versions if type(versions) is tuple else (versions,)
    return all(type(item) in (str, int) or isinstance(item, Dialect) for item in items)


def _resolve(versions: VersionSpec) -> tuple[Dialect, ...]:
    if isinstance(versions, (str, int, Dialect)):
        versions = [versions]
    names: list[str] = []
    for item in versions:
        if isinstance(item, Dialect):
            names.append(item.name)
            continue
        for part in str(item).split(","):
            part = part.strip()
            if part.lower() == "all":
                names.extend(ALL_VERSIONS)
            elif part:
                names.append(part)
    resolved: list[Dialect] = []
    for name in names:
        dialect = DIALECTS.get(name) or _ALIASES.get(name.lower())
        if dialect is None:
            raise ValueError(f"unknown WebSocket version {name!r}; known: {', '.join(ALL_VERSIONS)}, or 'all'")
        if dialect not in resolved:
            resolved.append(dialect)
    if not resolved:
        raise ValueError("no WebSocket version given")
    return tuple(resolved)
