"""Settings refuse malformed values in one line; the `inbox` command's errors are one line too."""

from __future__ import annotations

import subprocess
import sys

import pytest

from inbox.settings import SettingsError, load_settings
from tests.support.db import scalar
from tests.support.servers import ROOT
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN


@pytest.mark.parametrize(
    ("variable", "value", "shape"),
    [
        ("TWILIO_ACCOUNT_SID", "AC123", "AC followed by 32 hex characters"),
        ("TWILIO_API_KEY_SID", "XX" + "a" * 32, "SK followed by 32 hex characters"),
        ("TWILIO_MESSAGING_SERVICE_SID", "MGnot-hex", "MG followed by 32 hex characters"),
        ("TWILIO_AUTH_TOKEN", "short", "32 hex characters"),
        ("TWILIO_PHONE_NUMBER", "555-1234", "E.164"),
        ("TWILIO_WHATSAPP_FROM", "+14155238886", "whatsapp:"),
        ("INBOX_DATABASE_URL", "mysql://x", "sqlite+aiosqlite"),
        ("INBOX_PUBLIC_URL", "inbox.example.com", "http"),
        ("INBOX_KEYWORD_REPLIES", "both", "inbox"),
        ("INBOX_DEFAULT_COUNTRY", "USA", "ISO 3166"),
    ],
)
def test_malformed_settings_name_the_variable_and_shape(variable, value, shape) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(_env_file=None, **{variable: value})
    message = str(error.value)
    assert message.startswith(variable) and shape in message and "\n" not in message


def test_secret_values_never_appear_in_the_error() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(_env_file=None, TWILIO_AUTH_TOKEN="my-secret-token-value")
    assert "my-secret-token-value" not in str(error.value)


def run_inbox(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
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
def cli_env(tmp_path, monkeypatch) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("INBOX_", "TWILIO_"))}
    env["INBOX_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    return env


def test_serve_refuses_a_bad_sid_in_one_line(cli_env) -> None:
    result = run_inbox("serve", env={**cli_env, "TWILIO_ACCOUNT_SID": "ACnope", "INBOX_SECRET_KEY": "x"})
    assert result.returncode == 2
    assert result.stderr == "inbox: TWILIO_ACCOUNT_SID must be AC followed by 32 hex characters\n"


def test_serve_requires_a_secret_key(cli_env) -> None:
    result = run_inbox("serve", env=cli_env)
    assert result.returncode == 2 and "INBOX_SECRET_KEY" in result.stderr


def test_migrate_and_staff_commands(cli_env, tmp_path) -> None:
    assert run_inbox("migrate", env=cli_env).returncode == 0
    url = cli_env["INBOX_DATABASE_URL"]
    added = run_inbox(
        "staff",
        "add",
        "Maria@Example.com",
        "--role",
        "manager",
        "--name",
        "Maria",
        env=cli_env,
        stdin="a long enough password\n",
    )
    assert added.returncode == 0, added.stderr
    assert scalar(url, "SELECT role FROM staff WHERE email = 'maria@example.com'") == "manager"

    again = run_inbox("staff", "add", "maria@example.com", "--role", "manager", env=cli_env, stdin="another password\n")
    assert again.returncode == 2 and again.stderr == "inbox: maria@example.com already has an account\n"
    short = run_inbox("staff", "add", "tom@example.com", "--role", "receptionist", env=cli_env, stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    assert scalar(url, "SELECT count(*) FROM staff") == 1  # nothing half-written

    token = run_inbox("staff", "token", "maria@example.com", env=cli_env)
    assert token.returncode == 0 and token.stdout.startswith("inbox_")
    stored = scalar(url, "SELECT token_hash FROM api_tokens")
    assert token.stdout.strip() not in stored  # stored hashed only
    unknown = run_inbox("staff", "token", "nobody@example.com", env=cli_env)
    assert unknown.returncode == 2 and unknown.stderr == "inbox: no staff account for nobody@example.com\n"


def test_simulate_posts_a_signed_webhook_to_a_running_inbox(serve, sqlite_url, cli_env) -> None:
    server = serve(sqlite_url)
    env = {
        **cli_env,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "INBOX_PUBLIC_URL": server.url,
    }
    result = run_inbox("simulate", "--from", "+14155550199", "--channel", "whatsapp", "Hello from the CLI", env=env)
    assert result.returncode == 0, result.stderr
    assert scalar(sqlite_url, "SELECT body FROM messages") == "Hello from the CLI"
    assert scalar(sqlite_url, "SELECT from_addr FROM messages") == "whatsapp:+14155550199"
    bad = run_inbox("simulate", "--from", "0415", "hi", env=env)
    assert bad.returncode == 2 and "E.164" in bad.stderr
