"""The built-in stand-in for Twilio's Messages REST API: a small Litestar app plus in-memory state.

    sandbox = TwilioSandbox(SandboxConfig(account_sid=..., auth_token=..., inbound_webhook_url=...))
    uvicorn.Server(uvicorn.Config(sandbox.app, ...))        # serve it anywhere
    client.api.base_url = "http://127.0.0.1:PORT"           # point the official twilio client at it
    await sandbox.receive_from_customer(from_=..., to=..., body=...)   # a customer texts in
    await sandbox.aclose()

What it answers, under `/2010-04-01/Accounts/{AccountSid}/`, with Basic auth (auth token or API key):
- `POST Messages.json`: validates as Twilio does (its error JSON and codes, its magic test
  numbers, Messaging Service pools with sticky senders, STOP opt-outs, WhatsApp's 24-hour window),
  answers 201 with Twilio's message JSON, then moves the message queued -> sent -> delivered
  (or a failure) and posts signed status callbacks for each step;
- `GET Messages/{Sid}.json`: one message; `GET Messages.json`: Twilio's filtered, paged list;
- `GET Messages/{Sid}/Media/{MediaSid}`: the bytes of a customer's MMS file (Basic auth, as Twilio).
- `GET /2010-04-01/Accounts/{AccountSid}.json`: the account (a standard API key may not read it);
- `GET /v1/Services/{Sid}` and `GET /v1/Services/{Sid}/PhoneNumbers`: a Messaging Service and its
  senders, as Twilio's messaging API answers them (point the client's `messaging.base_url` here).

Media, as Twilio handles them: each `MediaUrl` of a created message is fetched once, without
credentials, after `queued`; one that cannot be fetched fails the message with 11200. What was
fetched is kept (`media_of(sid)`), so the demo's phone shows the pictures it received. A customer's
MMS (`receive_from_customer(files=[(bytes, content type)])`) gets Twilio-shaped media URLs under
`SandboxConfig.public_url`, served with Basic auth only.

Test hooks: fail_next, set_delay, fail_delivery, close_whatsapp_window / open_whatsapp_window,
mark_read. Nothing here touches a database; the only `inbox` import allowed is inside inbox/twilio.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import math
import re
import ssl
import time
import uuid
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException
from twilio.request_validator import RequestValidator

from inbox.twilio.payloads import E164

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
MAX_BODY = 1600
MAX_MEDIA = 10
WHATSAPP_WINDOW = timedelta(hours=24)
WEBHOOK_TIMEOUT = 15.0  # Twilio gives a webhook 15 s in all
MEDIA_FETCH_TIMEOUT = 15.0
MAX_FETCHED_MEDIA = 5 * 1024 * 1024  # Twilio's limit for one message's media
WA = "whatsapp:"

# Twilio's magic test numbers (https://www.twilio.com/docs/iam/test-credentials): To -> (code, message)
MAGIC_TO: dict[str, tuple[int, str]] = {
    "+15005550001": (21211, "The 'To' number {to} is not a valid phone number."),
    "+15005550009": (21614, "'To' number {to} is not a valid mobile number"),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550003": (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}",
    ),
}

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
START_WORDS = {"START", "UNSTOP", "YES"}
HELP_WORDS = {"HELP", "INFO"}
TOLL_FREE_AREA_CODES = {"800", "833", "844", "855", "866", "877", "888"}
# Twilio's default Advanced Opt-Out answers.
OPT_OUT_REPLIES = {
    "STOP": "You have successfully been unsubscribed. You will not receive any more messages from this number. Reply START to resubscribe.",
    "START": "You have successfully been re-subscribed to messages from this number. Reply HELP for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
    "HELP": "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
}

ALPHA_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
SID = {prefix: re.compile(rf"^{prefix}[0-9a-fA-F]{{32}}$") for prefix in ("MG", "HX")}

GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")


@dataclass
class SandboxConfig:
    account_sid: str  # "AC" + 32 hex
    auth_token: str  # 32 hex: Basic auth (account_sid:auth_token) and the key that signs what it posts
    api_keys: dict[str, str] = field(default_factory=dict)  # {"SK...": secret}: Basic auth SK:secret
    messaging_service_sids: set[str] = field(default_factory=set)  # services that exist (besides service_numbers' keys)
    service_numbers: dict[str, list[str]] = field(default_factory=dict)  # MG sid -> sender pool
    inbound_webhook_url: str | None = None  # where customer messages are posted, signed
    callback_delays: tuple[float, float] = (0.05, 0.1)  # seconds until "sent", then until the final status
    content_templates: dict[str, str] = field(default_factory=dict)  # HX sid -> "Hi {{1}}" (renders the body)
    advanced_opt_out: bool = False  # True: Twilio answers STOP/START/HELP itself and adds OptOutType
    block_after_stop: bool = True  # REST sends to an SMS number that texted STOP get 21610 until START
    whatsapp_window_error_async: bool = False  # True: 63016 arrives as a "failed" callback, not as a 400
    list_ignores_to: bool = False  # True: the message list's To filter does not hold (a client must check `to`)
    public_url: str | None = None  # where this sandbox is served: the base of the inbound media URLs it hands out
    main_api_keys: set[str] = field(
        default_factory=set
    )  # keys of api_keys that may read /Accounts (Twilio's Main keys)
    account_name: str = "Sandbox account"  # the account's friendly_name


class _Reject(Exception):
    """A request Twilio refuses: becomes its error JSON."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class _Failure:
    status: int
    code: int
    message: str
    times: int
    create_anyway: bool


