"""Drive hybi's client through every case of Autobahn|Testsuite's fuzzingserver.

    python interop/autobahn/client.py ws://127.0.0.1:9001 [--agent hybi]

It asks the fuzzingserver how many cases it has (getCaseCount), runs each one as an echo
client (runCase: every message received is sent back until the server closes), then has
the server write its reports (updateReports). Only hybi's public asyncio API is used.
Usually started by run.py, which also starts the fuzzingserver.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from urllib.parse import quote

import hybi

OPEN_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0
# A case that runs longer than this is abandoned (its connection dropped) and the next one
# starts; the fuzzingserver then reports what it saw. wstest gives each case its own limit
# (at most 480 s, for the largest compression cases) and fails it then: this one is longer,
# so that a slow but progressing case (a busy machine) is judged by wstest, not cut off here.
CASE_TIMEOUT = 600.0


async def open_connection(url: str) -> hybi.ClientConnection:
    return await hybi.connect(
        url,
        versions=(13,),
        max_size=None,
        ping_interval=None,
        open_timeout=OPEN_TIMEOUT,
        close_timeout=CLOSE_TIMEOUT,
    )


async def case_count(base: str) -> int:
    ws = await open_connection(f"{base}/getCaseCount")
    try:
        return int(await ws.recv())
    finally:
        await ws.close()


async def echo(ws: hybi.ClientConnection) -> None:
    """Send back every message until the server closes; a case may end abnormally on purpose."""
    try:
        async for message in ws:
            await ws.send(message)
    except hybi.ConnectionClosed:
        pass


async def run_case(base: str, agent: str, case: int) -> str:
    """Run case number `case` (1-based); return how hybi saw the connection end."""
    ws = await open_connection(f"{base}/runCase?case={case}&agent={quote(agent)}")
    try:
        async with asyncio.timeout(CASE_TIMEOUT):
            await echo(ws)
    except TimeoutError:
        await ws.close(1001, "case took too long")
        return "timed out"
    finally:
        await ws.wait_closed()
    return f"closed {ws.close_code}"


async def update_reports(base: str, agent: str) -> None:
    ws = await open_connection(f"{base}/updateReports?agent={quote(agent)}")
    await echo(ws)
    await ws.wait_closed()


async def main(base: str, agent: str, verbose: bool) -> int:
    count = await case_count(base)
    print(f"client: {count} cases", flush=True)
    failures = 0
    for case in range(1, count + 1):
        started = time.monotonic()
        try:
            ending = await run_case(base, agent, case)
        except (hybi.HandshakeError, OSError, TimeoutError) as error:
            failures += 1
            ending = f"did not open: {error!r}"
        if verbose:
            print(f"client: case {case}/{count}: {ending} after {time.monotonic() - started:.2f} s", flush=True)
    await update_reports(base, agent)
    print(f"client: ran {count} cases ({failures} did not open); reports updated", flush=True)
    return 1 if failures else 0


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the fuzzingserver's URL, e.g. ws://127.0.0.1:9001")
    parser.add_argument("--agent", default="hybi", help="the name the reports list the client under")
    parser.add_argument("--quiet", action="store_true", help="do not print a line per case")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_arguments()
    sys.exit(asyncio.run(main(arguments.url.rstrip("/"), arguments.agent, not arguments.quiet)))
