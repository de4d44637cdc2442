"""A steady webhook load on PostgreSQL while many sockets are open and one of them reads slowly.

    uv run python benchmarks/load_postgres.py [--rate 200] [--seconds 60] [--sockets 200]
                                               [--measured 20] [--slow-delay 0.2]

One `inbox serve` on a fresh PostgreSQL database takes two runs of the same load, one after the
other: `--rate` signed inbound webhooks per second for `--seconds`, open loop (each is sent at its
scheduled time whatever the earlier ones are doing, and its latency counts from that time), 10 %
of them redeliveries of an earlier one, while `--sockets` websockets are open on /ws:
1. baseline: every socket reads as fast as it can;
2. slow: one of them reads one frame per `--slow-delay` seconds (the server closes it with 4000
   when it falls behind, and it reconnects with `?after=` as the browser does).
After each run: messages stored == unique SIDs sent (nothing lost, nothing twice; a webhook
answered with an error or not at all is Twilio's to redeliver, so `acked lost` counts only those
answered 200 and not stored), webhook
p50/p99, and the delivery p99 (webhook scheduled → frame read) on `--measured` of the fast
sockets (the rest are read and discarded, to keep the reader's own work small), then slow vs
baseline.

The sockets are read in a child process, so reading them does not delay the webhook generator,
by benchmarks/_ws_reader.py, which walks frames by their headers (a general client would spend
more CPU reading 200 x 400 frames/s than the server spends sending them, on the same cores);
both sides stamp times with time.time() on this machine. The admin URL is INBOX_TEST_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/test); the database is created and dropped here.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from urllib.parse import parse_qs, urlsplit

import aiohttp
import uvloop
from _harness import (
    INBOUND_PATH,
    Process,
    asyncpg_url,
    free_port,
    pct,
    pg_execute,
    signed_requests,
    staff_token,
    start_inbox,
)
from _ws_reader import SocketStats, read_socket

from tests.support.db import rows, scalar

ADMIN_URL = os.environ.get("INBOX_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("INBOX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


# ---- the sockets (child process) ----------------------------------------------------------------


async def _sockets_main(args: dict, pipe: Connection) -> None:
    addresses = [(urlsplit(url).hostname, urlsplit(url).port) for url in args["urls"]]
    stats = [SocketStats() for _ in range(args["sockets"])]
    slow = 0 if args["slow_delay"] else -1
    tasks = [
        asyncio.create_task(
            read_socket(
                *addresses[i % len(addresses)],  # spread over the processes, as a load balancer would
                args["token"],
                stats[i],
                measured=0 < i <= args["measured"],
                delay=args["slow_delay"] if i == slow else 0.0,
            )
        )
        for i in range(args["sockets"])
    ]
    await asyncio.sleep(2)  # every socket connected and subscribed
    pipe.send("ready")
    sent_at: dict[str, float] = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    measured = stats[1 : args["measured"] + 1]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(len(s.arrivals) < len(sent_at) for s in measured):
        await asyncio.sleep(0.2)  # the tail still on its way
    failed = [repr(task.exception()) for task in tasks if task.done() and task.exception() is not None]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = [s.arrivals[sid] - sent for s in measured for sid, sent in sent_at.items() if sid in s.arrivals]
    missing = sum(len(sent_at) - len(s.arrivals.keys() & sent_at.keys()) for s in measured)
    fast_reconnects = sum(s.reconnects for i, s in enumerate(stats) if i != slow)
    slow_stats = stats[slow] if slow >= 0 else None
    pipe.send(
        {
            "latencies": latencies,
            "failed": failed,
            "missing": missing,
            "fast_reconnects": fast_reconnects,
            "slow_frames": slow_stats.frames if slow_stats else None,
            "slow_reconnects": slow_stats.reconnects if slow_stats else None,
        }
    )


def _sockets_process(args: dict, pipe: Connection) -> None:
    uvloop.run(_sockets_main(args, pipe))


# ---- the webhooks (this process) ------------------------------------------------------------------


@dataclass
class Run:
    name: str
    sent: int
    unique: int
    stored: int
    duplicates: int
    errors: int
    acknowledged_lost: int  # answered 200 but not stored: lost (an error answer is Twilio's to redeliver)
    seconds: float
    webhook: list[float]
    delivery: list[float]
    missing: int
    fast_reconnects: int
    slow_frames: int | None
    slow_reconnects: int | None


async def _post_at_rate(
    urls: list[str], requests: list[tuple[bytes, dict[str, str]]], rate: float
) -> tuple[list, int, dict, set, float]:
    latencies: list[float] = []
    errors = 0
    acknowledged: set[str] = set()
    sent_at: dict[str, float] = {}
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def one(url: str, sid: str, body: bytes, headers: dict[str, str], scheduled: float) -> None:
            nonlocal errors
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    errors += response.status != 200
                    if response.status == 200:
                        acknowledged.add(sid)
            except (TimeoutError, aiohttp.ClientError):
                errors += 1
            latencies.append(time.perf_counter() - scheduled)

        tasks = []
        start = time.perf_counter()
        wall_start = time.time()
        for n, (body, headers) in enumerate(requests):
            scheduled = start + n / rate
            wait = scheduled - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            sid = parse_qs(body.decode())["MessageSid"][0]
            sent_at.setdefault(sid, wall_start + (scheduled - start))
            tasks.append(asyncio.create_task(one(urls[n % len(urls)], sid, body, headers, scheduled)))
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - start
    return latencies, errors, sent_at, acknowledged, seconds


def measure(name: str, servers: list[Process], database_url: str, token: str, args, slow_delay: float) -> Run:
    parent, child = multiprocessing.Pipe()
    readers = multiprocessing.get_context("spawn").Process(
        target=_sockets_process,
        args=(
            {
                "urls": [server.url for server in servers],
                "token": token,
                "sockets": args.sockets,
                "measured": args.measured,
                "slow_delay": slow_delay,
            },
            child,
        ),
        daemon=True,
    )
    readers.start()
    try:
        if not parent.poll(60):
            raise SystemExit("the socket readers did not start")
        assert parent.recv() == "ready"
        before = scalar(database_url, "SELECT count(*) FROM messages")
        requests = signed_requests(servers[0].url, int(args.rate * args.seconds))  # Twilio's one URL
        webhook, errors, sent_at, acknowledged, seconds = asyncio.run(
            _post_at_rate([server.url + INBOUND_PATH for server in servers], requests, args.rate)
        )
        parent.send(sent_at)
        if not parent.poll(120):
            raise SystemExit("the socket readers did not report")
        sockets = parent.recv()
        if sockets["failed"]:
            raise SystemExit(f"{len(sockets['failed'])} socket readers failed: {sockets['failed'][:3]}")
    finally:
        readers.join(timeout=30)
        if readers.is_alive():
            readers.terminate()
    stored = scalar(database_url, "SELECT count(*) FROM messages") - before
    duplicates = scalar(database_url, "SELECT count(*) - count(DISTINCT sid) FROM messages")
    stored_sids = {sid for (sid,) in rows(database_url, "SELECT sid FROM messages")}
    return Run(
        name,
        len(requests),
        len(sent_at),
        stored,
        duplicates,
        errors,
        len(acknowledged - stored_sids),
        seconds,
        webhook,
        sockets["latencies"],
        sockets["missing"],
        sockets["fast_reconnects"],
        sockets["slow_frames"],
        sockets["slow_reconnects"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--measured", type=int, default=20)
    parser.add_argument("--slow-delay", type=float, default=0.2)
    parser.add_argument("--processes", type=int, default=1, help="inbox processes behind Redis (INBOX_TEST_REDIS_URL)")
    args = parser.parse_args()

    admin = asyncpg_url(ADMIN_URL)
    database = f"inbox_bench_{uuid.uuid4().hex[:10]}"
    pg_url = admin.rsplit("/", 1)[0] + f"/{database}"
    asyncio.run(pg_execute(admin, f'CREATE DATABASE "{database}"'))
    runs: list[Run] = []
    servers: list[Process] = []
    ports = [free_port() for _ in range(args.processes)]
    # Two or more processes share the live events through Redis, as in a deployment behind a balancer.
    extra = {"INBOX_REDIS_URL": REDIS_URL} if args.processes > 1 else {}
    try:
        servers.extend(start_inbox(pg_url, port=port, public_port=ports[0], **extra) for port in ports)
        token = staff_token(pg_url)
        runs.append(measure("all sockets fast", servers, pg_url, token, args, slow_delay=0.0))
        runs.append(measure("one slow socket", servers, pg_url, token, args, slow_delay=args.slow_delay))
    finally:
        for server in servers:
            server.stop()
        asyncio.run(pg_execute(admin, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))

    print(
        f"load on PostgreSQL: {args.rate:.0f} webhooks/s for {args.seconds:.0f} s (10 % redeliveries), "
        f"{args.sockets} sockets open, delivery timed on {args.measured} of them; "
        f"{args.processes} inbox process(es); "
        f"{os.cpu_count()} cores shared by the server, PostgreSQL and the load generator"
    )
    print(
        f"  {'run':<18} {'sent/s':>6} {'unique':>6} {'stored':>6} {'twice':>5} {'errors':>6} {'acked lost':>10}"
        f" {'hook p50':>9} {'hook p99':>9} {'socket p99':>11} {'missed':>6}   slow socket"
    )
    for run in runs:
        once = "yes" if run.stored == run.unique and run.duplicates == 0 else "NO"
        slow = (
            "-"
            if run.slow_frames is None
            else f"{run.slow_frames} frames read, closed 4000 and resumed {run.slow_reconnects}x"
            if run.slow_reconnects
            else f"{run.slow_frames} frames read, not yet closed (the kernel's buffers still held its frames)"
        )
        print(
            f"  {run.name:<18} {run.sent / run.seconds:6.0f} {run.unique:6d} {run.stored:6d} {run.duplicates:5d}"
            f" {run.errors:6d} {run.acknowledged_lost:10d}"
            f" {pct(run.webhook, 50):7.1f}ms {pct(run.webhook, 99):7.1f}ms {pct(run.delivery, 99):9.1f}ms"
            f" {run.missing:6d}   {slow}   stored == unique: {once}"
        )
    base, slow_run = runs
    print(
        f"  the other sockets' delivery p99 with a slow socket / without: "
        f"{pct(slow_run.delivery, 99) / pct(base.delivery, 99):.2f}x "
        f"(p50 {pct(slow_run.delivery, 50):.1f} ms vs {pct(base.delivery, 50):.1f} ms); "
        f"fast sockets resumed after a 4000: {base.fast_reconnects} and {slow_run.fast_reconnects}"
    )


if __name__ == "__main__":
    main()
