"""Shared pieces of the benchmarks: servers on 127.0.0.1, signed request sets, a load generator.

Everything is bounded: a fixed number of requests, timeouts on every wait, and every process
started here is stopped here.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inbox.simulate import INBOUND_PATH, inbound_form  # noqa: E402
from inbox.twilio.signature import sign  # noqa: E402
from tests.support.servers import free_port, wait_until_up  # noqa: E402

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "c" * 32


@dataclass
class Process:
    name: str
    url: str
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def inbox_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INBOX_", "TWILIO_"))}
    env.update({
        "INBOX_DATABASE_URL": database_url,
        "INBOX_SECRET_KEY": "benchmark",
        "INBOX_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    })
    env.update(extra)
    return env


def start_inbox(database_url: str, *, port: int | None = None, public_port: int | None = None, **extra: str) -> Process:
    port = port or free_port()
    env = inbox_env(database_url, public_port or port, **extra)
    process = subprocess.Popen([sys.executable, "-m", "inbox.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, timeout=60, process=None)
    return Process("inbox", url, process)


def start_flask_peer() -> Process:
    port = free_port()
    env = {**os.environ, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_URL": f"http://127.0.0.1:{port}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
         "benchmarks.peers.flask_sms:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:  # the peer has no /healthz: a refused signature (403) means it is up
        try:
            import httpx

            if httpx.post(url + INBOUND_PATH, timeout=1).status_code == 403:
                break
        except Exception:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)
    return Process("flask peer", url, process)


def signed_requests(public_url: str, count: int, redelivery_ratio: float = 0.1) -> list[tuple[bytes, dict[str, str]]]:
    """`count` signed inbound webhooks; about `redelivery_ratio` of them repeat an earlier one."""
    url = public_url.rstrip("/") + INBOUND_PATH
    requests: list[tuple[bytes, dict[str, str]]] = []
    for n in range(count):
        if requests and n % round(1 / redelivery_ratio) == 0:
            requests.append(requests[secrets.randbelow(len(requests))])
            continue
        form = inbound_form(from_=f"+1415{secrets.randbelow(10**7):07d}", to="+15005550006",
                            body=f"Benchmark message {n}: is my order ready?", account_sid=ACCOUNT_SID)
        headers = {"X-Twilio-Signature": sign(AUTH_TOKEN, url, form),
                   "Content-Type": "application/x-www-form-urlencoded"}
        requests.append((urlencode(form).encode(), headers))
    return requests


@dataclass
class LoadResult:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1] * 1000

    def line(self) -> str:
        return (f"{self.name:<28} {self.throughput:8.0f} req/s   p50 {self.pct(50):6.1f} ms   "
                f"p99 {self.pct(99):6.1f} ms   errors {self.errors}")


async def run_load(name: str, target: str, requests: list[tuple[bytes, dict[str, str]]], connections: int) -> LoadResult:
    """Sends every request once over `connections` keep-alive connections; measures each."""
    url = target.rstrip("/") + INBOUND_PATH
    queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def worker() -> None:
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
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return LoadResult(name, len(requests), elapsed, latencies, errors)


def temp_sqlite_url() -> tuple[str, tempfile.TemporaryDirectory]:
    folder = tempfile.TemporaryDirectory(prefix="inbox-bench-")
    return f"sqlite+aiosqlite:///{folder.name}/inbox.db", folder
