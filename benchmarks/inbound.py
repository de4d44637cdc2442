"""Inbound webhook throughput and webhook→websocket latency, beside Twilio's Flask pattern.

    uv run python benchmarks/inbound.py [--rounds 3] [--requests 6000] [--connections 32] [--sockets 20]

The inbox (one `inbox serve` process on SQLite, doing all its work: signature, customer, thread,
message, events, commit, push) and the peer (Twilio's documented Flask receiver under gunicorn
with one worker: signature check and TwiML, storing nothing) take the same signed requests, 10 %
of them redeliveries, from the same load generator, in alternating rounds of this run; the
rounds of median throughput are compared.
Targets (issue 2): inbox ≥ 2× the peer's throughput, p99 ≤ 50 ms at 32 connections; push p99 ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from dataclasses import replace

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
    parser.add_argument("--requests", type=int, default=6000, help="per round and server")
    parser.add_argument("--rounds", type=int, default=3)
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
    inbox_rounds, peer_rounds = [], []
    try:
        warmup = 300
        asyncio.run(run_load("warm-up", inbox.url, signed_requests(inbox.url, warmup), 8))
        asyncio.run(run_load("warm-up", peer.url, signed_requests(peer.url, warmup), 8))
        # Rounds alternate between the two servers, so a machine that speeds up or slows down
        # (these are shared) moves both; the medians are compared.
        for round_number in range(1, args.rounds + 1):
            inbox_rounds.append(
                asyncio.run(
                    run_load(
                        f"inbox, round {round_number}",
                        inbox.url,
                        signed_requests(inbox.url, args.requests),
                        args.connections,
                    )
                )
            )
            peer_rounds.append(
                asyncio.run(
                    run_load(
                        f"peer, round {round_number}",
                        peer.url,
                        signed_requests(peer.url, args.requests),
                        args.connections,
                    )
                )
            )
        latencies = asyncio.run(push_latency([inbox.url], inbox.url, token, args.sockets, args.push_messages))
    finally:
        inbox.stop()
        peer.stop()
        folder.cleanup()

    print(
        f"inbound webhooks: {args.rounds} rounds of {args.requests} requests each (10 % redeliveries), "
        f"{args.connections} connections, {os.cpu_count()} cores shared by server and load generator"
    )
    for inbox_result, peer_result in zip(inbox_rounds, peer_rounds, strict=False):
        print("  " + inbox_result.line())
        print("  " + peer_result.line())
    inbox_median = replace(median_round(inbox_rounds), name="inbox (SQLite, stores all)")
    peer_median = replace(median_round(peer_rounds), name="peer (Flask, stores nothing)")
    print("  median rounds:")
    print("  " + inbox_median.line())
    print("  " + peer_median.line())
    ratios = [i.throughput / p.throughput for i, p in zip(inbox_rounds, peer_rounds, strict=False)]
    print(
        f"  throughput ratio inbox/peer: {inbox_median.throughput / peer_median.throughput:.2f}x "
        f"(rounds {min(ratios):.2f}-{max(ratios):.2f})   (target >= 2x; inbox p99 target <= 50 ms)"
    )
    print(
        f"webhook -> websocket push, {args.sockets} sockets, {args.push_messages} messages: "
        f"p50 {pct(latencies, 50):.1f} ms   p99 {pct(latencies, 99):.1f} ms   (target p99 <= 20 ms)"
    )


def median_round(rounds):
    """The round of median throughput (its latencies come with it)."""
    return sorted(rounds, key=lambda result: result.throughput)[len(rounds) // 2]


if __name__ == "__main__":
    main()
