"""The README's screenshots, taken from a fresh `inbox demo` in headless Chromium.

    uv run python scripts/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]

Starts `inbox demo` on a free port, signs in as the demo manager, waits for the seeded
conversations, and saves the inbox, a thread with its composer (wide and at 390 px), the settings
and export pages and a transcript, in the light theme and the inbox in the dark one. The demo is
stopped afterwards. Needs Playwright (a dev dependency) and a Chromium.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDE = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_demo(port: int) -> tuple[subprocess.Popen, str, str]:
    """The running demo, its manager's email and password (read from its banner)."""
    demo = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "inbox.cli", "demo", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    banner = ""
    deadline = time.monotonic() + 60
    for line in demo.stdout:
        banner += line
        if "Ctrl+C" in line or time.monotonic() > deadline:
            break
    found = re.search(r"or\s+(\S+@\S+)\s+password\s+(\S+)", banner)
    if not found:
        demo.terminate()
        raise SystemExit(f"could not read the demo's banner:\n{banner}")
    while time.monotonic() < deadline:  # the banner comes before the server listens
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                break
        except OSError:
            time.sleep(0.1)
    return demo, found.group(1), found.group(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    demo, email, password = start_demo(port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            for scheme in ("light", "dark"):
                for name, viewport in (("wide", WIDE), ("phone", PHONE)):
                    page = browser.new_context(viewport=viewport, color_scheme=scheme).new_page()
                    page.goto(base + "/login")
                    page.get_by_label("Email").fill(email)
                    page.get_by_label("Password").fill(password)
                    page.get_by_role("button", name="Sign in").click()
                    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
                    items = page.locator("#conversation-list [data-conversation-id]")
                    expect(items).to_have_count(3, timeout=20000)
                    suffix = "" if scheme == "light" else "-dark"
                    if name == "wide":
                        page.screenshot(path=out / f"inbox{suffix}.png")
                    page.locator("#conversation-list .conversation-link").last.click()
                    expect(page.locator("#composer-body")).to_be_visible()
                    page.locator("#composer-body").fill("We can fit you in at 10:30 on Friday. Does that work?")
                    page.screenshot(path=out / f"thread-{name}{suffix}.png")
                    if scheme == "light" and name == "wide":
                        conversation = page.locator("#composer").get_attribute("data-conversation-id")
                        for path, file in (
                            ("/settings", "settings"),
                            ("/export", "export"),
                            ("/reports", "reports"),
                            ("/staff", "staff"),
                            (f"/conversations/{conversation}/transcript", "transcript"),
                        ):
                            page.goto(base + path)
                            page.screenshot(path=out / f"{file}.png", full_page=True)
                    page.context.close()
            browser.close()
    finally:
        demo.terminate()
        demo.wait(timeout=30)
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    main()
