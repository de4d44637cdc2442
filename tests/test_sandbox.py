"""The Twilio sandbox, driven over real HTTP by the official twilio client (as the inbox drives Twilio).

Every server here (the sandbox, a small receiver standing in for the inbox's webhooks) runs under
uvicorn on 127.0.0.1 on a free port, inside the test's event loop, and is stopped by the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
import uvicorn
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from inbox.twilio.sandbox import SandboxConfig, TwilioSandbox

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "b2" * 16
API_KEY, API_SECRET = "SK" + "c3" * 16, "d4" * 16
SERVICE = "MG" + "e5" * 16
POOL = ["+15005550006", "+15005550007", "+15005550008", "whatsapp:+14155238886"]
CUSTOMER = "+15551230001"
WA_CUSTOMER = "whatsapp:+15551230002"

# twilio's async client passes aiohttp.BasicAuth as `auth=`, both deprecated in aiohttp 3.14; the
# warnings are attributed to twilio's module, so pyproject's "aiohttp.*" filter does not catch them.
pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]


# --- servers ---------------------------------------------------------------------------------------


@dataclass
class Served:
    """An ASGI app under uvicorn on a free 127.0.0.1 port, in this test's event loop."""

    url: str
    server: uvicorn.Server
    task: asyncio.Task
    sock: socket.socket

    @classmethod
    async def start(cls, app) -> Served:
        sock = socket.socket()
        # asyncio sets TCP_NODELAY on sockets it binds, not on one handed to it: without this every
        # answer (headers, then body) waits ~40 ms on the peer's delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2))
        served = cls(
            f"http://127.0.0.1:{sock.getsockname()[1]}", server, asyncio.create_task(server.serve(sockets=[sock])), sock
        )
        try:
            await wait_for(lambda: server.started or served.task.done(), what="server start")
            assert not served.task.done(), "the server did not start"
        except BaseException:
            await stop(served)
            raise
        return served


async def stop(*servers: Served) -> None:
    """Stops them together (each takes a few uvicorn ticks to wind down)."""
    for served in servers:
        served.server.should_exit = True
    await asyncio.wait_for(asyncio.gather(*(served.task for served in servers)), 10)
    for served in servers:
        served.sock.close()


@contextlib.asynccontextmanager
async def serving(app) -> AsyncIterator[str]:
    served = await Served.start(app)
    try:
        yield served.url
    finally:
        await stop(served)


@dataclass
class Received:
    url: str  # the URL as called, query included: what the signature covers
    pairs: list[tuple[str, str]]
    headers: dict[str, str]

    @property
    def form(self) -> dict[str, str]:
        return dict(self.pairs)

    def multidict(self) -> _MultiDict:
        return _MultiDict(self.pairs)


class _MultiDict(dict):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        for name, value in pairs:
            self.setdefault(name, []).append(value)

    def getall(self, name: str) -> list[str]:
        return self[name]


@dataclass
class Receiver:
    """A stand-in for the inbox's webhook endpoints: records every POST, answers as told."""

    base_url: str = ""
    requests: list[Received] = field(default_factory=list)
    answer_status: int = 200
    answer_body: str = ""
    answer_type: str = "text/plain"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        query = scope["query_string"].decode()
        self.requests.append(
            Received(
                url=self.base_url + scope["path"] + (f"?{query}" if query else ""),
                pairs=parse_qsl(body.decode(), keep_blank_values=True),
                headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            )
        )
        await send(
            {
                "type": "http.response.start",
                "status": self.answer_status,
                "headers": [(b"content-type", self.answer_type.encode())],
            }
        )
        await send({"type": "http.response.body", "body": self.answer_body.encode()})

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.url.split("?")[0] == self.base_url + path]


async def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def is_signed(request: Received, token: str = AUTH_TOKEN) -> bool:
    signature = request.headers.get("x-twilio-signature")
    return bool(signature) and RequestValidator(token).validate(request.url, request.multidict(), signature)


