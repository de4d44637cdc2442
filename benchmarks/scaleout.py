"""Webhook throughput and webhook→websocket latency as the deployment scales out, side by side.

    uv run python benchmarks/scaleout.py [--requests 8000] [--connections 32] [--sockets 20] [--push-messages 200]

Needs wrk (`apt-get install wrk`; `brew install wrk`). Three configurations take the same kind of
load from wrk (benchmarks/signed_requests.lua: pre-signed unique webhooks, each sent once, one wrk
thread per process), one after another:
1. one `inbox serve` on SQLite (the single-machine default);
2. one on PostgreSQL;
3. two on PostgreSQL + Redis, requests split across both as the proxy would (wrk thread i and its
   connections go to process i), sockets split across both, so half of every push crosses processes via Redis.
Signed inbound webhooks, 10 % of them deliberate redeliveries (which race across processes in 3). After each
run the database is checked: every SID stored exactly once.

A fresh PostgreSQL database is created for the run and dropped after; the admin URL is
INBOX_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test), Redis is
INBOX_TEST_REDIS_URL (default redis://127.0.0.1:6379/0). Server processes and the load generator
share this machine's cores, so a second process adds capacity only where cores are idle; the
servers' CPU per webhook is printed too, as it does not depend on who else uses the cores. The
webhook→websocket latency is timed by a Python client (it needs the sockets).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from _harness import Process, asyncpg_url, pct, pg_execute, push_latency, staff_token, start_inbox, temp_sqlite_url
from _wrk import WrkResult, request_folder, run_wrk, write_requests, wrk_binary

from tests.support.db import scalar
from tests.support.servers import free_port

ADMIN_URL = os.environ.get("INBOX_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("INBOX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TABLES = (
    "events, consent_records, conversation_reads, messages, conversations, customers, web_sessions, "
    "api_tokens, pending_statuses, whatsapp_templates, app_settings, export_audit, staff"
)


@dataclass
class Row:
    name: str
    load: WrkResult
    push: list[float]
    stored: int
    expected: int
    duplicates: int


def measure(name: str, database_url: str, processes: int, args, **extra: str) -> Row:
    token = staff_token(database_url)
    ports = [free_port() for _ in range(processes)]
    public_url = f"http://127.0.0.1:{ports[0]}"  # one URL for Twilio: the proxy's, here the first process's
    servers: list[Process] = []
    try:
        servers.extend(start_inbox(database_url, port=port, public_port=ports[0], **extra) for port in ports)
        targets = [server.url for server in servers]
        with request_folder() as folder:
            warmup, load = Path(folder) / "warm-up.tsv", Path(folder) / "load.tsv"
            expected = write_requests(warmup, public_url, 300) + write_requests(load, public_url, args.requests)
            for label, path, connections in (("warm-up", warmup, 8), (name, load, args.connections)):
                result = run_wrk(
                    label, public_url, path, connections, servers=servers, threads=processes, targets=targets
                )
        push = asyncio.run(push_latency(targets, public_url, token, args.sockets, args.push_messages))
    finally:
        for server in servers:
            server.stop()
    expected += args.push_messages
    stored = scalar(database_url, "SELECT count(*) FROM messages")
    duplicates = scalar(database_url, "SELECT count(*) - count(DISTINCT sid) FROM messages")
    return Row(name, result, push, stored, expected, duplicates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sockets", type=int, default=20)
    parser.add_argument("--push-messages", type=int, default=200)
    args = parser.parse_args()
    wrk_binary()

    admin = asyncpg_url(ADMIN_URL)
    database = f"inbox_bench_{uuid.uuid4().hex[:10]}"
    pg_url = admin.rsplit("/", 1)[0] + f"/{database}"
    sqlite_url, folder = temp_sqlite_url()
    asyncio.run(pg_execute(admin, f'CREATE DATABASE "{database}"'))
    rows: list[Row] = []
    try:
        rows.append(measure("1 process, SQLite", sqlite_url, 1, args))
        rows.append(measure("1 process, PostgreSQL", pg_url, 1, args))
        asyncio.run(pg_execute(pg_url, f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        rows.append(measure("2 processes, PG + Redis", pg_url, 2, args, INBOX_REDIS_URL=REDIS_URL))
    finally:
        asyncio.run(pg_execute(admin, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        folder.cleanup()

    print(
        f"scale-out: {args.requests} webhooks (10 % redeliveries) over {args.connections} connections; "
        f"push: {args.sockets} sockets x {args.push_messages} messages; "
        f"{os.cpu_count()} cores shared by servers, PostgreSQL, Redis and wrk (load average {os.getloadavg()[0]:.2f})"
    )
    print(
        f"  {'configuration':<26} {'webhooks/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        f" {'push p50':>9} {'push p99':>9} {'CPU/req':>10} {'wrk CPU':>8}   stored once"
    )
    for row in rows:
        load = row.load
        once = "yes" if row.stored == row.expected and row.duplicates == 0 else f"NO ({row.stored}/{row.expected})"
        print(
            f"  {row.name:<26} {load.throughput:10.0f} {load.p50_ms:8.1f} {load.p99_ms:8.1f} {load.errors:7d}"
            f" {pct(row.push, 50):7.1f}ms {pct(row.push, 99):7.1f}ms {1000 * load.server_cpu / load.requests:8.2f}ms"
            f" {1000 * load.wrk_cpu / load.requests:6.2f}ms   {once}"
        )
    sqlite, pg, scaled = (row.load.throughput for row in rows)
    print(
        f"  throughput ratios: PostgreSQL / SQLite {pg / sqlite:.2f}x; 2 x PG+Redis / 1 x PG {scaled / pg:.2f}x; "
        f"2 x PG+Redis / SQLite {scaled / sqlite:.2f}x"
    )
    print(
        f"  push p99 ratios: PostgreSQL / SQLite {pct(rows[1].push, 99) / pct(rows[0].push, 99):.2f}x; "
        f"2 x PG+Redis / 1 x PG {pct(rows[2].push, 99) / pct(rows[1].push, 99):.2f}x"
    )


if __name__ == "__main__":
    main()
