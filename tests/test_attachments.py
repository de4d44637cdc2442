"""Attachments: uploaded by staff, judged by their bytes, fetched by the Twilio sandbox from an
unguessable URL without a login, gone once the message settles; inbound MMS fetched through the
inbox with the account's credentials. Real HTTP, the official client, both databases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from inbox import attachments
from inbox.clock import utcnow
from inbox.models import MediaFile
from tests.support.db import rows, scalar
from tests.support.media import PDF, png
from tests.support.sandbox import CUSTOMER, customer_writes, wait_for, wire

UK_CUSTOMER = "+447700900123"


@pytest.fixture
def media_dir(tmp_path) -> Path:
    return tmp_path / "media"


@pytest.fixture
def wired(serve, database_url, media_dir):
    with wire(serve, database_url, INBOX_MEDIA_DIR=str(media_dir)) as wired:
        wired.sandbox.config.public_url = wired.sandbox_url  # where its customers' MMS files are served
        yield wired


def upload(wired, data: bytes, name: str, label: str) -> httpx.Response:
    return wired.api.post("/api/media", files={"file": (name, data, label)})


def status_of(wired, message_id: int) -> str:
    return scalar(wired.db, "SELECT status FROM messages WHERE id = :id", id=message_id)


def test_an_image_and_a_pdf_reach_the_sandbox_then_their_urls_expire(wired) -> None:
    conversation_id = customer_writes(wired, "Can you send the receipt?")
    picture, document = png(), PDF
    image = upload(wired, picture, "photo.png", "image/png")
    pdf = upload(wired, document, "receipt.pdf", "application/pdf")
    assert image.status_code == 201 and pdf.status_code == 201, (image.text, pdf.text)
    assert image.json()["content_type"] == "image/png" and image.json()["size"] == len(picture)
    assert pdf.json()["content_type"] == "application/pdf"
    ids = [image.json()["id"], pdf.json()["id"]]

    response = wired.api.post(f"/api/conversations/{conversation_id}/messages", json={"body": "", "media_ids": ids})
    assert response.status_code == 202, response.text
    message = response.json()
    urls = [m["url"] for m in message["media"]]
    assert [m["content_type"] for m in message["media"]] == ["image/png", "application/pdf"]
    assert all(url.startswith(wired.inbox.url + "/media/") for url in urls)

    wait_for(lambda: status_of(wired, message["id"]) == "delivered", message="delivered")
    # The sandbox fetched each URL once, with no credentials at all, and got the very bytes.
    assert wired.sandbox.media_fetches == [(urls[0], 200), (urls[1], 200)]
    sid = scalar(wired.db, "SELECT sid FROM messages WHERE id = :id", id=message["id"])
    fetched = wired.sandbox.media_of(sid)
    assert [(f["content_type"], f["data"]) for f in fetched] == [("image/png", picture), ("application/pdf", document)]

    # Delivered: the URLs are gone; a changed token never was one.
    wait_for(lambda: scalar(wired.db, "SELECT count(*) FROM media_files WHERE expires_at IS NOT NULL") == 2)
    with httpx.Client(timeout=10) as anonymous:
        assert [anonymous.get(url).status_code for url in urls] == [404, 404]
        altered = urls[0][:-4] + ("AAAA" if not urls[0].endswith("AAAA") else "BBBB")
        assert anonymous.get(altered).status_code == 404
        assert anonymous.get(wired.inbox.url + "/media/").status_code == 404
        # Staff still see what they sent, through the signed-in route; nobody else does.
        assert wired.api.get(f"/api/messages/{message['id']}/media/0").content == picture
        assert anonymous.get(f"{wired.inbox.url}/api/messages/{message['id']}/media/0").status_code == 401

    # A file goes out once: naming it again is refused, and nothing more is sent.
    again = wired.api.post(f"/api/conversations/{conversation_id}/messages", json={"body": "Again", "media_ids": ids})
    assert again.status_code == 409 and again.json()["error"] == "media_unavailable"


def test_a_changed_url_is_404_while_the_real_one_serves_the_file(wired) -> None:
    """Before the message settles the URL works for anyone holding it, and only that URL."""
    conversation_id = customer_writes(wired, "Photo please")
    media_id = upload(wired, png(), "a.png", "image/png").json()["id"]
    # Unattached: no URL exists yet, so nothing is served whatever is guessed.
    token = scalar(wired.db, "SELECT token FROM media_files WHERE id = :id", id=media_id)
    assert httpx.get(f"{wired.inbox.url}/media/{token}").status_code == 404
    wired.sandbox.fail_delivery(CUSTOMER, status="undelivered")
    wired.sandbox.config.callback_delays = (2.0, 2.0)  # time to look before it settles
    path, key = f"/api/conversations/{conversation_id}/messages", {"Idempotency-Key": "photo-1"}
    message = wired.api.post(path, json={"body": "Here", "media_ids": [media_id]}, headers=key).json()
    # A retried request (the same key, the same files) is the same message; other files are not.
    again = wired.api.post(path, json={"body": "Here", "media_ids": [media_id]}, headers=key)
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == message["id"]
    other = upload(wired, png(), "b.png", "image/png").json()["id"]
    changed = wired.api.post(path, json={"body": "Here", "media_ids": [other]}, headers=key)
    assert changed.status_code == 422 and changed.json()["error"] == "idempotency_key_reused"
    url = message["media"][0]["url"]
    assert httpx.get(url).status_code == 200 and httpx.get(url).headers["content-type"] == "image/png"
    assert httpx.get(url[:-1] + ("x" if url[-1] != "x" else "y")).status_code == 404
    wait_for(lambda: status_of(wired, message["id"]) == "undelivered", timeout=15, message="undelivered")
    wait_for(lambda: httpx.get(url).status_code == 404, message="expired after undelivered")


def test_uploads_are_judged_by_their_bytes_and_their_size(wired, media_dir) -> None:
    html = b"<!DOCTYPE html><html><script>alert(1)</script></html>"
    refused = upload(wired, html, "cat.png", "image/png")
    assert refused.status_code == 422
    assert refused.json()["error"] == "unsupported_media"
    assert "HTML" in refused.json()["detail"] and "image/png" in refused.json()["detail"]
    big = upload(wired, b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024), "big.jpg", "image/jpeg")
    assert big.status_code == 413 and big.json()["error"] == "too_large"
    huge = upload(wired, b"%PDF-" + b"\0" * (8 * 1024 * 1024), "huge.pdf", "application/pdf")
    assert huge.status_code == 413 and huge.json()["error"] == "too_large"
    assert upload(wired, b"", "empty.png", "image/png").status_code == 422
    assert wired.api.post("/api/media", data={"file": "text"}).status_code == 422
    # A GIF labelled as anything is a GIF; nothing refused was kept.
    gif = upload(wired, b"GIF89a" + b"\0" * 20, "x.bin", "application/octet-stream")
    assert gif.status_code == 201 and gif.json()["content_type"] == "image/gif"
    assert scalar(wired.db, "SELECT count(*) FROM media_files") == 1
    assert len([p for p in media_dir.rglob("*") if p.is_file()]) == 1


def test_mms_to_a_uk_number_is_refused_before_sending_and_whatsapp_carries_it(wired) -> None:
    conversation_id = customer_writes(wired, "Hello from London", from_=UK_CUSTOMER, to="+15005550007")
    media_id = upload(wired, png(), "a.png", "image/png").json()["id"]
    refused = wired.api.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"body": "Your quote", "channel": "sms", "media_ids": [media_id]},
    )
    assert refused.status_code == 422 and refused.json()["error"] == "mms_unsupported_country"
    assert "US and Canada" in refused.json()["detail"] and "United Kingdom" in refused.json()["detail"]
    assert scalar(wired.db, "SELECT count(*) FROM messages WHERE direction = 'outbound'") == 0
    assert not [m for m in wired.sandbox.conversation_with(UK_CUSTOMER) if m["direction"] == "outbound-api"]
    # The file is still free: the same customer on WhatsApp gets it.
    customer_writes(wired, "On WhatsApp now", from_="whatsapp:" + UK_CUSTOMER, to="whatsapp:+14155238886")
    sent = wired.api.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"channel": "whatsapp", "media_ids": [media_id]},
    )
    assert sent.status_code == 202, sent.text
    wait_for(lambda: status_of(wired, sent.json()["id"]) == "delivered", message="delivered on WhatsApp")


def test_a_file_twilio_cannot_fetch_fails_the_message_with_11200(wired, media_dir) -> None:
    conversation_id = customer_writes(wired, "Send the form")
    media_id = upload(wired, PDF, "form.pdf", "application/pdf").json()["id"]
    for stored in media_dir.rglob("*"):  # the file is lost (a volume not mounted, say)
        if stored.is_file():
            stored.unlink()
    message = wired.api.post(
        f"/api/conversations/{conversation_id}/messages", json={"body": "The form", "media_ids": [media_id]}
    ).json()
    wait_for(lambda: status_of(wired, message["id"]) == "failed", message="failed")
    assert scalar(wired.db, "SELECT error_code FROM messages WHERE id = :id", id=message["id"]) == 11200
    assert "attachment" in scalar(wired.db, "SELECT error_message FROM messages WHERE id = :id", id=message["id"])
    assert wired.sandbox.media_fetches == [(message["media"][0]["url"], 404)]


def test_inbound_mms_is_fetched_through_the_inbox_with_the_accounts_credentials(wired) -> None:
    picture = png()
    customer_writes(wired, "Here is the crack", files=[(picture, "image/png")])
    message_id = scalar(wired.db, "SELECT id FROM messages WHERE direction = 'inbound'")
    conversation = wired.api.get(
        f"/api/conversations/{scalar(wired.db, 'SELECT conversation_id FROM messages WHERE id = :id', id=message_id)}"
    ).json()
    [media] = conversation["messages"][0]["media"]
    assert media["content_type"] == "image/png" and media["url"].startswith(wired.sandbox_url)
    assert httpx.get(media["url"]).status_code == 401  # Twilio's URL needs the account's credentials
    through = wired.api.get(f"/api/messages/{message_id}/media/0")
    assert through.status_code == 200 and through.content == picture
    assert through.headers["content-type"] == "image/png"
    assert wired.api.get(f"/api/messages/{message_id}/media/1").status_code == 404
    assert httpx.get(f"{wired.inbox.url}/api/messages/{message_id}/media/0").status_code == 401


def test_uploads_never_sent_are_swept_after_a_day_and_sent_ones_kept(wired, media_dir) -> None:
    conversation_id = customer_writes(wired, "Hi")
    abandoned = upload(wired, png(), "old.png", "image/png").json()["id"]
    sent = upload(wired, PDF, "kept.pdf", "application/pdf").json()["id"]
    fresh = upload(wired, png(), "new.png", "image/png").json()["id"]
    reply = wired.api.post(f"/api/conversations/{conversation_id}/messages", json={"body": "x", "media_ids": [sent]})
    assert reply.status_code == 202
    runtime = wired.inbox.runtime

    async def two_days_ago() -> None:
        async with runtime.db.write() as session:
            await session.execute(
                update(MediaFile)
                .where(MediaFile.id.in_([abandoned, sent]))
                .values(created_at=utcnow() - timedelta(days=2))
            )
            await session.commit()

    wired.inbox.call(two_days_ago())
    assert wired.inbox.call(attachments.sweep_orphans(runtime.db, runtime.media_storage)) == 1
    assert sorted(r[0] for r in rows(wired.db, "SELECT id FROM media_files")) == sorted([sent, fresh])
    assert len([p for p in media_dir.rglob("*") if p.is_file()]) == 2
    late = wired.api.post(
        f"/api/conversations/{conversation_id}/messages", json={"body": "x", "media_ids": [abandoned]}
    )
    assert late.status_code == 422 and late.json()["error"] == "unknown_media"


def test_a_file_stops_being_served_a_day_after_twilio_took_it_when_no_outcome_comes(wired, monkeypatch) -> None:
    """A lost final callback must not leave a file public for good: Twilio fetched it while it
    sent the message, so a day later the URL answers 404 whatever the message's status says."""
    wired.sandbox.config.callback_delays = (0.05, 3600.0)  # "sent", then nothing more for an hour
    conversation_id = customer_writes(wired, "The photo, please")
    file_id = upload(wired, png(), "photo.png", "image/png").json()["id"]
    message = wired.api.post(
        f"/api/conversations/{conversation_id}/messages", json={"body": "Here it is", "media_ids": [file_id]}
    ).json()
    url = message["media"][0]["url"]
    wait_for(lambda: status_of(wired, message["id"]) == "sent", message="sent")
    assert wired.sandbox.media_fetches == [(url, 200)]
    assert httpx.get(url).status_code == 200  # still within the day: a retried send could need it
    monkeypatch.setattr(attachments, "utcnow", lambda: utcnow() + timedelta(hours=25))  # the server runs here
    assert httpx.get(url).status_code == 404
    assert status_of(wired, message["id"]) == "sent"


def test_a_canceled_scheduled_reply_s_files_stop_being_served_at_once(wired) -> None:
    conversation_id = customer_writes(wired, "Send me the form tomorrow")
    file_id = upload(wired, PDF, "form.pdf", "application/pdf").json()["id"]
    send_at = (utcnow() + timedelta(hours=20)).isoformat()
    message = wired.api.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"body": "The form", "media_ids": [file_id], "send_at": send_at},
    )
    assert message.status_code == 202, message.text
    url = message.json()["media"][0]["url"]
    assert wired.api.delete(f"/api/messages/{message.json()['id']}").json()["status"] == "canceled"
    assert httpx.get(url).status_code == 404  # it will never go out: nobody needs the file at that address
    assert wired.api.get(f"/api/messages/{message.json()['id']}/media/0").status_code == 200  # staff still see it