@dataclass
class Env:
    sandbox: TwilioSandbox
    url: str
    receiver: Receiver
    clients: list[AsyncTwilioHttpClient]

    def client(self, username: str = ACCOUNT_SID, password: str = AUTH_TOKEN, account_sid: str | None = None) -> Client:
        http = AsyncTwilioHttpClient(timeout=5)
        self.clients.append(http)
        client = Client(username, password, account_sid, http_client=http)
        client.api.base_url = self.url
        return client

    @property
    def status_url(self) -> str:
        return self.receiver.base_url + "/webhooks/twilio/status?tenant=1"

    def statuses(self, sid: str) -> list[str]:
        return [
            r.form["MessageStatus"] for r in self.receiver.at("/webhooks/twilio/status") if r.form["MessageSid"] == sid
        ]


def config(receiver_url: str, **overrides) -> SandboxConfig:
    values: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "api_keys": {API_KEY: API_SECRET},
        "messaging_service_sids": {SERVICE},
        "service_numbers": {SERVICE: list(POOL)},
        "inbound_webhook_url": receiver_url + "/webhooks/twilio/inbound",
        "callback_delays": (0.02, 0.03),
    }
    values.update(overrides)
    return SandboxConfig(**values)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    receiver = Receiver()
    receiving = await Served.start(receiver)
    receiver.base_url = receiving.url
    sandbox = TwilioSandbox(config(receiving.url))
    try:
        serving_sandbox = await Served.start(sandbox.app)
    except BaseException:
        await stop(receiving)
        raise
    environment = Env(sandbox, serving_sandbox.url, receiver, [])
    try:
        yield environment
    finally:
        for http in environment.clients:
            await http.close()
        await sandbox.aclose()
        await stop(serving_sandbox, receiving)


async def refused(call) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        await call
    return caught.value


# --- creating messages --------------------------------------------------------------------------


async def test_a_create_answers_twilios_message_json(env: Env) -> None:
    client = env.client()
    message = await client.messages.create_async(to=CUSTOMER, from_="+15005550006", body="Hello there")

    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert (message.status, message.from_, message.to, message.body) == (
        "queued",
        "+15005550006",
        CUSTOMER,
        "Hello there",
    )
    assert message.direction == "outbound-api" and message.account_sid == ACCOUNT_SID
    assert message.num_segments == "1" and message.num_media == "0" and message.error_code is None
    assert message.date_created is not None and message.date_sent is None  # not sent yet, as at Twilio
    assert message.uri == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message.sid}.json"
    assert env.sandbox.messages[message.sid]["body"] == "Hello there"


async def test_a_pinned_sender_in_the_pool_is_used_and_becomes_sticky(env: Env) -> None:
    client = env.client()
    pinned = await client.messages.create_async(
        to=CUSTOMER, from_="+15005550008", messaging_service_sid=SERVICE, body="one"
    )
    assert (pinned.status, pinned.from_, pinned.messaging_service_sid) == ("queued", "+15005550008", SERVICE)

    later = await client.messages.create_async(to=CUSTOMER, messaging_service_sid=SERVICE, body="two")
    assert (later.status, later.from_) == ("accepted", None)  # Twilio names the sender once queued
    await wait_for(lambda: env.sandbox.messages[later.sid]["status"] == "delivered", what="delivery")
    fetched = await client.messages(later.sid).fetch_async()
    assert fetched.from_ == "+15005550008"

    # Without a pin, one recipient keeps one number.
    other = "+15551230099"
    senders = set()
    for _ in range(3):
        sent = await client.messages.create_async(to=other, messaging_service_sid=SERVICE, body="hi")
        await wait_for(lambda sid=sent.sid: env.sandbox.messages[sid]["from"] is not None, what="sender")
        senders.add(env.sandbox.messages[sent.sid]["from"])
    assert len(senders) == 1 and senders <= set(POOL) - {"whatsapp:+14155238886"}


async def test_a_sender_outside_the_pool_or_an_unknown_service_is_refused(env: Env) -> None:
    client = env.client()
    outside = await refused(
        client.messages.create_async(to=CUSTOMER, from_="+15005550010", messaging_service_sid=SERVICE, body="x")
    )
    assert (outside.status, outside.code) == (400, 21711)
    unknown = await refused(client.messages.create_async(to=CUSTOMER, messaging_service_sid="MG" + "0" * 32, body="x"))
    assert (unknown.status, unknown.code) == (404, 21701)
    assert env.sandbox.messages == {}


