"""Inbound webhook throughput and webhook→websocket latency, beside Twilio's Flask pattern.

    uv run python benchmarks/inbound.py [--requests 6000] [--connections 32] [--sockets 20]

The inbox (one `inbox serve` process on SQLite, doing all its work: signature, customer, thread,
message, events, commit, push) and the peer (Twilio's documented Flask receiver under gunicorn
with one worker: signature check and TwiML, storing nothing) take the same signed requests, 10 %
of them redeliveries, from the same load generator, one after the other in this run.
Targets (issue 2): inbox ≥ 2× the peer's throughput, p99 ≤ 50 ms at 32 connections; push p99 ≤ 20 ms.
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

import aiohttp
from _harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    ROOT,
    inbox_env,
    run_load,
    signed_requests,
    start_flask_peer,
    start_inbox,
    temp_sqlite_url,
)

from inbox.simulate import INBOUND_PATH, inbound_form
from inbox.twilio.signature import sign


def staff_token(database_url: str) -> str:
    env = inbox_env(database_url, 8000)
    subprocess.run([sys.executable, "-m", "inbox.cli", "staff", "add", "bench@example.com", "--role", "receptionist"],
                   input="benchmark password\n", text=True, env=env, cwd=ROOT, check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-m", "inbox.cli", "staff", "token", "bench@example.com"], text=True,
                            env=env, cwd=ROOT, check=True, capture_output=True)
    return result.stdout.strip()


async def push_latency(base_url: str, token: str, sockets: int, messages: int) -> list[float]:
    """Opens `sockets` websockets, posts `messages` webhooks one by one, and times each arrival."""
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    received = 0
    ws_url = base_url.replace("http://", "ws://") + "/ws"
    async with aiohttp.ClientSession() as session:
        connections = [await session.ws_connect(ws_url, headers={"Authorization": f"Bearer {token}"})
                       for _ in range(sockets)]

        async def reader(ws) -> None:
            nonlocal received
            async for frame in ws:
                event = json.loads(frame.data)
                if event["type"] != "message.created":
                    continue
                arrived = time.perf_counter()
                latencies.append(arrived - sent_at[event["data"]["message"]["sid"]])
                received += 1
                if received == sockets * messages:
                    done.set()

        readers = [asyncio.create_task(reader(ws)) for ws in connections]
        url = base_url + INBOUND_PATH
        for n in range(messages):
            form = inbound_form(from_=f"+1212555{n:04d}", to="+15005550006", body=f"push {n}", account_sid=ACCOUNT_SID)
            headers = {"X-Twilio-Signature": sign(AUTH_TOKEN, url, form)}
            sent_at[form["MessageSid"]] = time.perf_counter()
            async with session.post(url, data=form, headers=headers) as response:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sockets", type=int, default=20)
    parser.add_argument("--push-messages", type=int, default=300)
    args = parser.parse_args()

    database_url, folder = temp_sqlite_url()
    from inbox.db import migrate

    migrate(database_url)
    token = staff_token(database_url)
    inbox = start_inbox(database_url)
    peer = start_flask_peer()
    try:
        warmup = 300
        asyncio.run(run_load("warm-up", inbox.url, signed_requests(inbox.url, warmup), 8))
        asyncio.run(run_load("warm-up", peer.url, signed_requests(peer.url, warmup), 8))
        inbox_result = asyncio.run(run_load("inbox (SQLite, stores all)", inbox.url,
                                            signed_requests(inbox.url, args.requests), args.connections))
        peer_result = asyncio.run(run_load("peer (Flask, stores nothing)", peer.url,
                                           signed_requests(peer.url, args.requests), args.connections))
        latencies = asyncio.run(push_latency(inbox.url, token, args.sockets, args.push_messages))
    finally:
        inbox.stop()
        peer.stop()
        folder.cleanup()

    print(f"inbound webhooks: {args.requests} requests (10 % redeliveries), {args.connections} connections, "
          f"{os.cpu_count()} cores shared by server and load generator")
    print("  " + inbox_result.line())
    print("  " + peer_result.line())
    ratio = inbox_result.throughput / peer_result.throughput
    print(f"  throughput ratio inbox/peer: {ratio:.2f}x   (target >= 2x; inbox p99 target <= 50 ms)")
    print(f"webhook -> websocket push, {args.sockets} sockets, {args.push_messages} messages: "
          f"p50 {pct(latencies, 50):.1f} ms   p99 {pct(latencies, 99):.1f} ms   (target p99 <= 20 ms)")


if __name__ == "__main__":
    main()
