"""The README keeps up with the code: every setting and every live event type is documented."""

from __future__ import annotations

from pathlib import Path

from inbox.events import EVENT_TYPES
from inbox.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_opens_with_the_two_quick_start_commands() -> None:
    first_lines = [line.strip() for line in README.splitlines()[:6] if line.strip()]
    assert first_lines[1].startswith("uv run inbox demo") and first_lines[2].startswith("uv run pytest")


def test_every_setting_is_in_the_readme() -> None:
    for field in Settings.model_fields.values():
        assert f"`{field.alias}`" in README or f"{field.alias}`" in README, field.alias


def test_every_event_type_is_in_the_readme() -> None:
    for event in EVENT_TYPES:
        assert f"`{event.type}`" in README, event.type