async def test_api_key_credentials_are_accepted(env: Env) -> None:
    client = env.client(username=API_KEY, password=API_SECRET, account_sid=ACCOUNT_SID)
    message = await client.messages.create_async(to=CUSTOMER, from_="+15005550006", body="via key")
    assert message.sid in env.sandbox.messages


@pytest.mark.parametrize(
    ("username", "password"),
    [
        (ACCOUNT_SID, "f" * 32),
        (API_KEY, "wrong"),
        ("SK" + "0" * 32, API_SECRET),
    ],
)
async def test_wrong_credentials_get_401_20003(env: Env, username: str, password: str) -> None:
    client = env.client(username=username, password=password, account_sid=ACCOUNT_SID)
    error = await refused(client.messages.create_async(to=CUSTOMER, from_="+15005550006", body="x"))
    assert (error.status, error.code) == (401, 20003)
    fetch_error = await refused(client.messages("SM" + "0" * 32).fetch_async())
    assert fetch_error.status == 401
    assert env.sandbox.messages == {}


async def test_another_accounts_path_is_404(env: Env) -> None:
    other = "AC" + "9" * 32
    client = env.client(username=API_KEY, password=API_SECRET, account_sid=other)
    error = await refused(client.messages.create_async(to=CUSTOMER, from_="+15005550006", body="x"))
    assert (error.status, error.code) == (404, 20404)


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550009", 21614),
        ("+15005550004", 21610),
        ("+15005550003", 21408),
        ("not-a-number", 21211),
    ],
)
async def test_magic_numbers_answer_twilios_errors(env: Env, to: str, code: int) -> None:
    error = await refused(env.client().messages.create_async(to=to, from_="+15005550006", body="x"))
    assert (error.status, error.code) == (400, code)
    assert env.sandbox.messages == {}


async def test_error_json_has_twilios_shape(env: Env) -> None:
    import httpx

    async with httpx.AsyncClient(auth=(ACCOUNT_SID, AUTH_TOKEN)) as http:
        response = await http.post(
            f"{env.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
            data={"To": "+15005550001", "From": "+15005550006", "Body": "x"},
        )
        missing = await http.get(f"{env.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Nothing.json")
    assert response.status_code == 400
    assert response.json() == {
        "code": 21211,
        "message": "The 'To' number +15005550001 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }
    assert missing.status_code == 404 and missing.json()["code"] == 20404


async def test_body_rules(env: Env) -> None:
    client = env.client()
    too_long = await refused(client.messages.create_async(to=CUSTOMER, from_="+15005550006", body="a" * 1601))
    assert (too_long.status, too_long.code) == (400, 21617)
    longest = await client.messages.create_async(to=CUSTOMER, from_="+15005550006", body="a" * 1600)
    assert longest.num_segments == "11"  # 1600 / 153
    emoji = await client.messages.create_async(to=CUSTOMER, from_="+15005550006", body="😀" * 36)
    assert emoji.num_segments == "2"  # 72 UTF-16 units > 70
    empty = await refused(client.messages.create_async(to=CUSTOMER, from_="+15005550006"))
    assert empty.code == 21602
    no_sender = await refused(client.messages.create_async(to=CUSTOMER, body="x"))
    assert no_sender.code == 21603
    cross_channel = await refused(client.messages.create_async(to=WA_CUSTOMER, from_="+15005550006", body="x"))
    assert cross_channel.code == 21910
    media_only = await client.messages.create_async(
        to=CUSTOMER, from_="+15005550006", media_url=["https://example.com/a.png"]
    )
    assert media_only.sid.startswith("MM") and media_only.num_media == "1"


async def test_fail_next_fails_that_many_creates_then_succeeds(env: Env) -> None:
    client = env.client()
    env.sandbox.fail_next(429, 20429, times=2, message="Too Many Requests")
    for _ in range(2):
        error = await refused(client.messages.create_async(to=CUSTOMER, from_="+15005550006", body="retry me"))
        assert (error.status, error.code) == (429, 20429)
    assert env.sandbox.messages == {}
    message = await client.messages.create_async(to=CUSTOMER, from_="+15005550006", body="retry me")
    assert list(env.sandbox.messages) == [message.sid]


async def test_fail_next_with_create_anyway_is_an_ambiguous_500(env: Env) -> None:
    env.sandbox.fail_next(500, 20500, create_anyway=True)
    error = await refused(env.client().messages.create_async(to=CUSTOMER, from_="+15005550006", body="maybe"))
    assert (error.status, error.code) == (500, 20500)
    assert [m["body"] for m in env.sandbox.messages.values()] == ["maybe"]


async def test_a_slow_answer_leaves_the_message_created(env: Env) -> None:
    env.sandbox.set_delay(1.0)
    client = env.client()
    started = time.monotonic()
    # AsyncTwilioHttpClient(timeout=…) is not applied to async requests in twilio 9.x: callers bound the wait.
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.messages.create_async(to=CUSTOMER, from_="+15005550006", body="slow"), 0.2)
    assert time.monotonic() - started < 0.9
    assert [m["body"] for m in env.sandbox.messages.values()] == ["slow"]
    env.sandbox.set_delay(0)
    listed = await client.messages.list_async(to=CUSTOMER)
    assert [m.body for m in listed] == ["slow"]


