"""Sending through the official twilio client, async, with a timeout; no database in here.

    sender = TwilioSender(settings); await sender.start()
    await sender.send(OutgoingMessage(...)) -> SendResult | raises SendError(kind=...)

SendError.kind (a Failure) says what the outbox may do next.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from inbox.twilio.errors import PERMANENT, RATE_LIMITED

SEND_TIMEOUT = 15.0

# twilio-python logs every request's form (message bodies, numbers) at INFO: not in our logs.
for _name in ("twilio.http_client", "twilio.async_http_client"):
    logging.getLogger(_name).setLevel(logging.WARNING)


# One message of Twilio's list, by Twilio's field names ("from", "date_sent", …). The values are
# what twilio-python read (it ships no types): str, datetime, int or None, as Twilio sent them.
ListedMessage = dict[str, Any]


@dataclass(frozen=True)
class OutgoingMessage:
    to: str
    body: str | None = None
    from_: str | None = None
    messaging_service_sid: str | None = None
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None
    media_urls: list[str] = field(default_factory=list)
    status_callback: str | None = None


@dataclass(frozen=True)
class SendResult:
    sid: str
    status: str
    from_: str | None


class Failure(StrEnum):
    RETRY = "retry"  # nothing reached Twilio (connection refused, DNS) or Twilio said 429: send again later
    AMBIGUOUS = "ambiguous"  # a 5xx or a timeout after the request left: it may exist: reconcile first
    PERMANENT = "permanent"  # Twilio refused it for good (21211, 21610, 63016 …): never retried


class SendError(Exception):
    def __init__(self, kind: Failure, message: str, code: int | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.code, self.status = kind, code, status


class TwilioAccount(Protocol):
    """The part of the app's settings a sender needs (inbox.twilio imports nothing else of the inbox)."""

    @property
    def twilio_account_sid(self) -> str | None: ...
    @property
    def twilio_auth_token(self) -> str | None: ...
    @property
    def twilio_api_key_sid(self) -> str | None: ...
    @property
    def twilio_api_key_secret(self) -> str | None: ...
    @property
    def twilio_api_base_url(self) -> str: ...


class TwilioSender:
    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str | None,
        api_key_sid: str | None = None,
        api_key_secret: str | None = None,
        base_url: str = "https://api.twilio.com",
        timeout: float = SEND_TIMEOUT,
    ) -> None:
        self._credentials = (api_key_sid or account_sid, api_key_secret if api_key_sid else auth_token)
        self.account_sid = account_sid
        self.base_url = base_url
        self.timeout = timeout
        self._http: AsyncTwilioHttpClient | None = None
        self._client: Client | None = None

    @classmethod
    def from_settings(cls, settings: TwilioAccount) -> TwilioSender:
        if settings.twilio_account_sid is None:  # callers check Settings.twilio_configured first
            raise ValueError("TWILIO_ACCOUNT_SID is not set")
        return cls(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            api_key_sid=settings.twilio_api_key_sid,
            api_key_secret=settings.twilio_api_key_secret,
            base_url=settings.twilio_api_base_url,
        )

    async def start(self) -> None:
        """Builds the HTTP session inside the running loop (aiohttp requires one)."""
        self._http = AsyncTwilioHttpClient(timeout=self.timeout)
        username, password = self._credentials
        self._client = Client(username, password, self.account_sid, http_client=self._http)
        self._client.api.base_url = self.base_url

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("TwilioSender.start() was not awaited")
        return self._client

    async def send(self, message: OutgoingMessage) -> SendResult:
        params: dict[str, Any] = {"to": message.to}
        if message.from_:
            params["from_"] = message.from_
        if message.messaging_service_sid:
            params["messaging_service_sid"] = message.messaging_service_sid
        if message.content_sid:
            params["content_sid"] = message.content_sid
            if message.content_variables:
                params["content_variables"] = json.dumps(message.content_variables)
        elif message.body is not None:
            params["body"] = message.body
        if message.media_urls:
            params["media_url"] = message.media_urls
        if message.status_callback:
            params["status_callback"] = message.status_callback
        try:
            # AsyncTwilioHttpClient stores its timeout but hands aiohttp None: enforce it here.
            created = await asyncio.wait_for(self.client.messages.create_async(**params), self.timeout)
        except TwilioRestException as exc:
            raise _classify(exc) from None
        except (aiohttp.ClientConnectorError, aiohttp.ClientOSError) as exc:
            # ClientOSError also covers a connection reset after sending; treat a reset mid-response
            # as ambiguous only when the request was written. aiohttp does not say, so a refused or
            # unreachable connection (ClientConnectorError) is the only safe retry.
            kind = Failure.RETRY if isinstance(exc, aiohttp.ClientConnectorError) else Failure.AMBIGUOUS
            raise SendError(kind, f"Twilio could not be reached ({type(exc).__name__})") from None
        except (TimeoutError, aiohttp.ServerTimeoutError, aiohttp.ServerDisconnectedError) as exc:
            raise SendError(Failure.AMBIGUOUS, f"no answer from Twilio ({type(exc).__name__})") from None
        return SendResult(sid=created.sid, status=created.status, from_=created.from_)

    async def list_messages(
        self,
        *,
        to: str | None = None,
        from_: str | None = None,
        date_sent_after: datetime | None = None,
        limit: int | None = None,
    ) -> list[ListedMessage]:
        """Twilio's message list (newest first), every page, as plain dicts."""
        params: dict[str, Any] = {}
        if to:
            params["to"] = to
        if from_:
            params["from_"] = from_
        if date_sent_after:
            params["date_sent_after"] = date_sent_after
        try:
            records = await asyncio.wait_for(
                self.client.messages.list_async(limit=limit, page_size=100, **params), self.timeout * 4
            )
        except TwilioRestException as exc:
            raise _classify(exc) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise SendError(Failure.RETRY, f"Twilio could not be reached ({type(exc).__name__})") from None
        return [
            {
                "sid": r.sid,
                "from": r.from_,
                "to": r.to,
                "body": r.body,
                "status": r.status,
                "direction": r.direction,
                "date_created": r.date_created,
                "date_sent": r.date_sent,
                "num_media": r.num_media,
                "messaging_service_sid": r.messaging_service_sid,
                "error_code": r.error_code,
                "account_sid": r.account_sid,
            }
            for r in records
        ]


def _classify(exc: TwilioRestException) -> SendError:
    code = exc.code
    if exc.status == 429 or code in RATE_LIMITED:
        return SendError(Failure.RETRY, exc.msg, code, exc.status)
    if exc.status >= 500:
        return SendError(Failure.AMBIGUOUS, exc.msg, code, exc.status)
    if code in PERMANENT or 400 <= exc.status < 500:
        return SendError(Failure.PERMANENT, exc.msg, code, exc.status)
    return SendError(Failure.AMBIGUOUS, exc.msg, code, exc.status)
