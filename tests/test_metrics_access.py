"""/metrics at one canonical path only, and behind INBOX_METRICS_TOKEN when it is set."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import httpx


def _raw_get(base_url: str, path: str, headers: dict[str, str] | None = None) -> int:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_metrics_answers_only_at_its_own_path(serve, sqlite_url) -> None:
    server = serve(sqlite_url)
    assert httpx.get(server.url + "/metrics").status_code == 200
    for path in ("/metrics/", "//metrics", "/%6detrics", "/metrics%2f"):
        assert _raw_get(server.url, path) == 404, path


def test_metrics_token_is_required_when_set(serve, sqlite_url) -> None:
    server = serve(sqlite_url, INBOX_METRICS_TOKEN="scrape-me-please")
    assert httpx.get(server.url + "/metrics").status_code == 401
    assert httpx.get(server.url + "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    good = httpx.get(server.url + "/metrics", headers={"Authorization": "Bearer scrape-me-please"})
    assert good.status_code == 200 and "inbox_webhooks_total" in good.text
