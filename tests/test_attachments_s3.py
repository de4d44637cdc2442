"""Attachments kept in an S3-compatible bucket: moto's S3 server, a real HTTP server on 127.0.0.1,
stands in for the bucket; the inbox talks to it through boto3 exactly as to AWS or MinIO."""

from __future__ import annotations

import asyncio

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from tests.support.db import scalar
from tests.support.media import PDF, png
from tests.support.sandbox import FAST_OUTBOX, sandbox_settings, start_sandbox, wait_for
from tests.support.servers import free_port
from tests.support.staff import create_staff, issue_token

BUCKET = "inbox-attachments"
KEYS = {"INBOX_MEDIA_S3_ACCESS_KEY_ID": "test-key", "INBOX_MEDIA_S3_SECRET_ACCESS_KEY": "test-secret"}


@pytest.fixture
def bucket():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEYS["INBOX_MEDIA_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=KEYS["INBOX_MEDIA_S3_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    client.close()
    server.stop()


def test_files_go_to_the_bucket_and_twilio_fetches_them_from_the_inbox(serve, sqlite_url, bucket, tmp_path) -> None:
    endpoint, client = bucket
    sandbox, sandbox_server = start_sandbox()
    try:
        inbox = serve(
            sqlite_url,
            runtime_options={"outbox_config": FAST_OUTBOX},
            INBOX_MEDIA_DIR=str(tmp_path / "unused"),
            INBOX_MEDIA_S3_BUCKET=BUCKET,
            INBOX_MEDIA_S3_ENDPOINT_URL=endpoint,
            INBOX_MEDIA_S3_REGION="us-east-1",
            **KEYS,
            **sandbox_settings(sandbox_server.url),
        )
        sandbox.config.inbound_webhook_url = inbox.url + "/webhooks/twilio/inbound"
        create_staff(sqlite_url, "reception@example.com")
        token = issue_token(sqlite_url, "reception@example.com")
        with httpx.Client(base_url=inbox.url, headers={"Authorization": f"Bearer {token}"}, timeout=15) as api:
            asyncio.run(sandbox.receive_from_customer(from_="+14155550123", to="+15005550007", body="Receipt?"))
            conversation_id = scalar(sqlite_url, "SELECT id FROM conversations")
            picture = png()
            ids = [
                api.post("/api/media", files={"file": ("a.png", picture, "image/png")}).json()["id"],
                api.post("/api/media", files={"file": ("b.pdf", PDF, "application/pdf")}).json()["id"],
            ]
            keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"])
            assert len(keys) == 2 and all(k.startswith("media/") for k in keys)
            assert not (tmp_path / "unused").exists()  # nothing on disk

            message = api.post(
                f"/api/conversations/{conversation_id}/messages", json={"body": "Here", "media_ids": ids}
            ).json()
            wait_for(
                lambda: (
                    scalar(sqlite_url, "SELECT status FROM messages WHERE id = :id", id=message["id"]) == "delivered"
                )
            )
            sid = scalar(sqlite_url, "SELECT sid FROM messages WHERE id = :id", id=message["id"])
            assert [f["data"] for f in sandbox.media_of(sid)] == [picture, PDF]
            assert api.get(f"/api/messages/{message['id']}/media/1").content == PDF

            # An object gone from the bucket is a 404, not a 500.
            for key in keys:
                client.delete_object(Bucket=BUCKET, Key=key)
            assert api.get(f"/api/messages/{message['id']}/media/0").status_code == 404
    finally:
        sandbox_server.stop()
        asyncio.run(sandbox.aclose())