class _MultiForm(dict[str, list[str]]):
    """Form pairs with repeats kept; `getall` is what RequestValidator looks for."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        super().__init__()
        for name, value in pairs:
            self.setdefault(name, []).append(value)

    def getall(self, name: str) -> list[str]:
        return self[name]

    def first(self, name: str) -> str | None:
        values = self.get(name)
        return values[0] if values else None


# --- small pure helpers --------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0)) if moment else None


def _new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def bare(address: str) -> str:
    """'whatsapp:+1555…' -> '+1555…'."""
    return address[len(WA) :] if address.startswith(WA) else address


def is_whatsapp(address: str | None) -> bool:
    return address is not None and address.startswith(WA)


def count_segments(body: str) -> int:
    """GSM-7: 160 alone, 153 per part (extension characters count two); else UCS-2: 70 / 67 (UTF-16 units)."""
    if not body:
        return 1
    if all(ch in GSM7 or ch in GSM7_EXTENSION for ch in body):
        units, single, part = sum(2 if ch in GSM7_EXTENSION else 1 for ch in body), 160, 153
    else:
        units, single, part = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / part)


def country_of(address: str) -> str:
    try:
        import phonenumbers

        region = phonenumbers.region_code_for_number(phonenumbers.parse(bare(address)))
    except Exception:
        region = None
    if region:
        return region
    return "US" if bare(address).startswith("+1") else ""


def keyword_of(body: str) -> str | None:
    """STOP | START | HELP when the whole message is one of Twilio's keywords."""
    word = body.strip().upper()
    for name, words in (("STOP", STOP_WORDS), ("START", START_WORDS), ("HELP", HELP_WORDS)):
        if word in words:
            return name
    return None


def _is_toll_free(address: str) -> bool:
    number = bare(address)
    return number.startswith("+1") and number[2:5] in TOLL_FREE_AREA_CODES


def _render_template(template: str | None, content_sid: str, variables: dict[str, Any]) -> str:
    if template is None:
        return (
            f"[template {content_sid}] " + json.dumps(variables, sort_keys=True)
            if variables
            else f"[template {content_sid}]"
        )
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(variables.get(m.group(1), m.group(0))), template)


