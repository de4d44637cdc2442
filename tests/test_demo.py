"""`inbox demo` as a newcomer meets it: the banner, the settings file it writes for `inbox
simulate` and `inbox export` in another terminal, the seeded template, a refused signature."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.db import rows
from tests.support.servers import ROOT, free_port, wait_until_up


def read_env(path: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in Path(path).read_text().splitlines() if "=" in line)
    return {key: value.strip("'") for key, value in pairs}


def inbox(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INBOX_", "TWILIO_"))}
    return subprocess.run(
        [sys.executable, "-m", "inbox.cli", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, timeout=120
    )


@pytest.fixture
def demo():
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INBOX_", "TWILIO_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "inbox.cli", "demo", "--port", str(port)],
        cwd=ROOT,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    banner = []
    deadline = time.monotonic() + 60
    for line in process.stdout:
        banner.append(line)
        if "Ctrl+C" in line or time.monotonic() > deadline:
            break
    # The banner is printed as the server starts; on a busy machine it may not listen yet.
    wait_until_up(f"http://127.0.0.1:{port}", process=process)
    try:
        yield "".join(banner)
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


def test_the_demo_writes_what_simulate_and_export_need(demo) -> None:
    [env_file] = re.findall(r"(/\S+/demo\.env)", demo)[:1]
    assert f". {env_file}" in demo
    env = read_env(env_file)
    assert oct(os.stat(env_file).st_mode & 0o777) == "0o600"
    assert {"INBOX_DATABASE_URL", "INBOX_PUBLIC_URL", "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID"} <= env.keys()

    sent = inbox("simulate", "--from", "+14155550199", "Hello from the command line", env=env)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith(b"delivered SM")

    wrong = inbox("simulate", "--from", "+14155550199", "x", env={**env, "TWILIO_AUTH_TOKEN": "0" * 32})
    assert wrong.returncode != 0
    assert "signature did not match" in wrong.stderr.decode()

    exported = inbox("export", "--format", "ndjson", "--since", "12h", env=env)
    assert exported.returncode == 0, exported.stderr
    assert b"Hello from the command line" in exported.stdout

    # A template is there to try the WhatsApp flow outside the 24-hour window.
    assert rows(env["INBOX_DATABASE_URL"], "SELECT name FROM whatsapp_templates") == [("Repair ready",)]
