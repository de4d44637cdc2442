"""The Twilio sandbox served on 127.0.0.1, and an inbox wired to it, for reply tests."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from inbox.outbox import OutboxConfig
from inbox.twilio.sandbox import SandboxConfig, TwilioSandbox
from tests.support.servers import ThreadServer
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN

SERVICE_SID = "MG" + "4" * 32
POOL = ["+15005550006", "+15005550007", "whatsapp:+14155238886"]
FAST_OUTBOX = OutboxConfig(backoff_base=0.05, backoff_cap=0.5, poll_interval=0.05)


def start_sandbox(port: int | None = None) -> tuple[TwilioSandbox, ThreadServer]:
    sandbox = TwilioSandbox(
        SandboxConfig(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            service_numbers={SERVICE_SID: POOL},
            callback_delays=(0.02, 0.04),
        )
    )
    server = ThreadServer(sandbox.app, port=port).start()
    return sandbox, server


@dataclass
class Wired:
    """An inbox and its sandbox, pointing at each other."""

    inbox: ThreadServer
    sandbox: TwilioSandbox
    sandbox_server: ThreadServer


def sandbox_settings(sandbox_url: str, **extra: str) -> dict[str, str]:
    return {"TWILIO_API_BASE_URL": sandbox_url, "TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID, **extra}


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


def run_in(loop: asyncio.AbstractEventLoop | None, coroutine):
    return asyncio.run(coroutine) if loop is None else asyncio.run_coroutine_threadsafe(coroutine, loop).result(15)
