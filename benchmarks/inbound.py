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
import os

from _harness import (
    pct,
    push_latency,
    run_load,
    signed_requests,
    staff_token,
    start_flask_peer,
    start_inbox,
    temp_sqlite_url,
)



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
        latencies = asyncio.run(push_latency([inbox.url], inbox.url, token, args.sockets, args.push_messages))
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
