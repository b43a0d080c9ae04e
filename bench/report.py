"""The page and the chart that `make bench` writes from its measurements (see run.py)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, TypeGuard

Result = dict[str, Any]

ECHO_SERVERS = ("hybi", "hybi_pure", "picows", "websockets", "raw")
ZIP_SERVERS = ("hybi", "hybi_speed", "hybi_speed_zlib", "aiohttp", "websockets")
COLOURS = {"hybi": "#1f6feb", "hybi_pure": "#79b8ff", "picows": "#d97706", "websockets": "#6e7781"}


def ok(result: Result | None) -> TypeGuard[Result]:
    return result is not None and not result.get("errors") and bool(result.get("msgs_per_s"))


def rate(result: Result | None) -> str:
    if not result:
        return "—"
    if not ok(result):
        return "failed"
    return f"{result['msgs_per_s']:,.0f}"


def ratio(a: Result | None, b: Result | None) -> str:
    if not (ok(a) and ok(b)):
        return "—"
    return f"{a['msgs_per_s'] / b['msgs_per_s']:.2f}"


def cpu(result: Result | None) -> str:
    if not ok(result):
        return "—"
    return f"{result['server_us_per_msg']:.1f}"


def table(head: list[str], rows: list[list[str]], numbers: bool = True) -> list[str]:
    """A Markdown table: the first column left-aligned, the others right-aligned if `numbers`."""
    rule = "|" + "|".join("---" if i == 0 or not numbers else "--:" for i in range(len(head))) + "|"
    lines = ["| " + " | ".join(head) + " |", rule]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def write_report(data: dict[str, Any], out: Path) -> None:
    results: dict[str, dict[str, Result]] = data["results"]
    labels = {s["key"]: s["label"] for s in data["servers"]}
    workloads = {w["name"]: w for w in data["workloads"]}
    machine: dict[str, str] = data["machine"]
    echo_names = [n for n, w in workloads.items() if w["mode"] in ("echo", "hs") and not w["deflate"] and n in results]

    lines = [
        "# Performance results",
        "",
        "Written by `make bench` (bench/run.py) on the machine below; run it again to measure yours.",
        "The server and the load generator share this machine, so compare servers measured in the",
        "same sitting rather than figures from different ones.",
        "",
        "## Machine",
        "",
    ]
    lines += table(["", ""], [[key, html.escape(value)] for key, value in machine.items()], numbers=False)

    if echo_names:
        lines += [
            "## Messages per second",
            "",
            "Echoed and verified messages per second (handshakes per second for hs_c8).",
            "",
        ]
        head = ["workload", *(labels[k] for k in ECHO_SERVERS), "hybi / picows", "hybi / raw TCP"]
        rows = []
        for name in echo_names:
            row = results[name]
            rows.append(
                [
                    f"`{name}`",
                    *(rate(row.get(k)) for k in ECHO_SERVERS),
                    ratio(row.get("hybi"), row.get("picows")),
                    ratio(row.get("hybi"), row.get("raw")),
                ]
            )
        lines += table(head, rows)
        lines += [
            "![messages per second, as a share of the raw TCP echo](img/bench.svg)",
            "",
            "## Server CPU per message",
            "",
            "CPU time of the server process (all its threads, from /proc) over the measured interval,",
            "in µs per echoed message (per handshake for hs_c8). Lower is better. On two cores shared",
            "with the load generator (and, with a high load average, with other work) it is the steadier",
            "figure: messages per second also measure how much CPU the server was given.",
            "",
        ]
        lines += table(
            ["workload", *(labels[k] for k in ECHO_SERVERS)],
            [[f"`{n}`", *(cpu(results[n].get(k)) for k in ECHO_SERVERS)] for n in echo_names],
        )
        lat_rows = []
        for name in echo_names:
            if workloads[name]["mode"] != "echo":
                continue
            cells = []
            for key in ECHO_SERVERS:
                r = results[name].get(key)
                cells.append(f"{r['p50_us']:,} / {r['p99_us']:,}" if ok(r) and r["p99_us"] >= 0 else "—")
            lat_rows.append([f"`{name}`", *cells])
        lines += ["## Latency", "", "Round trip of a message, p50 / p99 in µs.", ""]
        lines += table(["workload", *(labels[k] for k in ECHO_SERVERS)], lat_rows)
        lg_rows = []
        for name in echo_names:
            shares = [results[name][k].get("loadgen_cpu", 0) for k in ECHO_SERVERS if ok(results[name].get(k))]
            if shares:
                lg_rows.append([f"`{name}`", f"{100 * max(shares):.0f} %"])
        lines += [
            "## Load generator CPU",
            "",
            "The highest share of one core the load generator used in a workload, over all servers: well",
            "below 100 %, it was not the bottleneck. In the ping-pong workload it busy-polls (a sleeping",
            "core takes tens of µs to wake), so there the figure is the CPU it was given, not what it needed.",
            "",
        ]
        lines += table(["workload", "load generator CPU"], lg_rows)

    idle = results.get("idle5k", {})
    if idle:
        lines += [
            "## Memory per idle connection",
            "",
            f"Server RSS growth divided by the connections held ({workloads['idle5k']['conns']}), after the handshake.",
            "",
        ]
        rows = []
        for key in (*ECHO_SERVERS,):
            r = idle.get(key)
            if r:
                rows.append(
                    [
                        labels[key],
                        f"{r['kib_per_conn']:.1f}"
                        if r.get("kib_per_conn") is not None
                        else f"failed: {r.get('error')}",
                    ]
                )
        lines += table(["server", "KiB per connection"], rows)

    zipped = results.get("z64k_c1_w4", {})
    if zipped:
        lines += [
            "## Compression: 64 KiB compressible text",
            "",
            "`z64k_c1_w4`: the load generator offers permessage-deflate (client_no_context_takeover,",
            "client_max_window_bits), compresses each message with zlib, inflates every echo and",
            'compares it in full. Each server compresses with its defaults: hybi\'s "balanced" preset',
            "(level 6, mem_level 5, 2^12 window), websockets level 6, mem_level 5, 2^12 window,",
            "aiohttp level 1 with a 2^15 window (and large messages compressed in a worker thread,",
            'whose CPU time is counted); hybi also runs with its "speed" preset (level 1, 2^15),',
            "deflating with ISA-L (python-isal, in the `speed` extra) and, for comparison, with zlib.",
            "Bytes per echo are what the server sent for one 65,536-byte message.",
            "",
        ]
        rows = []
        for key in ZIP_SERVERS:
            r = zipped.get(key)
            if not r:
                continue
            if not ok(r):
                rows.append([labels[key], f"failed: {r.get('error')}", "—", "—", "—"])
                continue
            rows.append(
                [
                    labels[key],
                    f"{r['msgs_per_s']:,.0f}",
                    cpu(r),
                    f"{r['wire_in_per_msg']:,.0f}",
                    f"{r['compressed_echoes']:,} of {r['messages']:,}",
                ]
            )
        lines += table(["server", "messages/s", "server CPU µs/msg", "bytes per echo", "echoes compressed"], rows)

    presets: dict[str, Result] = data.get("presets", {})
    if presets:
        try:
            from hybi.sansio.deflate import PRESETS  # noqa: PLC0415

            knobs = {
                name: f"level {p.level}, mem_level {p.mem_level}, window 2^{p.window_bits}"
                for name, p in PRESETS.items()
            }
        except ImportError:
            knobs = {}
        base = presets.get("off", {}).get("kib_per_conn")
        lines += [
            "## Memory per connection of hybi's compression presets",
            "",
            "hybi's echo server with `compression=` each preset; every connection has exchanged one",
            'compressed 4 KiB message first, since zlib allocates its buffers lazily. "off" is',
            "without compression; the last column is what the preset adds to it.",
            "",
        ]
        rows = []
        for name, r in presets.items():
            kib = r.get("kib_per_conn")
            if kib is None:
                rows.append([f"`{name}`", knobs.get(name, ""), f"failed: {r.get('error')}", "—"])
                continue
            extra = f"{kib - base:.1f}" if base is not None and name != "off" else "—"
            rows.append([f"`{name}`", knobs.get(name, "no compression"), f"{kib:.1f}", extra])
        lines += table(["preset", "settings", "KiB per connection", "for compression"], rows, numbers=True)

    lines += [
        "## How it was measured",
        "",
        "- `bench/loadgen.c`, a single-threaded epoll client in C, keeps W messages in flight on each",
        "  of N connections, masks its frames (one random key per run, so that payloads are masked",
        "  once), and checks every echo: opcode, length, a sequence",
        "  number at its start and one byte in 13 of its content. It counts for a fixed time after",
        "  a warm-up, and reads the server's CPU time from /proc over exactly that interval.",
        "- Every server runs on uvloop and echoes each message with its type; see bench/servers/.",
        "  hybi runs twice: as installed, and with `HYBI_PURE_PYTHON=1`.",
        "- Idle memory: the growth of the server's RSS while the load generator holds the connections",
        "  open, divided by their number.",
        "- The raw TCP echo is an asyncio Protocol on the same uvloop loop: the limit of that loop's",
        "  transport. picows brings its own transport (aiofastnet), which can beat it on large messages.",
        "- Each figure is the run with the median messages/s of three (one with BENCH_QUICK=1);",
        "  bench/build/results.json keeps every run.",
        "",
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "performance-results.md").write_text("\n".join(lines))
    (out / "img").mkdir(parents=True, exist_ok=True)
    (out / "img" / "bench.svg").write_text(
        chart(results, labels, [n for n in echo_names if workloads[n]["mode"] == "echo"])
    )


def chart(results: dict[str, dict[str, Result]], labels: dict[str, str], names: list[str]) -> str:
    """Horizontal bars: each server's messages/s as a share of the raw TCP echo, per workload."""
    servers = [k for k in ECHO_SERVERS if k != "raw"]
    bar, gap, left, width = 14, 12, 120, 520
    top = 40
    height = top + len(names) * (len(servers) * bar + gap) + 40
    peak = 1.0
    for name in names:
        raw = results[name].get("raw")
        for key in servers:
            r = results[name].get(key)
            if ok(r) and ok(raw):
                peak = max(peak, r["msgs_per_s"] / raw["msgs_per_s"])
    peak = min(peak, 1.25)  # a noisy outlier should not squash every other bar: longer ones are cut
    scale = width / peak
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 120}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{left}" y="16" font-size="13">messages/s as a share of the raw TCP echo (same workload)</text>',
    ]
    for i, key in enumerate(servers):
        x = left + i * 130
        parts.append(f'<rect x="{x}" y="24" width="10" height="10" fill="{COLOURS[key]}"/>')
        parts.append(f'<text x="{x + 14}" y="33">{html.escape(labels[key])}</text>')
    y = top
    for name in names:
        raw = results[name].get("raw")
        parts.append(f'<text x="{left - 6}" y="{y + len(servers) * bar / 2 + 4}" text-anchor="end">{name}</text>')
        for key in servers:
            r = results[name].get(key)
            if ok(r) and ok(raw):
                share = r["msgs_per_s"] / raw["msgs_per_s"]
                w = max(1.0, min(share, peak) * scale)
                parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar - 2}" fill="{COLOURS[key]}"/>')
                label = f"{100 * share:.0f} % ({r['msgs_per_s']:,.0f}/s)"
                parts.append(f'<text x="{left + w + 4:.1f}" y="{y + bar - 4}">{label}</text>')
            y += bar
        y += gap
    x100 = left + scale
    if x100 <= left + width:
        parts.append(
            f'<line x1="{x100:.1f}" y1="{top - 4}" x2="{x100:.1f}" y2="{y}" stroke="black" stroke-dasharray="3,3"/>'
        )
        parts.append(f'<text x="{x100:.1f}" y="{y + 12}" text-anchor="middle">raw TCP = 100 %</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