# --- status callbacks -----------------------------------------------------------------------------


async def test_status_callbacks_arrive_signed_and_in_order(env: Env) -> None:
    client = env.client()
    message = await client.messages.create_async(
        to=CUSTOMER, messaging_service_sid=SERVICE, body="tick", status_callback=env.status_url
    )
    await wait_for(lambda: len(env.statuses(message.sid)) == 3, what="three callbacks")

    assert env.statuses(message.sid) == ["queued", "sent", "delivered"]
    callbacks = env.receiver.at("/webhooks/twilio/status")
    for callback in callbacks:
        assert callback.url == env.status_url
        assert is_signed(callback), callback
        assert not is_signed(callback, token="0" * 32)
        form = callback.form
        assert form["SmsSid"] == message.sid and form["SmsStatus"] == form["MessageStatus"]
        assert (form["AccountSid"], form["To"], form["MessagingServiceSid"], form["ApiVersion"]) == (
            ACCOUNT_SID,
            CUSTOMER,
            SERVICE,
            "2010-04-01",
        )
        assert form["From"] in POOL and "ErrorCode" not in form
    fetched = await client.messages(message.sid).fetch_async()
    assert fetched.status == "delivered" and fetched.date_sent is not None


async def test_fail_delivery_ends_undelivered_or_failed_with_the_error_code(env: Env) -> None:
    client = env.client()
    env.sandbox.fail_delivery(CUSTOMER, status="undelivered", error_code=30003)
    env.sandbox.fail_delivery("+15551230077", status="failed", error_code=30006)
    undelivered = await client.messages.create_async(
        to=CUSTOMER, from_="+15005550006", body="x", status_callback=env.status_url
    )
    failed = await client.messages.create_async(
        to="+15551230077", from_="+15005550006", body="x", status_callback=env.status_url
    )
    await wait_for(
        lambda: len(env.statuses(undelivered.sid)) == 3 and len(env.statuses(failed.sid)) == 2, what="callbacks"
    )

    assert env.statuses(undelivered.sid) == ["queued", "sent", "undelivered"]
    assert env.statuses(failed.sid) == ["queued", "failed"]
    last = {r.form["MessageSid"]: r.form for r in env.receiver.at("/webhooks/twilio/status")}
    assert last[undelivered.sid]["ErrorCode"] == "30003" and last[failed.sid]["ErrorCode"] == "30006"
    fetched = await client.messages(undelivered.sid).fetch_async()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30003)


async def test_a_whatsapp_message_can_be_marked_read(env: Env) -> None:
    env.sandbox.open_whatsapp_window(WA_CUSTOMER)
    message = await env.client().messages.create_async(
        to=WA_CUSTOMER, from_="whatsapp:+14155238886", body="hi", status_callback=env.status_url
    )
    await wait_for(lambda: env.statuses(message.sid)[-1:] == ["delivered"], what="delivery")
    await env.sandbox.mark_read(message.sid)
    assert env.statuses(message.sid) == ["queued", "sent", "delivered", "read"]


