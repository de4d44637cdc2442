"""Webhook throughput and webhook→websocket latency as the deployment scales out, side by side.

    uv run python benchmarks/scaleout.py [--requests 4000] [--connections 32] [--sockets 20] [--push-messages 200]

Three configurations take the same kind of load from the same generator, one after another:
1. one `inbox serve` on SQLite (the single-machine default);
2. one on PostgreSQL;
3. two on PostgreSQL + Redis, requests split across both as the proxy would (connection i goes to
   process i mod 2), sockets split across both, so half of every push crosses processes via Redis.
Signed inbound webhooks, 10 % of them redeliveries (which race across processes in 3). After each
run the database is checked: every SID stored exactly once.

A fresh PostgreSQL database is created for the run and dropped after; the admin URL is
INBOX_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test), Redis is
INBOX_TEST_REDIS_URL (default redis://127.0.0.1:6379/0). Server processes and the load generator
share this machine's cores, so a second process adds capacity only where cores are idle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import aiohttp
from _harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    ROOT,
    LoadResult,
    Process,
    inbox_env,
    signed_requests,
    start_inbox,
    temp_sqlite_url,
)

from inbox.simulate import INBOUND_PATH, inbound_form
from inbox.twilio.signature import sign
from tests.support.db import scalar
from tests.support.servers import free_port

ADMIN_URL = os.environ.get("INBOX_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("INBOX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TABLES = ("events, consent_records, conversation_reads, messages, conversations, customers, web_sessions, "
          "api_tokens, pending_statuses, whatsapp_templates, app_settings, export_audit, staff")


def asyncpg_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    raise SystemExit(f"not a PostgreSQL URL: {url}")


async def pg_execute(url: str, *statements: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def staff_token(database_url: str) -> str:
    env = inbox_env(database_url, 8000)
    subprocess.run([sys.executable, "-m", "inbox.cli", "staff", "add", "bench@example.com", "--role", "receptionist"],
                   input="benchmark password\n", text=True, env=env, cwd=ROOT, check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-m", "inbox.cli", "staff", "token", "bench@example.com"], text=True,
                            env=env, cwd=ROOT, check=True, capture_output=True)
    return result.stdout.strip()


async def run_split_load(name: str, targets: list[str], requests: list[tuple[bytes, dict[str, str]]],
                         connections: int) -> LoadResult:
    """Every request once over `connections` keep-alive connections; connection i posts to target i mod n."""
    queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        async def worker(url: str) -> None:
            nonlocal errors
            while True:
                try:
                    body, headers = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        urls = [target.rstrip("/") + INBOUND_PATH for target in targets]
        await asyncio.gather(*(worker(urls[i % len(urls)]) for i in range(connections)))
        elapsed = time.perf_counter() - started
    return LoadResult(name, len(requests), elapsed, latencies, errors)


async def push_latency(targets: list[str], public_url: str, token: str, sockets: int, messages: int) -> list[float]:
    """`sockets` websockets spread over the targets; `messages` webhooks, one at a time, posted to
    the targets in turn; each arrival on each socket timed from the moment its webhook was sent."""
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    received = 0
    async with aiohttp.ClientSession() as session:
        connections = [await session.ws_connect(targets[i % len(targets)].replace("http://", "ws://") + "/ws",
                                                headers={"Authorization": f"Bearer {token}"})
                       for i in range(sockets)]

        async def reader(ws) -> None:
            nonlocal received
            async for frame in ws:
                event = json.loads(frame.data)
                if event["type"] != "message.created":
                    continue
                latencies.append(time.perf_counter() - sent_at[event["data"]["message"]["sid"]])
                received += 1
                if received == sockets * messages:
                    done.set()

        readers = [asyncio.create_task(reader(ws)) for ws in connections]
        signed_for = public_url + INBOUND_PATH
        for n in range(messages):
            form = inbound_form(from_=f"+1212555{n:04d}", to="+15005550006", body=f"push {n}", account_sid=ACCOUNT_SID)
            headers = {"X-Twilio-Signature": sign(AUTH_TOKEN, signed_for, form)}
            sent_at[form["MessageSid"]] = time.perf_counter()
            async with session.post(targets[n % len(targets)] + INBOUND_PATH, data=form, headers=headers) as response:
                assert response.status == 200, response.status
            await asyncio.sleep(0.005)
        await asyncio.wait_for(done.wait(), timeout=60)
        for task in readers:
            task.cancel()
        for ws in connections:
            await ws.close()
    return latencies


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


@dataclass
class Row:
    name: str
    load: LoadResult
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
        for port in ports:
            servers.append(start_inbox(database_url, port=port, public_port=ports[0], **extra))
        targets = [server.url for server in servers]
        warmup = signed_requests(public_url, 300)
        load = signed_requests(public_url, args.requests)
        asyncio.run(run_split_load("warm-up", targets, warmup, 8))
        result = asyncio.run(run_split_load(name, targets, load, args.connections))
        push = asyncio.run(push_latency(targets, public_url, token, args.sockets, args.push_messages))
    finally:
        for server in servers:
            server.stop()
    expected = len({body for body, _ in warmup}) + len({body for body, _ in load}) + args.push_messages
    stored = scalar(database_url, "SELECT count(*) FROM messages")
    duplicates = scalar(database_url, "SELECT count(*) - count(DISTINCT sid) FROM messages")
    return Row(name, result, push, stored, expected, duplicates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sockets", type=int, default=20)
    parser.add_argument("--push-messages", type=int, default=200)
    args = parser.parse_args()

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

    print(f"scale-out: {args.requests} webhooks (10 % redeliveries) over {args.connections} connections; "
          f"push: {args.sockets} sockets x {args.push_messages} messages; "
          f"{os.cpu_count()} cores shared by servers, PostgreSQL, Redis and the load generator")
    print(f"  {'configuration':<26} {'webhooks/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
          f" {'push p50':>9} {'push p99':>9}   stored once")
    for row in rows:
        load = row.load
        once = "yes" if row.stored == row.expected and row.duplicates == 0 else f"NO ({row.stored}/{row.expected})"
        print(f"  {row.name:<26} {load.throughput:10.0f} {load.pct(50):8.1f} {load.pct(99):8.1f} {load.errors:7d}"
              f" {pct(row.push, 50):7.1f}ms {pct(row.push, 99):7.1f}ms   {once}")
    sqlite, pg, scaled = (row.load.throughput for row in rows)
    print(f"  throughput ratios: PostgreSQL / SQLite {pg / sqlite:.2f}x; 2 x PG+Redis / 1 x PG {scaled / pg:.2f}x; "
          f"2 x PG+Redis / SQLite {scaled / sqlite:.2f}x")
    print(f"  push p99 ratios: PostgreSQL / SQLite {pct(rows[1].push, 99) / pct(rows[0].push, 99):.2f}x; "
          f"2 x PG+Redis / 1 x PG {pct(rows[2].push, 99) / pct(rows[1].push, 99):.2f}x")


if __name__ == "__main__":
    main()
