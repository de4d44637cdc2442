"""Signed webhooks' latency while clients flood the sign-in form (issue 11, finding 1).

    uv run python benchmarks/login_flood.py [--webhooks 300] [--flooders 0,6,16]

One `inbox serve` process on SQLite. For each flood level, that many clients post wrong passwords
to /login in a loop, each request from a new client address (X-Forwarded-For, with
INBOX_TRUSTED_PROXIES=127.0.0.1): the worst case, since no address is throttled before its hash is
checked. Meanwhile one connection posts signed webhooks one after another; their p50/p99 are
printed beside the figures with no flood (the peer: the same process unloaded).
Before the fix: 6 ms p50 unloaded, 959 ms with 6 flooders, 3.6 s with 16.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import time

import aiohttp
from _harness import pct, signed_requests, staff_token, start_inbox, temp_sqlite_url

INBOUND = "/webhooks/twilio/inbound"


async def flood(url: str, stop: asyncio.Event, counts: dict[str, int]) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async with session.get(url + "/login") as page:
            token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text()).group(1)
        while not stop.is_set():
            address = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(256)}"
            data = {"email": "bench@example.com", "password": secrets.token_hex(6), "csrf_token": token}
            async with session.post(url + "/login", data=data, headers={"X-Forwarded-For": address}) as answer:
                await answer.read()
                counts[str(answer.status)] = counts.get(str(answer.status), 0) + 1


async def webhooks(url: str, requests) -> list[float]:
    latencies = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        for body, headers in requests:
            started = time.perf_counter()
            async with session.post(url + INBOUND, data=body, headers=headers) as answer:
                await answer.read()
                assert answer.status == 200, answer.status
            latencies.append(time.perf_counter() - started)
    return latencies


async def level(url: str, flooders: int, requests) -> tuple[list[float], dict[str, int]]:
    stop, counts = asyncio.Event(), {}
    tasks = [asyncio.create_task(flood(url, stop, counts)) for _ in range(flooders)]
    if flooders:
        while sum(counts.values()) < flooders:  # every flooder is hashing before we measure
            await asyncio.sleep(0.05)
    try:
        return await webhooks(url, requests), counts
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=300, help="per flood level")
    parser.add_argument("--flooders", default="0,6,16")
    args = parser.parse_args()
    database_url, folder = temp_sqlite_url()
    from inbox.db import migrate

    migrate(database_url)
    staff_token(database_url)  # creates bench@example.com
    inbox = start_inbox(database_url, INBOX_TRUSTED_PROXIES="127.0.0.1")
    try:
        for flooders in (int(n) for n in args.flooders.split(",")):
            requests = signed_requests(inbox.url, args.webhooks, redelivery_ratio=0.5)
            latencies, counts = asyncio.run(level(inbox.url, flooders, requests))
            print(
                f"{flooders:3d} flooders   webhook p50 {pct(latencies, 50):7.1f} ms   p99 {pct(latencies, 99):7.1f} ms"
                f"   sign-in answers {dict(sorted(counts.items()))}"
            )
    finally:
        inbox.stop()
        folder.cleanup()


if __name__ == "__main__":
    main()