# --- WhatsApp's 24-hour window ---------------------------------------------------------------------


async def test_whatsapp_free_form_needs_an_open_window_but_templates_do_not(env: Env) -> None:
    client = env.client()
    closed = await refused(client.messages.create_async(to=WA_CUSTOMER, from_="whatsapp:+14155238886", body="hello?"))
    assert (closed.status, closed.code) == (400, 63016)

    env.sandbox.config.content_templates["HX" + "1" * 32] = "Your order {{1}} is ready"
    template = await client.messages.create_async(
        to=WA_CUSTOMER, from_="whatsapp:+14155238886", content_sid="HX" + "1" * 32, content_variables='{"1": "A-17"}'
    )
    assert template.body == "Your order A-17 is ready"

    await env.sandbox.receive_from_customer(from_=WA_CUSTOMER, to="whatsapp:+14155238886", body="hi", deliver=False)
    opened = await client.messages.create_async(to=WA_CUSTOMER, from_="whatsapp:+14155238886", body="hello!")
    assert opened.status == "queued"

    env.sandbox.close_whatsapp_window(WA_CUSTOMER)
    again = await refused(
        client.messages.create_async(to=WA_CUSTOMER, messaging_service_sid=SERVICE, body="still there?")
    )
    assert again.code == 63016


async def test_the_window_error_can_arrive_as_a_failed_callback_instead(env: Env) -> None:
    env.sandbox.config.whatsapp_window_error_async = True
    message = await env.client().messages.create_async(
        to=WA_CUSTOMER, from_="whatsapp:+14155238886", body="hello?", status_callback=env.status_url
    )
    assert message.status == "queued"
    await wait_for(lambda: env.statuses(message.sid)[-1:] == ["failed"], what="failed callback")
    assert env.statuses(message.sid) == ["queued", "failed"]
    assert env.receiver.at("/webhooks/twilio/status")[-1].form["ErrorCode"] == "63016"


async def test_a_window_older_than_24_hours_is_closed(env: Env) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=25)
    await env.sandbox.receive_from_customer(
        from_=WA_CUSTOMER, to="whatsapp:+14155238886", body="hi", deliver=False, at=long_ago
    )
    error = await refused(
        env.client().messages.create_async(to=WA_CUSTOMER, from_="whatsapp:+14155238886", body="late")
    )
    assert error.code == 63016


# --- listing ---------------------------------------------------------------------------------------


async def test_list_pages_through_a_filter_newest_first(env: Env) -> None:
    client = env.client()
    created = []
    for n in range(7):
        created.append((await client.messages.create_async(to=CUSTOMER, from_="+15005550006", body=f"a{n}")).sid)
        await client.messages.create_async(to="+15551230055", from_="+15005550006", body=f"b{n}")

    page = await client.messages.page_async(to=CUSTOMER, page_size=3)
    seen, sizes = [], []
    while page is not None:
        records = list(page)
        sizes.append(len(records))
        seen += [r.sid for r in records]
        page = await page.next_page_async()
    assert sizes == [3, 3, 1]
    assert seen == created[::-1]

    listed = await client.messages.list_async(to=CUSTOMER, page_size=2)
    assert [m.sid for m in listed] == created[::-1]
    assert [m.body for m in await client.messages.list_async(to=CUSTOMER, limit=4, page_size=3)] == [
        "a6",
        "a5",
        "a4",
        "a3",
    ]
    streamed = [m.sid async for m in await client.messages.stream_async(from_="+15005550006", page_size=5)]
    assert len(streamed) == 14


async def test_a_refused_list_is_a_send_error_not_a_crash(env: Env) -> None:
    """twilio-python raises a bare TwilioException for a refused list page: the sender still says
    what Twilio answered (reconcile and the outbox handle SendError)."""
    from inbox.twilio.client import SendError, TwilioSender

    sender = TwilioSender(account_sid=ACCOUNT_SID, auth_token="0" * 32, base_url=env.url, timeout=5)
    await sender.start()
    try:
        with pytest.raises(SendError) as caught:
            await sender.list_messages(to=CUSTOMER)
    finally:
        await sender.aclose()
    assert (caught.value.kind, caught.value.status, caught.value.code) == ("permanent", 401, 20003)


