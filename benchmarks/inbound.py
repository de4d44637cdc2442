"""Inbound webhook throughput under wrk, beside Twilio's Flask pattern and a bare ASGI floor;
webhook→websocket latency.

    uv run python benchmarks/inbound.py [--rounds 3] [--requests 10000] [--connections 32] [--threads 1]
                                        [--no-postgres] [--generator wrk|python] [--sockets 20]

Needs wrk (`apt-get install wrk`; `brew install wrk`). Servers, each one process on this machine:
- the inbox on SQLite, and on PostgreSQL (a database created for the run and dropped after, admin
  URL INBOX_TEST_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/test; --no-postgres
  skips it), doing all its work: signature, customer, thread, message, events, commit, push;
- the peer: Twilio's documented Flask receiver under gunicorn's sync worker (signature check and
  TwiML, storing nothing);
- the floor: a bare ASGI app under uvicorn with the inbox's server settings, answering 200 to
  the same requests (benchmarks/peers/bare_asgi.py): what this machine's HTTP stack costs alone.
Each round gives every server its own file of freshly signed webhooks (10 % of them deliberate
redeliveries of an earlier line), sent once each by wrk (benchmarks/signed_requests.lua) over the
same connections; rounds alternate between the servers, so a shared machine that speeds up or
slows down moves all of them, and the ratios are taken within a round. wrk's own CPU and the
servers' CPU per request are printed: CPU per request does not depend on who else uses the cores.
`--generator python` drives the same rounds from the old asyncio client instead (for comparison:
it spends more CPU reconnecting to the peer than talking to the inbox, which favours the inbox).
Targets (issue 16): inbox ≥ 2× the peer on SQLite with p99 ≤ 50 ms, ≥ 1.5× on PostgreSQL;
push p99 ≤ 20 ms.

Where the server's CPU goes, with py-spy (`uv tool install py-spy`; it reads another process's
memory, so it may need `sudo` or `--cap-add SYS_PTRACE` in a container):

    py-spy record -o profile.svg --pid <inbox serve pid> --duration 20   # while this runs
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from _harness import (
    LoadResult,
    Process,
    pct,
    push_latency,
    run_load,
    signed_requests,
    staff_token,
    start_flask_peer,
    start_inbox,
    temp_sqlite_url,
)
from _wrk import WrkResult, process_tree_cpu, request_folder, run_wrk, start_bare_asgi, write_requests, wrk_binary
from scaleout import ADMIN_URL, asyncpg_url, pg_execute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10000, help="per round and server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--generator", choices=("wrk", "python"), default="wrk")
    parser.add_argument("--sockets", type=int, default=20)
    parser.add_argument("--push-messages", type=int, default=300)
    args = parser.parse_args()
    if args.generator == "wrk":
        wrk_binary()

    sqlite_url, folder = temp_sqlite_url()
    from inbox.db import migrate

    migrate(sqlite_url)
    token = staff_token(sqlite_url)
    pg_admin = asyncpg_url(ADMIN_URL)
    pg_database = f"inbox_bench_{uuid.uuid4().hex[:10]}"
    pg_url = pg_admin.rsplit("/", 1)[0] + f"/{pg_database}"
    if not args.no_postgres:
        asyncio.run(pg_execute(pg_admin, f'CREATE DATABASE "{pg_database}"'))
        migrate(pg_url)
    servers: dict[str, Process] = {}
    files = request_folder()
    results: dict[str, list[WrkResult | LoadResult]] = {}
    try:
        servers["floor (bare ASGI, 200)"] = start_bare_asgi()
        servers["inbox (SQLite, stores all)"] = start_inbox(sqlite_url)
        if not args.no_postgres:
            servers["inbox (PostgreSQL)"] = start_inbox(pg_url)
        servers["peer (Flask, stores nothing)"] = start_flask_peer()
        load = make_load(args, Path(files.name))
        for server in servers.values():
            load("warm-up", server, 500, 8)
        # Rounds alternate between the servers: a shared machine that slows down moves them all.
        for round_number in range(1, args.rounds + 1):
            for name, server in servers.items():
                short = name.split(" (")[0] + (" " + name.split(" (")[1].split(",")[0] if "inbox" in name else "")
                result = load(f"{short.rstrip(')')}, round {round_number}", server, args.requests, args.connections)
                results.setdefault(name, []).append(result)
        latencies = asyncio.run(
            push_latency(
                [servers["inbox (SQLite, stores all)"].url],
                servers["inbox (SQLite, stores all)"].url,
                token,
                args.sockets,
                args.push_messages,
            )
        )
    finally:
        for server in servers.values():
            server.stop()
        if not args.no_postgres:
            asyncio.run(pg_execute(pg_admin, f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)'))
        folder.cleanup()
        files.cleanup()

    load_average = os.getloadavg()
    print(
        f"inbound webhooks from {args.generator}: {args.rounds} rounds of {args.requests} signed requests per server "
        f"(10 % redeliveries), {args.connections} connections, {args.threads} wrk thread(s); "
        f"{os.cpu_count()} cores shared by servers and load generator (load average {load_average[0]:.2f})"
    )
    for round_index in range(args.rounds):
        for rounds in results.values():
            print("  " + rounds[round_index].line())
    print("  median rounds:")
    for name, rounds in results.items():
        median = sorted(rounds, key=lambda r: r.throughput)[len(rounds) // 2]
        median.name = name
        print("  " + median.line())
    peer = results["peer (Flask, stores nothing)"]
    targets = {"inbox (SQLite, stores all)": 2.0, "inbox (PostgreSQL)": 1.5, "floor (bare ASGI, 200)": None}
    for name, target in targets.items():
        if name not in results:
            continue
        ratios = [mine.throughput / theirs.throughput for mine, theirs in zip(results[name], peer, strict=True)]
        p99s = [r.p99_ms if isinstance(r, WrkResult) else r.pct(99) for r in results[name]]
        goal = f"   (target >= {target}x, p99 <= 50 ms)" if target else ""
        print(
            f"  {name.split(' (')[0]} {name.split(' (')[1].split(',')[0].rstrip(')')} / peer: "
            f"{statistics.median(ratios):.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f}), "
            f"p99 {min(p99s):.1f}-{max(p99s):.1f} ms{goal}"
        )
    print(
        f"webhook -> websocket push, {args.sockets} sockets, {args.push_messages} messages: "
        f"p50 {pct(latencies, 50):.1f} ms   p99 {pct(latencies, 99):.1f} ms   (target p99 <= 20 ms)"
    )


def make_load(args: argparse.Namespace, folder: Path) -> Callable[[str, Process, int, int], WrkResult | LoadResult]:
    counter = iter(range(1_000_000))

    def with_wrk(name: str, server: Process, count: int, connections: int) -> WrkResult:
        path = folder / f"requests-{next(counter)}.tsv"
        write_requests(path, server.url, count)
        try:
            return run_wrk(name, server.url, path, connections, servers=[server], threads=args.threads)
        finally:
            path.unlink()

    def with_python(name: str, server: Process, count: int, connections: int) -> LoadResult:
        requests = signed_requests(server.url, count)
        server_before, client_before = process_tree_cpu(server.process.pid), time.process_time()
        result = asyncio.run(run_load(name, server.url, requests, connections))
        result.client_cpu = time.process_time() - client_before
        result.server_cpu = process_tree_cpu(server.process.pid) - server_before
        return result

    return with_wrk if args.generator == "wrk" else with_python


if __name__ == "__main__":
    main()
