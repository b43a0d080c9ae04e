"""`hybi probe`: ask a server for each version in turn and report what its answers show.

Used by the command and by the page `hybi serve` shows (which probes its own server).
"""

from __future__ import annotations

import ssl as ssl_module
from collections.abc import Sequence
from typing import Any

from hybi.aio.client import connect
from hybi.exceptions import HandshakeError, InvalidStatus
from hybi.sansio.deflate import CompressionSetting
from hybi.sansio.dialects import ALL_VERSIONS, DIALECTS

__all__ = ["format_probe", "listed_name", "probe"]


def listed_name(number: int) -> str:
    """A number from a `Sec-WebSocket-Version` list as hybi names that version: 0 is hixie-76
    (RFC 6455 section 11.6 registers 0 for hybi-00); numbers hybi does not speak stay numbers."""
    named = next((dialect.name for dialect in DIALECTS.values() if dialect.listed_as == number), None)
    return named or str(number)


async def _probe_one(
    url: str, version: str, timeout: float, ssl: ssl_module.SSLContext | None, compression: CompressionSetting
) -> dict[str, Any]:
    try:
        connection = await connect(
            url, versions=[version], open_timeout=timeout, ping_interval=None, ssl=ssl, compression=compression
        )
    except InvalidStatus as refusal:
        return {
            "result": "refused",
            "status": refusal.response.status,
            "reason": refusal.response.reason,
            "listed": [listed_name(number) for number in refusal.server_versions],
        }
    except (HandshakeError, OSError, TimeoutError) as error:
        return {"result": "error", "error": str(error) or type(error).__name__}
    await connection.close(1000)
    reason = connection.response.reason if connection.response is not None else ""
    return {
        "result": "accepted",
        "status": 101,
        "reason": reason,
        "subprotocol": connection.subprotocol,
        "extensions": connection.response_headers.get_all("Sec-WebSocket-Extensions"),
    }


async def probe(
    url: str,
    versions: Sequence[str] = ALL_VERSIONS,
    timeout: float = 5.0,
    *,
    ssl: ssl_module.SSLContext | None = None,
    compression: CompressionSetting = "balanced",
) -> dict[str, Any]:
    """Ask `url` for each of `versions` in turn, one connection each, offering compression
    (permessage-deflate, or deflate-frame where the draft has it).

    `accepted` are versions the server completed a handshake for (a real 101), each with the
    extensions it agreed to; `listed` are those it named in `Sec-WebSocket-Version` when
    refusing one. Every version is given by its name, as `--versions` takes it ("13",
    "hixie-76"); a listed 0 is "hixie-76".
    """
    results = {version: await _probe_one(url, version, timeout, ssl, compression) for version in versions}
    listed: list[str] = []
    for result in results.values():
        for name in result.get("listed", ()):
            if name not in listed:
                listed.append(name)
    accepted = [version for version, result in results.items() if result["result"] == "accepted"]
    return {"url": url, "versions": results, "accepted": accepted, "listed": listed}


def format_probe(report: dict[str, Any]) -> list[str]:
    """The report as `hybi probe` prints it, line by line."""
    lines = [str(report["url"])]
    for version, result in report["versions"].items():
        if result["result"] == "accepted":
            line = f"accepted ({result['status']} {result['reason']})"
            if result["extensions"]:
                line += f"; extensions: {', '.join(result['extensions'])}"
        elif result["result"] == "refused":
            listed = ", ".join(result["listed"]) or "no versions"
            line = f"refused with {result['status']} {result['reason']}; listed {listed}"
        else:
            line = f"error: {result['error']}"
        lines.append(f"  {version:>8}: {line}")
    lines.append(f"accepted by a real 101: {', '.join(report['accepted']) or 'none'}")
    lines.append(f"listed in refusals (RFC 6455 section 4.4): {', '.join(report['listed']) or 'none'}")
    return lines
