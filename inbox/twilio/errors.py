"""Twilio error codes: which may be retried, and a sentence a receptionist understands for each."""

from __future__ import annotations

# Refused for good: retrying cannot help, and the message is marked failed with the reason.
PERMANENT = {21211, 21408, 21602, 21604, 21606, 21610, 21612, 21614, 21617, 21703, 63016, 63018, 20003, 20404}
RATE_LIMITED = {20429}

EXPLANATIONS = {
    20003: "The inbox's Twilio credentials were refused. A manager should check the Twilio settings.",
    11200: "Twilio could not fetch an attachment from the inbox (its address did not answer). Check INBOX_PUBLIC_URL "
    "and send the file again.",
    20429: "Twilio asked us to slow down; the message will be retried.",
    21211: "This is not a valid phone number. Check the customer's number.",
    21408: "Sending to this country is not enabled on the Twilio account. A manager can enable it in the Twilio Console (Geo permissions).",
    21602: "The message was empty.",
    21606: "The sending number cannot send this kind of message.",
    21610: "The customer has opted out (they texted STOP). They must text START before you can message them.",
    21612: "Twilio cannot send from this number to this customer's number.",
    21614: "This number cannot receive text messages (it is probably a landline).",
    21617: "The message is longer than 1,600 characters.",
    21620: "Twilio refused an attachment: its address is not valid or the file is too large.",
    21623: "A message can carry at most 10 attachments.",
    21703: "The sending number is not in the Messaging Service. A manager should check the Twilio settings.",
    30003: "The customer's phone is unreachable (switched off or out of coverage). Try again later or call them.",
    30005: "The number does not exist or is no longer in service. Check the number with the customer.",
    30006: "The number is a landline or its carrier cannot receive texts. Call the customer instead.",
    30007: "The carrier filtered this message as spam. Rephrase it (avoid links and all-caps) and try again.",
    30008: "The carrier could not deliver this message for an unknown reason. Try again later.",
    63016: "WhatsApp allows free-form messages only within 24 hours of the customer's last message. Send an approved template instead.",
    63018: "WhatsApp rate limit reached; the message could not be sent.",
}


def explain(code: int | None, fallback: str | None = None) -> str | None:
    if code is None:
        return fallback
    return EXPLANATIONS.get(code, fallback or f"Twilio error {code}.")
