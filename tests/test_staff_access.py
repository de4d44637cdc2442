"""Access that can be taken back: `inbox staff list|disable|enable|password|revoke-tokens`, the
managers' staff page, and what each does to sessions, tokens and open sockets (closed with 4401)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from contextlib import closing

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.db import execute, rows, scalar
from tests.support.live import open_socket
from tests.support.servers import ROOT
from tests.support.staff import PASSWORD, create_staff, issue_token, signed_in_client

MANAGER = "maria@example.com"
CLERK = "rui@example.com"
NEW_PASSWORD = "a brand new passphrase"


def inbox_cli(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INBOX_", "TWILIO_"))}
    env["INBOX_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "inbox.cli", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def inbox(serve, database_url):
    server = serve(database_url)
    create_staff(database_url, MANAGER, role="manager", name="Maria")
    create_staff(database_url, CLERK, name="Rui")
    server.db = database_url
    return server


def cookie_of(client: httpx.Client) -> str:
    return f"inbox_session={client.cookies['inbox_session']}"


def closed_with(socket, timeout: float = 10.0) -> int:
    """Waits (bounded) for the server to close the socket; its close code."""
    try:
        while True:
            socket.recv(timeout=timeout)  # frames before the close are skipped; TimeoutError fails the test
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else -1


def test_disable_ends_sessions_tokens_and_sockets_at_once_and_enable_restores_tokens(inbox) -> None:
    client, _ = signed_in_client(inbox.url, CLERK)
    token = issue_token(inbox.db, CLERK)
    bearer = {"Authorization": f"Bearer {token}"}
    with (
        closing(client),
        open_socket(inbox.url, cookie=cookie_of(client), origin=inbox.url) as by_cookie,
        open_socket(inbox.url, token=token) as by_token,
    ):
        result = inbox_cli(inbox.db, "staff", "disable", CLERK)
        assert result.returncode == 0, result.stderr
        assert client.get("/api/me").status_code == 401
        assert httpx.get(inbox.url + "/api/me", headers=bearer).status_code == 401
        assert closed_with(by_cookie) == 4401 and closed_with(by_token) == 4401
        # a disabled account cannot sign in: the same answer as a wrong password
        with httpx.Client(base_url=inbox.url) as again:
            from tests.support.staff import login_form_token

            csrf = login_form_token(again)
            refused = again.post("/login", data={"email": CLERK, "password": PASSWORD, "csrf_token": csrf})
            assert refused.status_code == 401
    assert inbox_cli(inbox.db, "staff", "enable", CLERK).returncode == 0
    assert httpx.get(inbox.url + "/api/me", headers=bearer).status_code == 200  # tokens are kept
    signed_in_client(inbox.url, CLERK)[0].close()


def test_a_new_password_ends_sessions_and_the_old_one_stops_working(inbox) -> None:
    client, _ = signed_in_client(inbox.url, CLERK)
    with closing(client), open_socket(inbox.url, cookie=cookie_of(client), origin=inbox.url) as socket:
        result = inbox_cli(inbox.db, "staff", "password", CLERK, stdin=NEW_PASSWORD + "\n")
        assert result.returncode == 0, result.stderr
        assert client.get("/api/me").status_code == 401
        assert closed_with(socket) == 4401
    signed_in_client(inbox.url, CLERK, NEW_PASSWORD)[0].close()
    short = inbox_cli(inbox.db, "staff", "password", CLERK, stdin="short\n")
    assert short.returncode == 2 and short.stderr.count("\n") == 1 and "8 characters" in short.stderr


def test_revoke_tokens_and_token_names_and_last_use(inbox) -> None:
    named = inbox_cli(inbox.db, "staff", "token", CLERK, "--name", "reporting script")
    assert named.returncode == 0
    token = named.stdout.strip()
    assert token.startswith("inbox_")
    assert rows(inbox.db, "SELECT name, last_used_at FROM api_tokens") == [("reporting script", None)]
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(inbox.url + "/api/me", headers=bearer).status_code == 200
    assert scalar(inbox.db, "SELECT last_used_at FROM api_tokens") is not None
    with open_socket(inbox.url, token=token) as socket:
        result = inbox_cli(inbox.db, "staff", "revoke-tokens", CLERK)
        assert result.returncode == 0 and "revoked 1 token" in result.stdout
        assert httpx.get(inbox.url + "/api/me", headers=bearer).status_code == 401
        assert closed_with(socket) == 4401


def test_staff_list_shows_every_account(inbox) -> None:
    signed_in_client(inbox.url, MANAGER)[0].close()
    inbox_cli(inbox.db, "staff", "disable", CLERK)
    result = inbox_cli(inbox.db, "staff", "list")
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["EMAIL", "NAME", "ROLE", "ENABLED", "LAST", "SIGN-IN", "TOKENS"]
    maria = next(line for line in lines if line.startswith(MANAGER)).split()
    rui = next(line for line in lines if line.startswith(CLERK)).split()
    assert maria[1:4] == ["Maria", "manager", "yes"] and "UTC" in maria
    assert rui[1:5] == ["Rui", "receptionist", "no", "never"]


def test_bad_input_to_staff_commands_is_one_line_and_changes_nothing(inbox) -> None:
    for args in (("disable", "nobody@example.com"), ("enable", "not-an-email"), ("revoke-tokens", "x@y.z")):
        result = inbox_cli(inbox.db, "staff", *args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert scalar(inbox.db, "SELECT count(*) FROM staff WHERE disabled") == 0


def test_sign_out_closes_that_sessions_sockets_only(inbox) -> None:
    first, csrf = signed_in_client(inbox.url, CLERK)
    second, _ = signed_in_client(inbox.url, CLERK)
    with (
        closing(first),
        closing(second),
        open_socket(inbox.url, cookie=cookie_of(first), origin=inbox.url) as mine,
        open_socket(inbox.url, cookie=cookie_of(second), origin=inbox.url) as other,
    ):
        assert first.post("/logout", data={"csrf_token": csrf}).status_code == 303
        assert closed_with(mine) == 4401
        assert second.get("/api/me").status_code == 200
        assert other.ping().wait(5)  # still open


def test_the_staff_page_takes_access_back(inbox) -> None:
    manager, _ = signed_in_client(inbox.url, MANAGER)
    clerk, _ = signed_in_client(inbox.url, CLERK)
    token = issue_token(inbox.db, CLERK)
    clerk_id = scalar(inbox.db, "SELECT id FROM staff WHERE email = :e", e=CLERK)
    with closing(manager), closing(clerk):
        assert clerk.get("/staff").status_code == 403
        page = manager.get("/staff")
        assert page.status_code == 200 and CLERK in page.text and "never" not in page.text.split(MANAGER)[1][:400]
        import re

        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        forged = manager.post(f"/staff/{clerk_id}/disable", data={"csrf_token": "forged"})
        assert forged.status_code == 403 and clerk.get("/api/me").status_code == 200
        with open_socket(inbox.url, cookie=cookie_of(clerk), origin=inbox.url) as socket:
            done = manager.post(f"/staff/{clerk_id}/disable", data={"csrf_token": csrf})
            assert done.status_code == 303
            assert clerk.get("/api/me").status_code == 401
            assert closed_with(socket) == 4401
        assert "disabled" in manager.get("/staff").text
        assert manager.post(f"/staff/{clerk_id}/enable", data={"csrf_token": csrf}).status_code == 303
        assert manager.post(f"/staff/{clerk_id}/revoke-tokens", data={"csrf_token": csrf}).status_code == 303
        assert httpx.get(inbox.url + "/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        short = manager.post(f"/staff/{clerk_id}/password", data={"csrf_token": csrf, "password": "short"})
        assert "error=" in short.headers["location"]
        ok = manager.post(f"/staff/{clerk_id}/password", data={"csrf_token": csrf, "password": NEW_PASSWORD})
        assert "done=" in ok.headers["location"]
        signed_in_client(inbox.url, CLERK, NEW_PASSWORD)[0].close()
        manager_id = scalar(inbox.db, "SELECT id FROM staff WHERE email = :e", e=MANAGER)
        itself = manager.post(f"/staff/{manager_id}/disable", data={"csrf_token": csrf})
        assert "error=" in itself.headers["location"] and manager.get("/api/me").status_code == 200
        assert manager.post(f"/staff/{2**70}/disable", data={"csrf_token": csrf}).status_code == 404


def test_expired_sessions_are_purged_at_sign_in(inbox) -> None:
    stale, _ = signed_in_client(inbox.url, CLERK)
    stale.close()
    execute(inbox.db, "UPDATE web_sessions SET expires_at = '2000-01-01 00:00:00'")
    assert scalar(inbox.db, "SELECT count(*) FROM web_sessions") == 1
    signed_in_client(inbox.url, MANAGER)[0].close()
    assert scalar(inbox.db, "SELECT count(*) FROM web_sessions") == 1  # only the new one


def test_a_new_secret_key_signs_everyone_out_and_tokens_keep_working(serve, database_url) -> None:
    """INBOX_SECRET_KEY keys what is stored of each session: an operator who rotates it ends every
    browser session at once; API tokens (issued from the command line) are not tied to it."""
    create_staff(database_url, CLERK, name="Rui")
    token = issue_token(database_url, CLERK)
    first = serve(database_url, INBOX_SECRET_KEY="the-first-key-" + "x" * 32)
    client, _ = signed_in_client(first.url, CLERK)
    client.close()  # only its cookie is used below
    [(stored,)] = rows(database_url, "SELECT id_hash FROM web_sessions")
    assert stored != hashlib.sha256(client.cookies["inbox_session"].encode()).hexdigest()  # keyed, not plain
    assert httpx.get(first.url + "/api/me", headers={"Cookie": cookie_of(client)}).status_code == 200

    same_key = serve(database_url, INBOX_SECRET_KEY="the-first-key-" + "x" * 32)
    assert httpx.get(same_key.url + "/api/me", headers={"Cookie": cookie_of(client)}).status_code == 200
    rotated = serve(database_url, INBOX_SECRET_KEY="the-second-key-" + "y" * 32)
    assert httpx.get(rotated.url + "/api/me", headers={"Cookie": cookie_of(client)}).status_code == 401
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(rotated.url + "/api/me", headers=bearer).status_code == 200
