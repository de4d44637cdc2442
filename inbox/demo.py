"""`inbox demo`: the whole product on SQLite with the built-in Twilio sandbox, no network needed.

One process serves the inbox, the sandbox's REST API (mounted at /2010-04-01 and /v1/Services, which is where
TWILIO_API_BASE_URL points, so replies take the same official-client path real Twilio would)
and /dev/phone, a page where you play a customer. Demo staff and a few conversations are seeded
on start; the URL and the logins are printed.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, asgi, get, post
from litestar.handlers import ASGIRouteHandler, HTTPRouteHandler
from litestar.response import Template
from litestar.types import Receive, Scope, Send

from inbox import attachments
from inbox.paths import INBOUND_WEBHOOK
from inbox.settings import Settings, load_settings
from inbox.twilio.sandbox import SandboxConfig, TwilioSandbox

if TYPE_CHECKING:
    from inbox.runtime import Runtime

DEMO_STAFF = (
    ("reception@demo.test", "receptionist", "Rita Reception"),
    ("manager@demo.test", "manager", "Manu Manager"),
)
SMS_NUMBERS = ["+15005550006", "+15005550007"]
WHATSAPP_NUMBER = "whatsapp:+14155238886"
SEED = (
    ("+14155550123", SMS_NUMBERS[0], "Hi, is my phone repair ready? It's the cracked screen.", None),
    ("whatsapp:+5511912345678", WHATSAPP_NUMBER, "Olá! Can I book a cleaning for Friday morning?", "Ana Souza"),
    ("+447700900456", SMS_NUMBERS[1], "Running 10 minutes late for my 3pm, sorry!", None),
)


def _hex(n: int) -> str:
    return secrets.token_hex(n // 2)


def demo_settings(port: int, host: str, folder: Path) -> Settings:
    public = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104 - read, not bound
    return load_settings(
        _env_file=None,
        INBOX_DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'inbox-demo.db'}",
        INBOX_PUBLIC_URL=public,
        INBOX_MEDIA_DIR=str(folder / "media"),
        INBOX_SECRET_KEY=secrets.token_urlsafe(32),
        INBOX_BUSINESS_NAME="Demo Repairs",
        TWILIO_ACCOUNT_SID="AC" + _hex(32),
        TWILIO_AUTH_TOKEN=_hex(32),
        TWILIO_MESSAGING_SERVICE_SID="MG" + _hex(32),
        TWILIO_PHONE_NUMBER=SMS_NUMBERS[0],
        TWILIO_WHATSAPP_FROM=WHATSAPP_NUMBER,
        TWILIO_API_BASE_URL=public,
    )


def _set(value: str | None) -> str:
    """A Twilio setting demo_settings always gives (Settings types them all as optional)."""
    if value is None:
        raise RuntimeError("demo_settings left a Twilio setting unset")
    return value


def phone_handlers(sandbox: TwilioSandbox, settings: Settings) -> list[HTTPRouteHandler]:
    """The customer's side: /dev/phone and its two JSON routes (demo only, no staff login)."""

    @get("/dev/phone", include_in_schema=False)
    async def phone_page() -> Template:
        return Template(
            "phone.html",
            context={
                "business_name": settings.business_name,
                "numbers": [*SMS_NUMBERS, WHATSAPP_NUMBER],
            },
        )

    @get("/dev/phone/messages", include_in_schema=False)
    async def phone_messages(request: Request[Any, Any, Any]) -> dict[str, Any]:  # the sandbox's dicts
        number = request.query_params.get("number", "")
        messages = sandbox.conversation_with(number) if number else []
        return {
            "messages": [
                {
                    "sid": m["sid"],
                    "direction": "in" if m["direction"] == "inbound" else "out",
                    "from": m["from"],
                    "to": m["to"],
                    "body": m["body"],
                    "status": m["status"],
                    "date": m["date_created"],
                    "media": [
                        {"url": f"/dev/phone/media/{item['sid']}", "content_type": item["content_type"]}
                        for item in sandbox.media_of(m["sid"])
                    ],
                }
                for m in messages
            ]
        }

    @get("/dev/phone/media/{media_sid:str}", include_in_schema=False)
    async def phone_media(media_sid: str) -> Response[bytes]:
        """A file the phone received (or sent): pictures shown, anything else downloaded."""
        item = sandbox.media.get(media_sid)
        if item is None:
            return Response(b"", status_code=404)
        picture = item["content_type"] in ("image/jpeg", "image/png", "image/gif")
        return Response(
            item["data"],
            media_type=item["content_type"] if picture else "application/octet-stream",
            headers={"Content-Disposition": "inline" if picture else 'attachment; filename="attachment"'},
        )

    @post("/dev/phone/send", status_code=200, include_in_schema=False)
    async def phone_send(data: dict[str, str]) -> Response[dict[str, Any]]:
        number = str(data.get("number", "")).strip()
        channel = data.get("channel", "sms")
        to = str(data.get("to", SMS_NUMBERS[0]))
        body = str(data.get("body", ""))
        files = _picture(str(data.get("picture") or ""))
        if files is None:
            return Response(
                {"error": "invalid", "detail": "Send a JPEG, PNG or GIF picture of at most 5 MB."}, status_code=422
            )
        if not number.startswith("+") or not number[1:].isdigit() or not (body.strip() or files):
            return Response(
                {"error": "invalid", "detail": "Pick an E.164 number such as +14155550199 and type a message."},
                status_code=422,
            )
        if channel == "whatsapp":
            number, to = "whatsapp:" + number, WHATSAPP_NUMBER
        result = await sandbox.receive_from_customer(
            from_=number,
            to=to,
            body=body[:1600],
            files=files,
            profile_name="Demo customer" if channel == "whatsapp" else None,
        )
        return Response({"sid": result["sid"], "webhook_status": result["webhook_status"]})

    return [phone_page, phone_messages, phone_send, phone_media]


