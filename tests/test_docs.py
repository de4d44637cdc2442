"""The README keeps up with the code: every setting and every live event type is documented, the
API reference is linked, and nothing in the repository points at documents outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from inbox.events import EVENT_TYPES
from inbox.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_opens_with_the_two_quick_start_commands() -> None:
    first_lines = [line.strip() for line in README.splitlines()[:6] if line.strip()]
    assert first_lines[1].startswith("uv run inbox demo") and first_lines[2].startswith("uv run pytest")


def test_every_setting_is_described_in_the_code_and_in_the_readmes_table() -> None:
    table = [line for line in README.splitlines() if line.startswith(("| `INBOX_", "| `TWILIO_"))]
    named = {name for line in table for name in re.findall(r"`((?:INBOX|TWILIO)_[A-Z0-9_]+)`", line.split(" | ")[0])}
    aliases = {field.alias for field in Settings.model_fields.values()}
    for field in Settings.model_fields.values():
        assert field.description, f"{field.alias} has no description in inbox/settings.py"
    assert named == aliases  # every setting has a row, and no row names a setting that is gone


def test_every_event_type_is_in_the_readme() -> None:
    for event in EVENT_TYPES:
        assert f"`{event.type}`" in README, event.type


# Built from pieces so that this file does not name them itself.
OUTSIDE_DOCUMENTS = tuple(
    needle.encode()
    for needle in (*(name + ".md" for name in ("CONTRACT", "TWILIO", "GUIDE")), "../" + "shared", "/work/" + "shared")
)


def _repository_files() -> list[Path]:
    """Every file git tracks (or would: new files not ignored), or, outside a git checkout, every
    file under the repository but the virtualenv and caches."""
    root = Path(__file__).resolve().parents[1]
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
        return [root / name for name in listed.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}
        return [p for p in root.rglob("*") if p.is_file() and not skip & set(p.relative_to(root).parts)]


def test_the_repository_points_at_no_document_outside_it() -> None:
    files = _repository_files()
    assert any(path.name == "README.md" for path in files)
    offenders = []
    for path in files:
        if not path.is_file():  # deleted in the work tree, not yet in the index
            continue
        content = path.read_bytes()
        offenders += [f"{path}: {needle.decode()}" for needle in OUTSIDE_DOCUMENTS if needle in content]
    assert not offenders, "point at docs/ in the repository instead:\n" + "\n".join(offenders)


def test_the_readme_links_the_api_reference() -> None:
    assert "(docs/API.md)" in README.split("## Changelog")[0]
    assert (Path(__file__).resolve().parents[1] / "docs" / "API.md").is_file()
