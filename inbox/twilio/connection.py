"""Check the Twilio connection in words, through the official client (no database in here).

    report = await check_connection(sender, messaging_service_sid=..., uses_api_key=...)
    report.ok, report.checks -> [Check(name, ok, text)], report.senders

What it asks Twilio, in order:
1. the account (`client.api.v2010.accounts(sid).fetch()`): do the SID and token (or API key) work?
   A Standard API key may not read the account (only a Main key may): then the message list
   answers the same question for it;
2. the Messaging Service (`client.messaging.v1.services(sid).fetch()`), when one is set;
3. its senders (`.phone_numbers.list()`).
Nothing here ever names a secret: Twilio's account answer holds the auth token, and it is dropped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException

from inbox.twilio.client import TwilioSender

CHECK_TIMEOUT = 10.0


@dataclass(frozen=True)
class Check:
    name: str  # "credentials" | "messaging_service" | "senders"
    ok: bool
    text: str  # a sentence for a manager


@dataclass
class ConnectionReport:
    checks: list[Check] = field(default_factory=list)
    senders: list[str] = field(default_factory=list)
    account_name: str | None = None

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


async def check_connection(
    sender: TwilioSender, *, messaging_service_sid: str | None, uses_api_key: bool
) -> ConnectionReport:
    report = ConnectionReport()
    client = sender.client
    who = "The API key (TWILIO_API_KEY_SID and its secret)" if uses_api_key else "The Account SID and auth token"
    try:
        try:
            account = await asyncio.wait_for(client.api.v2010.accounts(sender.account_sid).fetch_async(), CHECK_TIMEOUT)
            report.account_name = str(account.friendly_name or "")
            status = str(account.status or "active")
            if status != "active":
                report.checks.append(
                    Check("credentials", False, f"{who} work, but the account “{report.account_name}” is {status}.")
                )
                return report
            kind = " (a trial account: it can only text verified numbers)" if account.type == "Trial" else ""
            report.checks.append(
                Check(
                    "credentials", True, f"{who} work: Twilio answered for the account “{report.account_name}”{kind}."
                )
            )
        except TwilioRestException as exc:
            if uses_api_key and exc.status == 401:
                # A Standard key may not read /Accounts: ask for something every key may read.
                try:
                    await asyncio.wait_for(client.messages.list_async(limit=1), CHECK_TIMEOUT)
                except TwilioException:  # a list page's refusal is not a TwilioRestException
                    report.checks.append(Check("credentials", False, _refusal_text(exc, who, sender.account_sid)))
                    return report
                report.checks.append(
                    Check(
                        "credentials",
                        True,
                        f"{who} work. (It is a Standard key, which may not read the account's own details: "
                        "that is expected.)",
                    )
                )
            else:
                report.checks.append(Check("credentials", False, _refusal_text(exc, who, sender.account_sid)))
                return report
        if not messaging_service_sid:
            report.checks.append(
                Check(
                    "messaging_service",
                    True,
                    "No Messaging Service is set (TWILIO_MESSAGING_SERVICE_SID): replies go from TWILIO_PHONE_NUMBER.",
                )
            )
            return report
        service_api = client.messaging.v1.services(messaging_service_sid)
        try:
            service = await asyncio.wait_for(service_api.fetch_async(), CHECK_TIMEOUT)
        except TwilioRestException as exc:
            if exc.status == 404:
                text = (
                    f"The Messaging Service {messaging_service_sid} does not exist on this account "
                    f"(Twilio error {exc.code or 20404}). Check TWILIO_MESSAGING_SERVICE_SID against the Console."
                )
            else:
                text = f"Twilio would not show the Messaging Service {messaging_service_sid}: {_said(exc)}."
            report.checks.append(Check("messaging_service", False, text))
            return report
        report.checks.append(
            Check("messaging_service", True, f"The Messaging Service “{service.friendly_name}” exists.")
        )
        numbers = await asyncio.wait_for(service_api.phone_numbers.list_async(limit=100), CHECK_TIMEOUT)
        report.senders = [str(n.phone_number) for n in numbers if n.phone_number]
        if report.senders:
            report.checks.append(
                Check(
                    "senders",
                    True,
                    f"Its sender{'s' if len(report.senders) > 1 else ''}: {', '.join(report.senders)}.",
                )
            )
        else:
            report.checks.append(
                Check(
                    "senders",
                    False,
                    "The Messaging Service has no phone numbers: SMS cannot go out until one is added to its "
                    "sender pool in the Console.",
                )
            )
    except TwilioRestException as exc:
        report.checks.append(Check("twilio", False, f"Twilio refused a request: {_said(exc)}."))
    except TwilioException as exc:  # a list page Twilio refused: the client says only that
        report.checks.append(Check("twilio", False, f"Twilio refused a request ({exc.args[0] if exc.args else exc})."))
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        report.checks.append(
            Check(
                "twilio",
                False,
                f"Twilio could not be reached at {sender.base_url} ({type(exc).__name__}). "
                "Check the network, and TWILIO_API_BASE_URL if it is set.",
            )
        )
    return report


def _said(exc: TwilioRestException) -> str:
    return f"HTTP {exc.status}, Twilio error {exc.code}" if exc.code else f"HTTP {exc.status}"


def _refusal_text(exc: TwilioRestException, who: str, account_sid: str) -> str:
    if exc.status == 401 or exc.code == 20003:
        return (
            f"{who} do not work: Twilio refused them (error 20003, authentication failed). Copy them again "
            "from the Twilio Console (Account Info), without spaces."
        )
    if exc.status == 404 or exc.code == 20404:
        return (
            f"Twilio knows no account {account_sid} for these credentials (error 20404): TWILIO_ACCOUNT_SID "
            "may belong to another account."
        )
    return f"Twilio did not accept the credentials: {_said(exc)}."
