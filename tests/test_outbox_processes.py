"""The outbox across real `inbox serve` processes: crashes, outages and two workers on one queue."""

from __future__ import annotations

import asyncio
import signal

import httpx

from inbox import outbound
from inbox.runtime import Runtime
from tests.conftest import make_settings
from tests.support.db import scalar
from tests.support.sandbox import SERVICE_SID, start_sandbox, wait_for
from tests.support.servers import ProcessServer, free_port, start_together
from tests.support.staff import create_staff, issue_token
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, post_twilio


def inbox_env(database_url: str, port: int, twilio_port: int) -> dict[str, str]:
    return {
        "INBOX_DATABASE_URL": database_url,
        "INBOX_SECRET_KEY": "s",
        "INBOX_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID,
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{twilio_port}",
    }


def test_twilio_down_then_process_killed_then_both_back_sends_once(database_url) -> None:
    port, twilio_port = free_port(), free_port()  # nothing listens on twilio_port yet: Twilio is down
    env = inbox_env(database_url, port, twilio_port)
    create_staff(database_url, "reception@example.com")
    token = issue_token(database_url, "reception@example.com")
    inbox = ProcessServer(env, port=port).start()
    sandbox = sandbox_server = None
    try:
        assert post_twilio(inbox.url, "inbound_sms").status_code == 200
        conversation_id = scalar(database_url, "SELECT id FROM conversations")
        reply = httpx.post(
            f"{inbox.url}/api/conversations/{conversation_id}/messages",
            json={"body": "Ready!"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert reply.status_code == 202
        message_id = reply.json()["id"]
        # Killed while it waits to retry (a kill in the middle of a send is the lease's business:
        # test_expired_lease_is_reconciled_then_sent_once covers that).
        wait_for(
            lambda: (
                (
                    scalar(
                        database_url,
                        "SELECT attempts FROM messages WHERE id = :id AND claimed_until IS NULL",
                        id=message_id,
                    )
                    or 0
                )
                >= 1
            ),
            message="a failed attempt while Twilio is down",
        )
        inbox.process.send_signal(signal.SIGKILL)  # no graceful anything
        inbox.stop()
        assert scalar(database_url, "SELECT status FROM messages WHERE id = :id", id=message_id) == "queued"

        sandbox, sandbox_server = start_sandbox(port=twilio_port)  # Twilio is back
        inbox = ProcessServer(env, port=port).start()  # and so is the inbox
        wait_for(
            lambda: scalar(database_url, "SELECT status FROM messages WHERE id = :id", id=message_id) == "delivered",
            timeout=30,
            message="delivered after the outage",
        )
        sent = [m for m in sandbox.conversation_with("+14155550123") if m["direction"] == "outbound-api"]
        assert len(sent) == 1 and sent[0]["body"] == "Ready!"
    finally:
        inbox.stop()
        if sandbox_server:
            sandbox_server.stop()
            asyncio.run(sandbox.aclose())


async def _queue_replies(database_url: str, conversation_ids: list[int], staff_id: int, per_conversation: int) -> None:
    runtime = Runtime.build(make_settings(database_url, TWILIO_ACCOUNT_SID="", TWILIO_AUTH_TOKEN=""))
    for n in range(per_conversation):
        for conversation_id in conversation_ids:
            await outbound.queue(
                runtime.db,
                runtime.bus,
                runtime.settings,
                runtime.outbox_waker,
                outbound.ReplyRequest(
                    conversation_id=conversation_id, staff_id=staff_id, body=f"Reply {n} to {conversation_id}"
                ),
            )
    await runtime.db.dispose()


def test_two_processes_drain_200_queued_replies_without_a_double_send(postgres_url) -> None:
    database_url = postgres_url
    sandbox, sandbox_server = start_sandbox()
    staff = create_staff(database_url, "reception@example.com")
    ports = [free_port(), free_port()]
    env = inbox_env(database_url, ports[0], int(sandbox_server.url.rsplit(":", 1)[1]))
    first = ProcessServer(env, port=ports[0]).start()
    for n in range(20):
        post_twilio(first.url, "inbound_sms", From=f"+1415555{n:04d}", MessageSid=f"SM{n:032x}")
    first.stop()  # the queue fills while nobody drains it
    conversation_ids = list(range(1, 21))
    asyncio.run(_queue_replies(database_url, conversation_ids, staff.id, per_conversation=10))
    assert scalar(database_url, "SELECT count(*) FROM messages WHERE status = 'queued'") == 200
    workers = start_together(ProcessServer(env, port=ports[0]), ProcessServer(env, port=ports[1]))
    try:
        wait_for(
            lambda: (
                scalar(database_url, "SELECT count(*) FROM messages WHERE direction = 'outbound' AND sid IS NOT NULL")
                == 200
            ),
            timeout=60,
            message="200 sent",
        )
        sent = [m for m in sandbox.messages.values() if m["direction"] == "outbound-api"]
        assert len(sent) == 200  # every POST to Twilio stored a message: none was sent twice
        assert len({m["body"] + m["to"] for m in sent}) == 200  # each reply exactly once
        assert scalar(database_url, "SELECT count(DISTINCT sid) FROM messages WHERE direction = 'outbound'") == 200
        # No attempts == 1 check: on a loaded machine a send can time out and be claimed again to
        # reconcile (found at Twilio, adopted); the sandbox's 200 distinct messages prove each POST once.
    finally:
        for worker in workers:
            worker.stop()
        sandbox_server.stop()
        asyncio.run(sandbox.aclose())
