"""The Twilio sandbox served on 127.0.0.1, and an inbox wired to it, for reply tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from inbox.outbox import OutboxConfig
from inbox.twilio.sandbox import SandboxConfig, TwilioSandbox
from tests.support.db import scalar
from tests.support.loop import run
from tests.support.servers import ThreadServer
from tests.support.staff import create_staff, issue_token
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN

SERVICE_SID = "MG" + "4" * 32
POOL = ["+15005550006", "+15005550007", "whatsapp:+14155238886"]
FAST_OUTBOX = OutboxConfig(backoff_base=0.05, backoff_cap=0.5, poll_interval=0.05)


def recording(app, seen: list[tuple[str, str, bytes]]):
    """The sandbox's ASGI app, keeping every HTTP request it receives: (method, path, body)."""

    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        chunks: list[bytes] = []

        async def replay():
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                seen.append((scope["method"], scope["path"], b"".join(chunks)))
            return message

        return await app(scope, replay, send)

    return wrapped


def start_sandbox(
    port: int | None = None, seen: list[tuple[str, str, bytes]] | None = None
) -> tuple[TwilioSandbox, ThreadServer]:
    """The sandbox on its own port; with `seen`, every request it receives is kept there."""
    sandbox = TwilioSandbox(
        SandboxConfig(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            service_numbers={SERVICE_SID: POOL},
            callback_delays=(0.02, 0.04),
        )
    )
    app = sandbox.app if seen is None else recording(sandbox.app, seen)
    server = ThreadServer(app, port=port).start()
    return sandbox, server


@dataclass
class Wired:
    """An inbox and its sandbox, pointing at each other, with a receptionist signed in to the API."""

    inbox: ThreadServer
    sandbox: TwilioSandbox
    sandbox_url: str
    db: str  # the inbox's database URL
    token: str  # reception@example.com's API token
    api: httpx.Client  # the API as reception@example.com
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)  # every request the sandbox received


@contextmanager
def wire(
    serve: Callable[..., ThreadServer], database_url: str, *, receptionist: str | None = None, **env: str
) -> Iterator[Wired]:
    """An inbox (fast outbox) wired to a fresh sandbox that records what it receives; the sandbox's
    customers write to the inbox's webhook. Staff: reception@example.com (receptionist)."""
    seen: list[tuple[str, str, bytes]] = []
    sandbox, sandbox_server = start_sandbox(seen=seen)
    try:
        inbox = serve(
            database_url, runtime_options={"outbox_config": FAST_OUTBOX}, **sandbox_settings(sandbox_server.url, **env)
        )
        sandbox.config.inbound_webhook_url = inbox.url + "/webhooks/twilio/inbound"
        create_staff(database_url, "reception@example.com", name=receptionist)  # None: "reception"
        token = issue_token(database_url, "reception@example.com")
        with httpx.Client(base_url=inbox.url, headers={"Authorization": f"Bearer {token}"}, timeout=15) as api:
            yield Wired(inbox, sandbox, sandbox_server.url, database_url, token, api, seen)
    finally:
        sandbox_server.stop()
        run(sandbox.aclose())


CUSTOMER = "+14155550123"


def customer_writes(wired: Wired, body: str, *, from_: str = CUSTOMER, to: str = "+15005550007", **extra: str) -> int:
    """A customer texts the business through the sandbox (a signed webhook to the inbox); returns
    the id of their conversation."""
    result = run(wired.sandbox.receive_from_customer(from_=from_, to=to, body=body, **extra))
    assert result["webhook_status"] == 200, result
    return scalar(
        wired.db,
        "SELECT c.id FROM conversations c JOIN customers cu ON cu.id = c.customer_id WHERE cu.phone = :phone",
        phone=from_.removeprefix("whatsapp:"),
    )


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