def _picture(data_url: str) -> list[tuple[bytes, str]] | None:
    """The phone's picture (a data: URL) as the sandbox's files: [] for none, None when it is not a picture."""
    if not data_url:
        return []
    try:
        data = base64.b64decode(data_url.partition(",")[2], validate=True)
    except ValueError:
        return None
    content_type, _words = attachments.sniff(data[:64])
    if content_type is None or not content_type.startswith("image/") or len(data) > attachments.MAX_FILE:
        return None
    return [(data, content_type)]


def sandbox_mount(sandbox: TwilioSandbox, prefix: str = "/2010-04-01") -> ASGIRouteHandler:
    """The sandbox's routes under `prefix`: /2010-04-01 (messages, the account) and /v1/Services
    (the Messaging Service and its senders, for the settings page's connection check)."""

    @asgi(prefix, is_mount=True, copy_scope=True)
    async def twilio_api(scope: Scope, receive: Receive, send: Send) -> None:
        mounted = scope.copy()
        mounted["path"] = prefix + scope["path"]
        mounted["root_path"] = ""
        await sandbox.app(mounted, receive, send)

    return twilio_api


async def seed(runtime: Runtime, sandbox: TwilioSandbox, base_url: str) -> None:
    """Waits for the server to answer, then plays the first customers' messages through the sandbox
    and answers one of them, so the inbox opens on a lived-in morning."""
    import httpx
    from sqlalchemy import select

    from inbox import outbound, store
    from inbox.models import Customer, Staff

    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(base_url + "/healthz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    for from_, to, body, name in SEED:
        await sandbox.receive_from_customer(from_=from_, to=to, body=body, profile_name=name)
    async with runtime.db.read() as session:
        reception = await session.scalar(select(Staff.id).where(Staff.email == DEMO_STAFF[0][0]))
        customer_id = await session.scalar(select(Customer.id).where(Customer.phone == SEED[0][0]))
        conversation_id = await store.conversation_id_of(session, customer_id) if customer_id is not None else None
    if conversation_id is None:
        raise RuntimeError("the demo's first customer message was not stored")
    await outbound.queue(
        runtime.db,
        runtime.bus,
        runtime.settings,
        runtime.outbox_waker,
        outbound.ReplyRequest(
            conversation_id=conversation_id,
            staff_id=reception,
            body="Hi! Yes, it's ready: the new screen is on. We're open until 6pm today.",
        ),
    )


DEMO_TEMPLATE = (
    "Repair ready",
    "HX" + "d" * 32,
    "Hi {{1}}, your {{2}} is ready to collect. Reply here with any questions.",
    ["Name", "Device"],
)


def demo_env(settings: Settings) -> str:
    """The settings `inbox simulate` and `inbox export` need to talk to this demo, as a .env file."""
    return "".join(
        f"{name}='{value}'\n"  # quoted for the shell and for .env readers alike
        for name, value in (
            ("INBOX_DATABASE_URL", settings.database_url),
            ("INBOX_PUBLIC_URL", settings.public_url),
            ("INBOX_BUSINESS_NAME", settings.business_name),
            ("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
            ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
            ("TWILIO_PHONE_NUMBER", settings.twilio_phone_number),
        )
    )


def run_demo(port: int = 8000, host: str = "127.0.0.1") -> None:
    from inbox import accounts
    from inbox.db import Database, migrate
    from inbox.models import WhatsAppTemplate
    from inbox.runtime import Runtime
    from inbox.serving import run_server

    folder = Path(tempfile.mkdtemp(prefix="inbox-demo-"))
    settings = demo_settings(port, host, folder)
    migrate(settings.database_url)
    passwords = {email: secrets.token_urlsafe(9) for email, _, _ in DEMO_STAFF}

    async def create_staff() -> None:
        db = Database(settings.database_url)
        async with db.write() as session:
            for email, role, name in DEMO_STAFF:
                await accounts.add_staff(session, email, passwords[email], role, name)
            # One approved WhatsApp template, so the flow outside the 24-hour window can be tried.
            name, content_sid, body, variables = DEMO_TEMPLATE
            session.add(WhatsAppTemplate(name=name, content_sid=content_sid, body=body, variables=variables))
            await session.commit()
        await db.dispose()

    asyncio.run(create_staff())
    sandbox = TwilioSandbox(
        SandboxConfig(
            account_sid=_set(settings.twilio_account_sid),
            auth_token=_set(settings.twilio_auth_token),
            service_numbers={_set(settings.twilio_messaging_service_sid): [*SMS_NUMBERS, WHATSAPP_NUMBER]},
            inbound_webhook_url=settings.public_url + INBOUND_WEBHOOK,
            public_url=settings.public_url,  # mounted in the demo's own app (sandbox_mount)
            callback_delays=(0.6, 1.2),  # slow enough to watch the ticks move
        )
    )
    env_file = folder / "demo.env"
    env_file.write_text(demo_env(settings))
    env_file.chmod(0o600)  # it holds the demo's auth token
    runtime = Runtime.build(settings)
    runtime.on_start = lambda: seed(runtime, sandbox, settings.public_url)

    print(
        f"""
  The inbox demo is running: {settings.public_url}/
  Sign in as  {DEMO_STAFF[0][0]}  password {passwords[DEMO_STAFF[0][0]]}   (receptionist)
          or  {DEMO_STAFF[1][0]}  password {passwords[DEMO_STAFF[1][0]]}   (manager)
  Play a customer at {settings.public_url}/dev/phone  (text HELP, STOP, START, or anything)
  Everything stays on this machine: Twilio is the built-in sandbox. Data: {folder}

  `inbox simulate` and `inbox export` in another terminal need this demo's settings, written to
  {env_file}:
      set -a; . {env_file}; set +a
      uv run inbox simulate --from +14155550199 "Hello from the command line"
      uv run inbox export --format csv --since 12h
  Ctrl+C to stop.
""",
        flush=True,
    )
    run_server(
        settings,
        host,
        port,
        runtime=runtime,
        log_level=logging.WARNING,  # the banner above is the output
        extra_handlers=[
            sandbox_mount(sandbox),
            sandbox_mount(sandbox, "/v1/Services"),
            *phone_handlers(sandbox, settings),
        ],
    )