def _parse_filter_date(value: str) -> tuple[datetime, bool]:
    """A DateSent filter value -> (moment in UTC, whether it named a whole day)."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _Reject(400, 20001, f"Invalid DateSent value: {value}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC), len(value.strip()) == 10


def _date_sent(message: dict[str, Any]) -> datetime | None:
    raw = message.get("date_sent")
    return parsedate_to_datetime(raw) if raw else None


def _matches(message: dict[str, Any], filters: dict[str, str]) -> bool:
    if "To" in filters and message["to"] != filters["To"]:
        return False
    if "From" in filters and message["from"] != filters["From"]:
        return False
    date_filters = [(name, filters[name]) for name in ("DateSent", "DateSent>", "DateSent<") if name in filters]
    if not date_filters:
        return True
    sent = _date_sent(message)
    if sent is None:  # not sent yet: Twilio leaves it out of a DateSent query
        return False
    for name, raw in date_filters:
        moment, whole_day = _parse_filter_date(raw)
        # Twilio's "DateSent>" means on or after, "DateSent<" on or before (a whole day when only a date is given).
        end = moment + (timedelta(days=1) if whole_day else timedelta(seconds=1))
        if name == "DateSent" and not (moment <= sent < end):
            return False
        if name == "DateSent>" and sent < moment:
            return False
        if name == "DateSent<" and sent >= end:
            return False
    return True


def _twilio_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response[Any]:
    content = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Response(content=content, status_code=status, headers=headers or {})


def _parse_twiml_messages(document: str) -> list[dict[str, Any]]:
    """<Response><Message>…</Message></Response> -> [{"body", "media", "to", "from", "status_callback"}]."""
    try:
        root = ET.fromstring(document)  # noqa: S314 - the inbox's own TwiML, in tests and the demo
    except ET.ParseError:
        return []
    if root.tag != "Response":
        return []
    replies = []
    for element in root.iter("Message"):
        body_element = element.find("Body")
        body = body_element.text if body_element is not None else element.text
        replies.append(
            {
                "body": (body or "").strip(),
                "media": [m.text.strip() for m in element.findall("Media") if m.text],
                "to": element.get("to"),
                "from": element.get("from"),
                "status_callback": element.get("statusCallback"),
            }
        )
    return replies


# --- the sandbox ---------------------------------------------------------------------------------


class TwilioSandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.messages: dict[str, dict[str, Any]] = {}  # sid -> Twilio's message JSON, oldest first
        self._validator = RequestValidator(config.auth_token)
        self._failures: list[_Failure] = []
        self._delay = 0.0
        self._delivery_failures: dict[str, tuple[str, int]] = {}  # To -> (final status, error code)
        self._sticky: dict[tuple[str, str], str] = {}  # (MG, recipient) -> sender
        self._pending_from: dict[str, str] = {}  # sid -> sender picked while status is "accepted"
        self._callback_urls: dict[str, str] = {}  # sid -> StatusCallback
        self._last_inbound_whatsapp: dict[str, float] = {}  # "whatsapp:+…" -> epoch seconds
        self._opted_out: set[str] = set()  # bare numbers that texted STOP
        self._tasks: set[asyncio.Task[None]] = set()
        self._ssl: ssl.SSLContext | None = None  # shared by the short-lived clients of _request
        self._serving_loop: asyncio.AbstractEventLoop | None = None  # the loop the app runs on, once known
        self._media_urls: dict[str, list[str]] = {}  # sid -> MediaUrl to fetch before sending
        self.media: dict[str, dict[str, Any]] = {}  # ME sid -> {"message_sid", "content_type", "data", "url"}
        self.media_fetches: list[tuple[str, int | None]] = []  # (url, HTTP status or None): every fetch made
        self._started = _now()  # the account's and services' creation time
        self.app = self._build_app()

    # -- test hooks --------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        code: int,
        times: int = 1,
        message: str = "The sandbox was told to fail this request",
        *,
        create_anyway: bool = False,
    ) -> None:
        """The next `times` create requests answer `status` with Twilio's error JSON and create nothing
        (with create_anyway=True the message is created first: an ambiguous failure)."""
        self._failures.append(_Failure(status, code, message, times, create_anyway))

    def set_delay(self, seconds: float) -> None:
        """Create requests sleep this long after creating the message and before answering."""
        self._delay = max(0.0, seconds)

    def fail_delivery(self, to: str, status: str = "undelivered", error_code: int = 30003) -> None:
        """Messages to `to` end `undelivered` (queued -> sent -> undelivered) or `failed` (queued -> failed)."""
        if status not in ("undelivered", "failed"):
            raise ValueError("status must be 'undelivered' or 'failed'")
        self._delivery_failures[to] = (status, error_code)

    def close_whatsapp_window(self, address: str) -> None:
        self._last_inbound_whatsapp.pop(WA + bare(address), None)

    def open_whatsapp_window(self, address: str) -> None:
        self._last_inbound_whatsapp[WA + bare(address)] = time.time()

    def conversation_with(self, phone: str) -> list[dict[str, Any]]:
        """Every message to or from that number (with or without whatsapp:), oldest first."""
        number = bare(phone)
        return [
            dict(m)
            for m in list(self.messages.values())
            if bare(m["to"] or "") == number or bare(m["from"] or self._pending_from.get(m["sid"], "")) == number
        ]

    def media_of(self, sid: str) -> list[dict[str, Any]]:
        """The files of a message: fetched from its MediaUrls (outbound) or sent by the customer (inbound)."""
        return [{"sid": me, **item} for me, item in self.media.items() if item["message_sid"] == sid]

    async def mark_read(self, sid: str) -> None:
        """A WhatsApp customer read a delivered message: status "read" and its callback."""
        message = self.messages[sid]
        if not is_whatsapp(message["to"]) or message["status"] != "delivered":
            raise ValueError("only a delivered WhatsApp message can be read")
        await self._set_status(sid, "read")

    async def receive_from_customer(
        self,
        *,
        from_: str,
        to: str,
        body: str,
        media: Sequence[tuple[str, str]] = (),
        files: Sequence[tuple[bytes, str]] = (),
        profile_name: str | None = None,
        messaging_service_sid: str | None = None,
        deliver: bool = True,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Stores an inbound message and (if deliver) posts Twilio's signed webhook for it.

        Returns the stored message plus "webhook_status" (the inbox's HTTP status, None when not
        posted or unreachable) and "replies" (messages the sandbox sent back: TwiML <Message>s,
        Advanced Opt-Out answers). `files` are stored here and sent as MediaUrls the inbox must
        fetch with the account's credentials, as Twilio's own are."""
        if is_whatsapp(from_) and not is_whatsapp(to):
            to = WA + to
        moment = at or _now()
        service = messaging_service_sid or self._service_of(to)
        sid = _new_sid("MM" if media or files else "SM")
        media = [*media, *(self._keep_media(sid, data, content_type) for data, content_type in files)]
        message = self._store(
            sid=sid,
            direction="inbound",
            from_=from_,
            to=to,
            body=body,
            status="received",
            service=service,
            num_media=len(media),
            created=moment,
            sent=moment,
        )
        keyword = None if is_whatsapp(from_) else keyword_of(body)
        if is_whatsapp(from_):
            self._last_inbound_whatsapp[WA + bare(from_)] = moment.timestamp()
        else:
            self._record_consent(body, from_, to)
        replies: list[dict[str, Any]] = []
        if keyword and self.config.advanced_opt_out:
            replies.append(self._send_reply(message, {"body": OPT_OUT_REPLIES[keyword]}))
        status = None
        if deliver and self.config.inbound_webhook_url:
            form = self._inbound_form(message, media, profile_name, keyword)
            response = await self._post_signed(self.config.inbound_webhook_url, form, retry_connect=True)
            if response is not None:
                status = response.status_code
                if status == 200 and "xml" in response.headers.get("content-type", ""):
                    replies += [self._send_reply(message, twiml) for twiml in _parse_twiml_messages(response.text)]
        return {**message, "webhook_status": status, "replies": replies}

    def _keep_media(self, sid: str, data: bytes, content_type: str) -> tuple[str, str]:
        if not self.config.public_url:
            raise ValueError("set SandboxConfig.public_url to send files: the media URLs are served from there")
        media_sid = _new_sid("ME")
        url = f"{self.config.public_url}/{API_VERSION}/Accounts/{self.config.account_sid}/Messages/{sid}/Media/{media_sid}"
        self.media[media_sid] = {"message_sid": sid, "content_type": content_type, "data": data, "url": url}
        return url, content_type

    async def aclose(self) -> None:
        """Cancels pending status progressions (on whichever loop runs them)."""
        current = asyncio.get_running_loop()
        mine = []
        for task in list(self._tasks):
            loop = task.get_loop()
            if loop is current:
                task.cancel()
                mine.append(task)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)
        if mine:
            await asyncio.gather(*mine, return_exceptions=True)
        self._tasks.clear()

    # -- the app -----------------------------------------------------------------------------------

    def _build_app(self) -> Litestar:
        base = f"/{API_VERSION}/Accounts/{{account_sid:str}}"

        # Path parameters are read from request.path_params (Twilio's names, no Litestar validation).
        @post(f"{base}/Messages.json", status_code=201)
        async def create_message(request: Request[Any, Any, Any]) -> Response[Any]:
            return await self._guarded(request, self._create)

        @get(f"{base}/Messages.json")
        async def list_messages(request: Request[Any, Any, Any]) -> Response[Any]:
            return await self._guarded(request, self._list)

        # Litestar parameters are whole path segments, so "SM….json" arrives in one piece.
        @get(f"{base}/Messages/{{sid_json:str}}")
        async def fetch_message(request: Request[Any, Any, Any]) -> Response[Any]:
            return await self._guarded(request, self._fetch)

        @get(f"{base}/Messages/{{sid:str}}/Media/{{media_sid:str}}")
        async def fetch_media(request: Request[Any, Any, Any]) -> Response[Any]:
            return await self._guarded(request, self._fetch_media)

        @get(f"/{API_VERSION}/Accounts/{{account_sid:str}}")
        async def fetch_account(request: Request[Any, Any, Any]) -> Response[Any]:
            return await self._guarded(request, self._fetch_account, account_in_path=False)

        @get("/v1/Services/{service_sid:str}")
        async def fetch_service(request: Request[Any, Any, Any]) -> Response[Any]:
            return await self._guarded(request, self._fetch_service, account_in_path=False)

        @get("/v1/Services/{service_sid:str}/PhoneNumbers")
        async def list_service_numbers(request: Request[Any, Any, Any]) -> Response[Any]:
            return await self._guarded(request, self._list_service_numbers, account_in_path=False)

        def not_found(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
            if exc.status_code == 405:
                return _twilio_error(405, 20004, "Method not allowed")
            return _twilio_error(404, 20404, f"The requested resource {request.url.path} was not found")

        return Litestar(
            route_handlers=[
                create_message,
                list_messages,
                fetch_message,
                fetch_media,
                fetch_account,
                fetch_service,
                list_service_numbers,
            ],
            on_startup=[self._remember_loop],
            exception_handlers={404: not_found, 405: not_found},
            openapi_config=None,
            logging_config=None,
        )

    async def _guarded(
        self,
        request: Request[Any, Any, Any],
        handler: Callable[[Request[Any, Any, Any]], Awaitable[Response[Any]]],
        *,
        account_in_path: bool = True,
    ) -> Response[Any]:
        """Basic auth, the account in the path, then the handler; a _Reject becomes Twilio's error JSON."""
        self._remember_loop()
        if not self._authorized(request.headers.get("authorization")):
            return _twilio_error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        if account_in_path and request.path_params["account_sid"] != self.config.account_sid:
            return _twilio_error(404, 20404, f"The requested resource {request.url.path} was not found")
        try:
            return await handler(request)
        except _Reject as reject:
            return _twilio_error(reject.status, reject.code, reject.message)

    def _remember_loop(self) -> None:
        self._serving_loop = asyncio.get_running_loop()

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            username, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        expected = self.config.auth_token if username == self.config.account_sid else self.config.api_keys.get(username)
        return expected is not None and hmac.compare_digest(password.encode(), expected.encode())

    def _username(self, request: Request[Any, Any, Any]) -> str:
        header = request.headers.get("authorization") or ""
        return base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")[0]  # checked by _guarded

    async def _fetch_account(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """The account, as Twilio's v2010 API answers it; a Standard API key may not read it."""
        sid = request.path_params["account_sid"].removesuffix(".json")
        if sid != self.config.account_sid or not request.path_params["account_sid"].endswith(".json"):
            raise _Reject(404, 20404, f"The requested resource {request.url.path} was not found")
        username = self._username(request)
        if username != self.config.account_sid and username not in self.config.main_api_keys:
            raise _Reject(401, 20003, "Authenticate")
        uri = f"/{API_VERSION}/Accounts/{sid}"
        return Response(
            content={
                "auth_token": self.config.auth_token,  # Twilio does return it: a client must never show it
                "date_created": _rfc2822(self._started),
                "date_updated": _rfc2822(self._started),
                "friendly_name": self.config.account_name,
                "owner_account_sid": sid,
                "sid": sid,
                "status": "active",
                "subresource_uris": {"messages": f"{uri}/Messages.json"},
                "type": "Full",
                "uri": f"{uri}.json",
            },
            status_code=200,
        )

    def _service(self, request: Request[Any, Any, Any]) -> str:
        sid = request.path_params["service_sid"]
        if sid not in self.config.messaging_service_sids and sid not in self.config.service_numbers:
            raise _Reject(404, 20404, f"The requested resource {request.url.path} was not found")
        return str(sid)

    async def _fetch_service(self, request: Request[Any, Any, Any]) -> Response[Any]:
        sid = self._service(request)
        url = f"https://messaging.twilio.com/v1/Services/{sid}"
        return Response(
            content={
                "account_sid": self.config.account_sid,
                "sid": sid,
                "friendly_name": f"Sandbox service {sid[-4:]}",
                "date_created": _rfc2822(self._started),
                "date_updated": _rfc2822(self._started),
                "sticky_sender": True,
                "inbound_request_url": self.config.inbound_webhook_url,
                "inbound_method": "POST",
                "status_callback": None,
                "use_inbound_webhook_on_number": False,
                "usecase": "mixed",
                "url": url,
                "links": {"phone_numbers": f"{url}/PhoneNumbers"},
            },
            status_code=200,
        )

    async def _list_service_numbers(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """The service's phone numbers (its WhatsApp senders are not phone numbers to Twilio)."""
        sid = self._service(request)
        url = f"https://messaging.twilio.com/v1/Services/{sid}/PhoneNumbers"
        numbers = [n for n in self.config.service_numbers.get(sid, []) if not is_whatsapp(n)]
        items = [
            {
                "sid": "PN" + uuid.uuid5(uuid.NAMESPACE_OID, number).hex,
                "account_sid": self.config.account_sid,
                "service_sid": sid,
                "phone_number": number,
                "country_code": country_of(number),
                "capabilities": ["SMS", "MMS"],
                "date_created": _rfc2822(self._started),
                "date_updated": _rfc2822(self._started),
                "url": f"{url}/PN{uuid.uuid5(uuid.NAMESPACE_OID, number).hex}",
            }
            for number in numbers
        ]
        page_size = 50
        meta = {
            "page": 0,
            "page_size": page_size,
            "first_page_url": f"{url}?PageSize={page_size}&Page=0",
            "previous_page_url": None,
            "url": f"{url}?PageSize={page_size}&Page=0",
            "next_page_url": None,
            "key": "phone_numbers",
        }
        return Response(content={"phone_numbers": items, "meta": meta}, status_code=200)

    async def _fetch(self, request: Request[Any, Any, Any]) -> Response[Any]:
        sid_json = request.path_params["sid_json"]
        message = self.messages.get(sid_json.removesuffix(".json"))
        if message is None or not sid_json.endswith(".json"):
            raise _Reject(404, 20404, f"The requested resource {request.url.path} was not found")
        return Response(content=dict(message), status_code=200)

    async def _fetch_media(self, request: Request[Any, Any, Any]) -> Response[Any]:
        item = self.media.get(request.path_params["media_sid"])
        if item is None or item["message_sid"] != request.path_params["sid"]:
            raise _Reject(404, 20404, f"The requested resource {request.url.path} was not found")
        return Response(content=item["data"], media_type=item["content_type"], status_code=200)

    # -- POST Messages.json ------------------------------------------------------------------------

    async def _create(self, request: Request[Any, Any, Any]) -> Response[Any]:
        form = _MultiForm(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        failure = self._take_failure()
        if failure is not None and not failure.create_anyway:
            await self._sleep()
            raise _Reject(failure.status, failure.code, failure.message)
        message = self._accept(form)
        if failure is not None:
            await self._sleep()
            raise _Reject(failure.status, failure.code, failure.message)
        snapshot = dict(message)  # before any await: the progression task may move it on
        await self._sleep()  # the message exists whether or not the client waits for this answer
        return Response(content=snapshot, status_code=201)

    def _take_failure(self) -> _Failure | None:
        if not self._failures:
            return None
        failure = self._failures[0]
        failure.times -= 1
        if failure.times <= 0:
            self._failures.pop(0)
        return failure

    async def _sleep(self) -> None:
        if self._delay:
            await asyncio.sleep(self._delay)

    def _accept(self, form: _MultiForm) -> dict[str, Any]:
        """Validates a create request as Twilio does, stores the message and starts its progression."""
        to, from_ = form.first("To") or "", form.first("From") or ""
        service = form.first("MessagingServiceSid") or ""
        body, media = form.first("Body") or "", [url for url in form.get("MediaUrl", []) if url]
        content_sid, raw_variables = form.first("ContentSid") or "", form.first("ContentVariables")
        callback = form.first("StatusCallback") or ""

        if not to:
            raise _Reject(400, 21604, "A 'To' phone number is required.")
        if not from_ and not service:
            raise _Reject(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message")
        self._check_service(service)
        if from_ and not (E164.fullmatch(bare(from_)) or (ALPHA_SENDER.match(from_) and not is_whatsapp(to))):
            raise _Reject(
                400,
                21212,
                f"The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric sender ID.",
            )
        if not E164.fullmatch(bare(to)):
            raise _Reject(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        variables = self._check_content(body, media, content_sid, raw_variables)
        if callback and urlsplit(callback).scheme not in ("http", "https"):
            raise _Reject(400, 21609, f"The StatusCallback URL {callback} is not a valid URL.")
        if from_ and is_whatsapp(from_) != is_whatsapp(to):
            raise _Reject(400, 21910, "Invalid From and To pair. From and To should be of the same channel")
        sender = self._pick_sender(service, from_, to)
        self._check_recipient(to)
        window_closed = self._whatsapp_window_closed(to, content_sid)
        if window_closed and not self.config.whatsapp_window_error_async:
            raise _Reject(
                400,
                63016,
                "Failed to send freeform message because you are outside the allowed window. "
                "If you are using WhatsApp, please use a Message Template.",
            )

        if content_sid:
            body = _render_template(self.config.content_templates.get(content_sid), content_sid, variables)
        # With only a Messaging Service, Twilio answers "accepted" and names the sender once queued.
        accepted = bool(service) and not from_
        message = self._store(
            sid=_new_sid("MM" if media else "SM"),
            direction="outbound-api",
            from_=None if accepted else sender,
            to=to,
            body=body,
            status="accepted" if accepted else "queued",
            service=service or None,
            num_media=len(media),
            created=_now(),
            sent=None,
        )
        if accepted:
            self._pending_from[message["sid"]] = sender
        if media:
            self._media_urls[message["sid"]] = media
        if callback:
            self._callback_urls[message["sid"]] = callback
        final = ("failed", 63016) if window_closed else self._delivery_failures.get(to)
        self._start_progression(message["sid"], final)
        return message

    def _check_service(self, service: str) -> None:
        if not service:
            return
        if not SID["MG"].match(service):
            raise _Reject(400, 21705, "The Messaging Service is invalid")
        if service not in self.config.messaging_service_sids and service not in self.config.service_numbers:
            raise _Reject(404, 21701, f"The Messaging Service {service} does not exist")

    def _check_content(
        self, body: str, media: list[str], content_sid: str, raw_variables: str | None
    ) -> dict[str, Any]:
        if not body and not media and not content_sid:
            raise _Reject(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY:
            raise _Reject(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if len(media) > MAX_MEDIA:
            raise _Reject(400, 21623, "Number of media files exceeds allowed limit")
        if not content_sid:
            return {}
        if not SID["HX"].match(content_sid):
            raise _Reject(400, 21655, "The ContentSid is Invalid.")
        try:
            variables = json.loads(raw_variables) if raw_variables else {}
        except ValueError:
            variables = None
        if not isinstance(variables, dict):
            raise _Reject(400, 21656, "The ContentVariables Parameter is invalid.")
        return variables

    def _pick_sender(self, service: str, from_: str, to: str) -> str:
        """The sender: From as given (it must be in the service's pool), else the service's sticky choice."""
        if not service:
            return from_
        pool = self.config.service_numbers.get(service, [])
        if from_:
            if from_ not in pool:
                raise _Reject(
                    400,
                    21711,
                    f"Phone Number, Shortcode, or AlphaSender {from_} is not associated to the specified Messaging Service.",
                )
            self._sticky[(service, to)] = from_
            return from_
        sticky = self._sticky.get((service, to))
        if sticky in pool:
            return sticky
        candidates = [number for number in pool if is_whatsapp(number) == is_whatsapp(to)]
        if not candidates:
            raise _Reject(400, 21704, "The Messaging Service contains no phone numbers")
        # A stable choice per recipient, remembered: Twilio's Sticky Sender.
        sender = candidates[zlib.crc32(to.encode()) % len(candidates)]
        self._sticky[(service, to)] = sender
        return sender

    def _check_recipient(self, to: str) -> None:
        number = bare(to)
        if number in MAGIC_TO:
            code, text = MAGIC_TO[number]
            raise _Reject(400, code, text.format(to=to))
        if not is_whatsapp(to) and self.config.block_after_stop and number in self._opted_out:
            raise _Reject(400, 21610, "Attempt to send to unsubscribed recipient")

    def _whatsapp_window_closed(self, to: str, content_sid: str) -> bool:
        if not is_whatsapp(to) or content_sid:
            return False  # approved templates may be sent at any time
        last = self._last_inbound_whatsapp.get(WA + bare(to))
        return last is None or time.time() - last > WHATSAPP_WINDOW.total_seconds()

    def _service_of(self, number: str) -> str | None:
        for service, pool in self.config.service_numbers.items():
            if number in pool:
                return service
        return None

    def _store(
        self,
        *,
        sid: str,
        direction: str,
        from_: str | None,
        to: str,
        body: str,
        status: str,
        service: str | None,
        num_media: int,
        created: datetime,
        sent: datetime | None,
    ) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.config.account_sid}/Messages/{sid}"
        message = {
            "account_sid": self.config.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": _rfc2822(created),
            "date_sent": _rfc2822(sent),
            "date_updated": _rfc2822(created),
            "direction": direction,
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": service,
            "num_media": str(num_media),
            "num_segments": str(count_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": status,
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "to": to,
            "uri": f"{uri}.json",
        }
        self.messages[sid] = message
        return message

    # -- delivery progression and status callbacks -------------------------------------------------

    def _start_progression(self, sid: str, final: tuple[str, int] | None) -> None:
        """Runs the progression on the loop that serves the app when there is one: a caller of
        receive_from_customer may be a short-lived loop (asyncio.run in a test) that would cancel it."""
        home, current = self._serving_loop, asyncio.get_running_loop()
        if home is None or home is current or not home.is_running():
            self._spawn(sid, final)
        else:
            home.call_soon_threadsafe(self._spawn, sid, final)

    def _spawn(self, sid: str, final: tuple[str, int] | None) -> None:
        task = asyncio.get_running_loop().create_task(self._progress(sid, final))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _progress(self, sid: str, final: tuple[str, int] | None) -> None:
        """queued -> sent -> delivered, or -> sent -> undelivered, or -> failed, one callback per step, in order."""
        to_sent, to_final = self.config.callback_delays
        try:
            await self._set_status(sid, "queued")
            if not await self._fetch_media_urls(sid):
                await asyncio.sleep(to_sent)
                await self._set_status(sid, "failed", 11200)
                return
            if final and final[0] == "failed":
                await asyncio.sleep(to_sent)
                await self._set_status(sid, "failed", final[1])
                return
            await asyncio.sleep(to_sent)
            await self._set_status(sid, "sent")
            await asyncio.sleep(to_final)
            status, error_code = final or ("delivered", None)
            await self._set_status(sid, status, error_code)
        except Exception:  # a sandbox bug must not vanish silently inside a task (cancellation passes)
            logger.exception("sandbox: status progression of %s failed", sid)

    async def _fetch_media_urls(self, sid: str) -> bool:
        """Fetches each MediaUrl once, without credentials, as Twilio does; False if one could not be."""
        urls = self._media_urls.pop(sid, [])
        if not urls:
            return True
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        async with httpx.AsyncClient(timeout=MEDIA_FETCH_TIMEOUT, verify=self._ssl, follow_redirects=True) as client:
            for url in urls:
                try:
                    response = await client.get(url, headers={"User-Agent": "TwilioProxy/1.1"})
                except httpx.HTTPError:
                    self.media_fetches.append((url, None))
                    return False
                self.media_fetches.append((url, response.status_code))
                if response.status_code != 200 or len(response.content) > MAX_FETCHED_MEDIA:
                    return False
                content_type = response.headers.get("content-type", "application/octet-stream").split(";")[0]
                self.media[_new_sid("ME")] = {
                    "message_sid": sid,
                    "content_type": content_type,
                    "data": response.content,
                    "url": url,
                }
        return True

    async def _set_status(self, sid: str, status: str, error_code: int | None = None) -> None:
        message = self.messages[sid]
        moment = _now()
        if sid in self._pending_from and status != "accepted":
            message["from"] = self._pending_from.pop(sid)
        message["status"] = status
        message["date_updated"] = _rfc2822(moment)
        if status == "sent":
            message["date_sent"] = _rfc2822(moment)
        if error_code is not None:
            message["error_code"] = error_code
            message["error_message"] = f"Delivery failed with error {error_code}"
        callback = self._callback_urls.get(sid)
        if callback:
            await self._post_signed(callback, self._status_form(message))

    def _status_form(self, message: dict[str, Any]) -> list[tuple[str, str]]:
        form = [
            ("MessageSid", message["sid"]),
            ("SmsSid", message["sid"]),
            ("MessageStatus", message["status"]),
            ("SmsStatus", message["status"]),
            ("AccountSid", message["account_sid"]),
            ("From", message["from"] or ""),
            ("To", message["to"]),
            ("ApiVersion", API_VERSION),
        ]
        if message["messaging_service_sid"]:
            form.append(("MessagingServiceSid", message["messaging_service_sid"]))
        if message["error_code"] is not None:
            form.append(("ErrorCode", str(message["error_code"])))
        return form

    # -- inbound -----------------------------------------------------------------------------------

    def _record_consent(self, body: str, from_: str, to: str) -> None:
        """Twilio's own opt-out ledger: STOP blocks REST sends; START lifts it (YES does not on toll-free)."""
        keyword = keyword_of(body)
        if keyword == "STOP":
            self._opted_out.add(bare(from_))
        elif keyword == "START" and not (_is_toll_free(to) and body.strip().upper() == "YES"):
            self._opted_out.discard(bare(from_))

    def _inbound_form(
        self, message: dict[str, Any], media: Sequence[tuple[str, str]], profile_name: str | None, keyword: str | None
    ) -> list[tuple[str, str]]:
        sid = message["sid"]
        form = [
            ("ToCountry", country_of(message["to"])),
            ("SmsMessageSid", sid),
            ("NumMedia", str(len(media))),
            ("SmsSid", sid),
            ("SmsStatus", "received"),
            ("Body", message["body"]),
            ("To", message["to"]),
            ("NumSegments", message["num_segments"]),
            ("MessageSid", sid),
            ("AccountSid", message["account_sid"]),
            ("From", message["from"]),
            ("FromCountry", country_of(message["from"])),
            ("ApiVersion", API_VERSION),
        ]
        if message["messaging_service_sid"]:
            form.append(("MessagingServiceSid", message["messaging_service_sid"]))
        for n, (url, content_type) in enumerate(media):
            form += [(f"MediaUrl{n}", url), (f"MediaContentType{n}", content_type)]
        if is_whatsapp(message["from"]):
            form += [("ProfileName", profile_name or ""), ("WaId", bare(message["from"]).lstrip("+"))]
        if keyword and self.config.advanced_opt_out:
            form.append(("OptOutType", keyword))
        return form

    def _send_reply(self, inbound: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        """A message Twilio sends back to the customer from a TwiML answer or an opt-out reply."""
        message = self._store(
            sid=_new_sid("MM" if reply.get("media") else "SM"),
            direction="outbound-reply",
            from_=reply.get("from") or inbound["to"],
            to=reply.get("to") or inbound["from"],
            body=reply.get("body", ""),
            status="queued",
            service=inbound["messaging_service_sid"],
            num_media=len(reply.get("media", [])),
            created=_now(),
            sent=None,
        )
        if reply.get("status_callback"):
            self._callback_urls[message["sid"]] = reply["status_callback"]
        self._start_progression(message["sid"], self._delivery_failures.get(message["to"]))
        return dict(message)

    # -- posting signed requests -------------------------------------------------------------------

    async def _post_signed(
        self, url: str, form: list[tuple[str, str]], *, retry_connect: bool = False
    ) -> httpx.Response | None:
        """Posts a form signed as Twilio signs it; None when the server could not be reached.

        Like Twilio, a refused connection is retried once (retry_connect); an answer is never retried."""
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            "X-Twilio-Signature": self._validator.compute_signature(url, _MultiForm(form)),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        }
        for attempt in range(2 if retry_connect else 1):
            try:
                return await self._request(url, urlencode(form), headers)
            except httpx.ConnectError:
                if attempt == 0 and retry_connect:
                    await asyncio.sleep(0.05)
                    continue
                logger.warning("sandbox: could not reach %s", url)
            except httpx.HTTPError as exc:
                logger.warning("sandbox: posting to %s failed: %s", url, type(exc).__name__)
                return None
        return None

    async def _request(self, url: str, content: str, headers: dict[str, str]) -> httpx.Response:
        # A client per post, closed at once, as Twilio opens a connection per webhook: the sandbox
        # may post from two loops (served from a thread while a test calls receive_from_customer),
        # and a pooled client would leave connections open on a loop that aclose cannot reach.
        # The SSL context is shared: building one per client costs ~50 ms.
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT, verify=self._ssl) as client:
            return await client.post(url, content=content, headers=headers)

    # -- GET Messages.json -------------------------------------------------------------------------

    async def _list(self, request: Request[Any, Any, Any]) -> Response[Any]:
        query = dict(
            parse_qsl(request.scope.get("query_string", b"").decode("utf-8", "replace"), keep_blank_values=True)
        )
        return Response(content=self._page(query), status_code=200)

    def _page(self, query: dict[str, str]) -> dict[str, Any]:
        """Twilio's page: newest first; PageToken "PA<sid>" continues after that message, "PB<sid>" before it."""
        filters = {
            name: query[name] for name in ("To", "From", "DateSent", "DateSent>", "DateSent<") if query.get(name)
        }
        if self.config.list_ignores_to:
            filters.pop("To", None)
        try:
            page_size = min(max(int(query.get("PageSize") or 50), 1), 1000)
            page = max(int(query.get("Page") or 0), 0)
        except ValueError:
            raise _Reject(400, 20001, "PageSize and Page must be integers") from None
        rows = [m for m in reversed(list(self.messages.values())) if _matches(m, filters)]
        start = self._page_start(rows, query.get("PageToken"), page, page_size)
        chunk = rows[start : start + page_size]
        path = f"/{API_VERSION}/Accounts/{self.config.account_sid}/Messages.json"

        def uri(number: int, token: str | None) -> str:
            params = {**filters, "PageSize": str(page_size), "Page": str(number)}
            if token:
                params["PageToken"] = token
            return f"{path}?{urlencode(params)}"

        has_next = bool(chunk) and start + len(chunk) < len(rows)
        return {
            "messages": [dict(m) for m in chunk],
            "page": page,
            "page_size": page_size,
            "start": page * page_size,
            "end": page * page_size + max(len(chunk) - 1, 0),
            "uri": uri(page, query.get("PageToken")),
            "first_page_uri": uri(0, None),
            "next_page_uri": uri(page + 1, "PA" + chunk[-1]["sid"]) if has_next else None,
            "previous_page_uri": uri(page - 1, "PB" + chunk[0]["sid"]) if page > 0 and chunk else None,
        }

    @staticmethod
    def _page_start(rows: list[dict[str, Any]], token: str | None, page: int, page_size: int) -> int:
        if not token:
            return page * page_size
        position = next((i for i, m in enumerate(rows) if m["sid"] == token[2:]), None)
        if token[:2] not in ("PA", "PB") or position is None:
            raise _Reject(400, 20001, f"Invalid PageToken: {token}")
        return position + 1 if token[:2] == "PA" else max(position - page_size, 0)
