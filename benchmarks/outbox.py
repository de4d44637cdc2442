"""Outbox drain rate and enqueue→accepted latency against the Twilio sandbox, beside the
sandbox's own capacity (the official client hammering it directly) as the ceiling.

    uv run python benchmarks/outbox.py [--replies 2000] [--steady 600] [--rate 150]

The sandbox runs as its own process on 127.0.0.1; the outbox runs in this process on SQLite,
through the same code the app runs (claim, re-check, send with the official twilio client,
record). Target (issue 3): >= 300 sends/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

from _harness import ACCOUNT_SID, AUTH_TOKEN, ROOT, temp_sqlite_url

from inbox import outbound
from inbox.db import migrate
from inbox.runtime import Runtime
from inbox.settings import load_settings
from inbox.twilio.client import OutgoingMessage, TwilioSender
from tests.support.servers import free_port, wait_until_up

SERVICE = "MG" + "4" * 32
SANDBOX = f"""
import uvicorn
from inbox.twilio.sandbox import SandboxConfig, TwilioSandbox
sandbox = TwilioSandbox(SandboxConfig(account_sid="{ACCOUNT_SID}", auth_token="{AUTH_TOKEN}",
    service_numbers={{"{SERVICE}": ["+15005550006"]}}, callback_delays=(3600, 3600)))
from litestar import get
@get("/healthz")
async def healthz() -> str:
    return "ok"
sandbox.app.register(healthz)
uvicorn.run(sandbox.app, host="127.0.0.1", port=int(__import__("sys").argv[1]), log_level="error")
"""


async def sandbox_ceiling(url: str, count: int, concurrency: int = 32) -> float:
    sender = TwilioSender(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, base_url=url)
    await sender.start()
    semaphore = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with semaphore:
            await sender.send(
                OutgoingMessage(
                    to=f"+1415555{n % 10000:04d}",
                    body=f"ceiling {n}",
                    messaging_service_sid=SERVICE,
                    from_="+15005550006",
                )
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    elapsed = time.perf_counter() - started
    await sender.aclose()
    return count / elapsed


async def seed_conversations(runtime: Runtime, customers: int) -> list[int]:
    from inbox import store

    ids = []
    async with runtime.db.write() as session:
        for n in range(customers):
            customer = await store.upsert_customer(session, f"+1212555{n:04d}", None)
            ids.append((await store.ensure_conversation(session, customer.id)).id)
        await session.commit()
    return ids


async def queue(runtime: Runtime, conversation_ids: list[int], count: int, tag: str) -> None:
    for n in range(count):
        await outbound.queue(
            runtime.db,
            runtime.bus,
            runtime.settings,
            runtime.outbox_waker,
            outbound.ReplyRequest(
                conversation_id=conversation_ids[n % len(conversation_ids)], staff_id=None, body=f"{tag} reply {n}"
            ),
        )


async def accepted_latencies(runtime: Runtime, tag: str) -> list[float]:
    from sqlalchemy import select

    from inbox.models import Message

    async with runtime.db.read() as session:
        rows = (
            await session.execute(
                select(Message.created_at, Message.updated_at).where(
                    Message.body.like(f"{tag} reply %"), Message.sid.is_not(None)
                )
            )
        ).all()
    return [(updated - created).total_seconds() for created, updated in rows]


async def run(args, sandbox_url: str, database_url: str) -> None:
    settings = load_settings(
        _env_file=None,
        INBOX_DATABASE_URL=database_url,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_BASE_URL=sandbox_url,
        TWILIO_MESSAGING_SERVICE_SID=SERVICE,
        TWILIO_PHONE_NUMBER="+15005550006",
        INBOX_PUBLIC_URL=f"http://127.0.0.1:{free_port()}",
    )
    runtime = Runtime.build(settings, run_outbox=False)
    await runtime.start()
    try:
        conversations = await seed_conversations(runtime, 200)
        await queue(runtime, conversations, args.replies, "drain")
        started = time.perf_counter()
        await runtime.outbox.drain()
        drain_rate = args.replies / (time.perf_counter() - started)

        runtime.outbox.start()  # steady state: replies arrive at a fixed rate while the worker runs
        interval = 1 / args.rate
        for n in range(args.steady):
            await outbound.queue(
                runtime.db,
                runtime.bus,
                runtime.settings,
                runtime.outbox_waker,
                outbound.ReplyRequest(
                    conversation_id=conversations[n % len(conversations)], staff_id=None, body=f"steady reply {n}"
                ),
            )
            await asyncio.sleep(interval)
        deadline = time.monotonic() + 30
        while (await runtime.outbox.depth())[0] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        latencies = await accepted_latencies(runtime, "steady")
    finally:
        await runtime.stop()
    ceiling = await sandbox_ceiling(sandbox_url, args.replies)
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    print(f"outbox, one process on SQLite, against the sandbox in its own process ({args.replies} queued replies):")
    print(f"  inbox outbox drain          {drain_rate:8.0f} sends/s   (target >= 300)")
    print(f"  sandbox ceiling (official client, 32 in flight, no database) {ceiling:8.0f} sends/s")
    print(f"  ratio outbox/ceiling        {drain_rate / ceiling:8.2f}x")
    print(
        f"  enqueue -> accepted at {args.rate}/s steady ({len(latencies)} replies): "
        f"p50 {q[49] * 1000:.1f} ms   p99 {q[98] * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=2000)
    parser.add_argument("--steady", type=int, default=600)
    parser.add_argument("--rate", type=float, default=150.0)
    args = parser.parse_args()
    port = free_port()
    sandbox = subprocess.Popen(
        [sys.executable, "-c", SANDBOX, str(port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    database_url, folder = temp_sqlite_url()
    try:
        wait_until_up(f"http://127.0.0.1:{port}", timeout=30)
        migrate(database_url)
        asyncio.run(run(args, f"http://127.0.0.1:{port}", database_url))
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
        folder.cleanup()


if __name__ == "__main__":
    main()
