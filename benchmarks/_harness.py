"""Shared pieces of the benchmarks: servers on 127.0.0.1, signed request sets, a load generator.

Everything is bounded: a fixed number of requests, timeouts on every wait, and every process
started here is stopped here.
"""

from __future__ import annotations

import asyncio
import json
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


def asyncpg_url(url: str) -> str:
    """A PostgreSQL URL as SQLAlchemy's asyncpg dialect wants it."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise SystemExit(f"not a PostgreSQL URL: {url}")


async def pg_execute(url: str, *statements: str) -> None:
    """Statements outside a transaction (CREATE/DROP DATABASE), on a connection of their own."""
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def inbox_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INBOX_", "TWILIO_"))}
    env.update(
        {
            "INBOX_DATABASE_URL": database_url,
            "INBOX_SECRET_KEY": "benchmark",
            "INBOX_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        }
    )
    env.update(extra)
    return env


def start_inbox(database_url: str, *, port: int | None = None, public_port: int | None = None, **extra: str) -> Process:
    port = port or free_port()
    env = inbox_env(database_url, public_port or port, **extra)
    process = subprocess.Popen(
        [sys.executable, "-m", "inbox.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, timeout=60, process=None)
    return Process("inbox", url, process)


def start_flask_peer() -> Process:
    port = free_port()
    env = {**os.environ, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_URL": f"http://127.0.0.1:{port}"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            "1",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "benchmarks.peers.flask_sms:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
    every = round(1 / redelivery_ratio) if redelivery_ratio else 0
    for n in range(count):
        if requests and every and n % every == 0:
            requests.append(requests[secrets.randbelow(len(requests))])
            continue
        form = inbound_form(
            from_=f"+1415{secrets.randbelow(10**7):07d}",
            to="+15005550006",
            body=f"Benchmark message {n}: is my order ready?",
            account_sid=ACCOUNT_SID,
        )
        headers = {
            "X-Twilio-Signature": sign(AUTH_TOKEN, url, form),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        requests.append((urlencode(form).encode(), headers))
    return requests


@dataclass
class LoadResult:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    server_cpu: float | None = None  # seconds of CPU, when the caller measured them
    client_cpu: float | None = None

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1] * 1000

    def line(self) -> str:
        return (
            f"{self.name:<28} {self.throughput:8.0f} req/s   p50 {self.pct(50):6.1f} ms   "
            f"p99 {self.pct(99):6.1f} ms   errors {self.errors}"
        ) + (
            f"   server {1000 * self.server_cpu / self.requests:5.2f} ms CPU/req   "
            f"client {1000 * self.client_cpu / self.requests:5.2f} ms CPU/req"
            if self.server_cpu is not None and self.client_cpu is not None
            else ""
        )


async def run_load(
    name: str, targets: str | list[str], requests: list[tuple[bytes, dict[str, str]]], connections: int
) -> LoadResult:
    """Every request once over `connections` keep-alive connections; connection i posts to target i mod n."""
    targets = [targets] if isinstance(targets, str) else targets
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


def staff_token(database_url: str) -> str:
    env = inbox_env(database_url, 8000)
    subprocess.run(
        [sys.executable, "-m", "inbox.cli", "staff", "add", "bench@example.com", "--role", "receptionist"],
        input="benchmark password\n",
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [sys.executable, "-m", "inbox.cli", "staff", "token", "bench@example.com"],
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return result.stdout.strip()


async def push_latency(targets: list[str], public_url: str, token: str, sockets: int, messages: int) -> list[float]:
    """`sockets` websockets spread over the targets; `messages` webhooks, one at a time, posted to
    the targets in turn; each arrival on each socket timed from the moment its webhook was sent."""
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    received = 0
    async with aiohttp.ClientSession() as session:
        connections = [
            await session.ws_connect(
                targets[i % len(targets)].replace("http://", "ws://") + "/ws",
                headers={"Authorization": f"Bearer {token}"},
            )
            for i in range(sockets)
        ]

        async def reader(ws) -> None:
            nonlocal received
            async for frame in ws:
                event = json.loads(frame.data)
                # Only this function's messages: the last answers of a load run may still be landing.
                if event["type"] != "message.created" or event["data"]["message"]["sid"] not in sent_at:
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


def temp_sqlite_url() -> tuple[str, tempfile.TemporaryDirectory]:
    folder = tempfile.TemporaryDirectory(prefix="inbox-bench-")
    return f"sqlite+aiosqlite:///{folder.name}/inbox.db", folder