async def test_list_filters_inbound_by_date_sent(env: Env) -> None:
    days = [datetime(2024, 3, day, 12, 0, tzinfo=UTC) for day in (1, 2, 3, 4)]
    for n, day in enumerate(days):
        await env.sandbox.receive_from_customer(from_=CUSTOMER, to="+15005550006", body=f"in{n}", deliver=False, at=day)
    client = env.client()

    after = await client.messages.list_async(from_=CUSTOMER, date_sent_after=datetime(2024, 3, 2), page_size=2)
    assert [m.body for m in after] == ["in3", "in2", "in1"]
    assert {m.direction for m in after} == {"inbound"} and {m.status for m in after} == {"received"}
    before = await client.messages.list_async(from_=CUSTOMER, date_sent_before=datetime(2024, 3, 2, 12, 0))
    assert [m.body for m in before] == ["in1", "in0"]
    exact_day = await client.messages.list_async(date_sent="2024-03-03")
    assert [m.body for m in exact_day] == ["in2"]


# --- customers writing in --------------------------------------------------------------------------


async def test_an_inbound_sms_posts_a_signed_webhook_and_twiml_replies_are_sent(env: Env) -> None:
    env.receiver.answer_type = "text/xml"
    env.receiver.answer_body = (
        "<?xml version='1.0' encoding='UTF-8'?><Response><Message>Thanks, we got it</Message></Response>"
    )

    result = await env.sandbox.receive_from_customer(from_=CUSTOMER, to="+15005550007", body="Hi, open today?")

    assert result["webhook_status"] == 200
    assert result["direction"] == "inbound" and result["sid"].startswith("SM") and result["status"] == "received"
    [webhook] = env.receiver.at("/webhooks/twilio/inbound")
    assert is_signed(webhook) and not is_signed(webhook, token="0" * 32)
    form = webhook.form
    assert form["MessageSid"] == form["SmsSid"] == form["SmsMessageSid"] == result["sid"]
    assert (form["From"], form["To"], form["Body"], form["AccountSid"]) == (
        CUSTOMER,
        "+15005550007",
        "Hi, open today?",
        ACCOUNT_SID,
    )
    assert form["MessagingServiceSid"] == SERVICE  # a pool number: Twilio names the service on every webhook
    assert (form["NumMedia"], form["NumSegments"], form["SmsStatus"], form["ApiVersion"]) == (
        "0",
        "1",
        "received",
        "2010-04-01",
    )
    assert form["FromCountry"] == form["ToCountry"] == "US"
    assert "ProfileName" not in form and "WaId" not in form

    [reply] = result["replies"]
    assert (reply["from"], reply["to"], reply["body"], reply["direction"]) == (
        "+15005550007",
        CUSTOMER,
        "Thanks, we got it",
        "outbound-reply",
    )
    assert [m["body"] for m in env.sandbox.conversation_with(CUSTOMER)] == ["Hi, open today?", "Thanks, we got it"]


async def test_an_inbound_whatsapp_with_media_carries_profile_and_media_fields(env: Env) -> None:
    result = await env.sandbox.receive_from_customer(
        from_=WA_CUSTOMER,
        to="whatsapp:+14155238886",
        body="",
        profile_name="Ada",
        media=[("https://media.example/1.jpg", "image/jpeg"), ("https://media.example/2.pdf", "application/pdf")],
    )
    assert result["sid"].startswith("MM") and result["webhook_status"] == 200
    [webhook] = env.receiver.at("/webhooks/twilio/inbound")
    assert is_signed(webhook)
    form = webhook.form
    assert (form["ProfileName"], form["WaId"], form["NumMedia"], form["Body"]) == ("Ada", "15551230002", "2", "")
    assert (form["MediaUrl0"], form["MediaContentType0"]) == ("https://media.example/1.jpg", "image/jpeg")
    assert (form["MediaUrl1"], form["MediaContentType1"]) == ("https://media.example/2.pdf", "application/pdf")
    assert form["From"] == WA_CUSTOMER and form["MessagingServiceSid"] == SERVICE
    assert [m["sid"] for m in env.sandbox.conversation_with("+15551230002")] == [result["sid"]]


