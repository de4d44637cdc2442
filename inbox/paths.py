"""Where the templates and static files are: beside the package in a checkout, inside it in a wheel.

Resolved from the package's own location, never the working directory, so `inbox serve`
works from any folder.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _resource(name: str) -> Path:
    installed = _PACKAGE / f"_{name}"  # hatchling force-include puts them here in the wheel
    return installed if installed.is_dir() else _PACKAGE.parent / name


TEMPLATES = _resource("templates")
STATIC = _resource("static")

# Where Twilio posts: the routes (inbox.web.webhooks), the status callback every reply names
# (inbox.outbox), the URLs the settings page shows, the demo's sandbox and `inbox simulate`.
INBOUND_WEBHOOK = "/webhooks/twilio/inbound"
STATUS_WEBHOOK = "/webhooks/twilio/status"