async def test_deliver_false_stores_without_posting_and_the_list_shows_it(env: Env) -> None:
    result = await env.sandbox.receive_from_customer(
        from_=CUSTOMER, to="+15005550006", body="while you were down", deliver=False
    )
    assert result["webhook_status"] is None and env.receiver.requests == []
    listed = await env.client().messages.list_async(from_=CUSTOMER)
    assert [(m.sid, m.direction, m.body) for m in listed] == [(result["sid"], "inbound", "while you were down")]


async def test_an_unreachable_webhook_gives_no_status(env: Env) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks/twilio/inbound"
    env.sandbox.config.inbound_webhook_url = dead
    result = await env.sandbox.receive_from_customer(from_=CUSTOMER, to="+15005550006", body="anyone?")
    assert result["webhook_status"] is None
    assert result["sid"] in env.sandbox.messages


async def test_stop_blocks_sends_until_start(env: Env) -> None:
    client = env.client()
    await env.sandbox.receive_from_customer(from_=CUSTOMER, to="+15005550006", body=" stop ")
    blocked = await refused(client.messages.create_async(to=CUSTOMER, from_="+15005550006", body="x"))
    assert (blocked.status, blocked.code) == (400, 21610)
    await env.sandbox.receive_from_customer(from_=CUSTOMER, to="+15005550006", body="Start")
    assert (
        await client.messages.create_async(to=CUSTOMER, from_="+15005550006", body="welcome back")
    ).status == "queued"
    assert [r.form["Body"] for r in env.receiver.at("/webhooks/twilio/inbound")] == [" stop ", "Start"]
    assert all("OptOutType" not in r.form for r in env.receiver.requests)


async def test_advanced_opt_out_answers_and_flags_the_webhook() -> None:
    receiver = Receiver()
    async with serving(receiver) as receiver_url:
        receiver.base_url = receiver_url
        sandbox = TwilioSandbox(config(receiver_url, advanced_opt_out=True))
        try:
            result = await sandbox.receive_from_customer(from_=CUSTOMER, to="+15005550006", body="HELP")
            [webhook] = receiver.at("/webhooks/twilio/inbound")
            assert webhook.form["OptOutType"] == "HELP" and is_signed(webhook)
            assert [r["body"] for r in result["replies"]] == ["Reply STOP to unsubscribe. Msg&Data Rates May Apply."]
        finally:
            await sandbox.aclose()


async def test_served_from_another_thread_it_still_calls_back() -> None:
    """As the app's tests run it: uvicorn in a thread with its own loop, hooks called from this loop."""
    receiver = Receiver()
    async with serving(receiver) as receiver_url:
        receiver.base_url = receiver_url
        sandbox = TwilioSandbox(config(receiver_url))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(sandbox.app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        http = AsyncTwilioHttpClient(timeout=5)
        try:
            await wait_for(lambda: server.started, what="threaded sandbox")
            client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
            client.api.base_url = f"http://127.0.0.1:{port}"
            message = await client.messages.create_async(
                to=CUSTOMER, from_="+15005550006", body="x", status_callback=receiver_url + "/status"
            )
            await wait_for(lambda: len(receiver.at("/status")) == 3, what="callbacks from the thread")
            assert [r.form["MessageStatus"] for r in receiver.at("/status")] == ["queued", "sent", "delivered"]
            receiver.answer_type, receiver.answer_body = "text/xml", "<Response><Message>Got it</Message></Response>"
            result = await sandbox.receive_from_customer(from_=CUSTOMER, to="+15005550006", body="from this loop")
            assert result["webhook_status"] == 200
            [reply] = result["replies"]
            assert [m["sid"] for m in sandbox.conversation_with(CUSTOMER)] == [message.sid, result["sid"], reply["sid"]]
            # The reply moves on in the serving thread's loop, not in this caller's.
            await wait_for(lambda: sandbox.messages[reply["sid"]]["status"] == "delivered", what="reply delivery")
            assert not [t for t in asyncio.all_tasks() if "_progress" in repr(t.get_coro())]
        finally:
            await http.close()
            await sandbox.aclose()
            server.should_exit = True
            await asyncio.to_thread(thread.join, 10)
