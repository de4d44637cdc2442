"""docs/API.md and the OpenAPI schema Litestar generates describe the same API.

Every operation in the schema (path and method) is named in docs/API.md as `METHOD /path`, with
its query parameters; every `/api/` route the page names exists in the schema. The page also
names every live event type, every /ws close code and every `inbox` command, so neither the
code nor the page can change alone. The schema is served to staff only.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import httpx
import pytest

from inbox import cli
from inbox.app import create_app
from inbox.events import EVENT_TYPES
from inbox.web import realtime
from tests.conftest import make_settings
from tests.support.staff import create_staff, issue_token

API_MD = (Path(__file__).resolve().parents[1] / "docs" / "API.md").read_text()
METHODS = ("get", "post", "put", "patch", "delete")
DOCUMENTED = re.compile(r"`(GET|POST|PUT|PATCH|DELETE)\s+(/[^`\s?]*)")


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    database = tmp_path_factory.mktemp("schema") / "inbox.db"
    app = create_app(make_settings(f"sqlite+aiosqlite:///{database}"))
    return app.openapi_schema.to_schema()


def _operations(schema: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in schema["paths"].items() for method in item if method in METHODS}


def _documented() -> set[tuple[str, str]]:
    return {(method, path) for method, path in DOCUMENTED.findall(API_MD)}


def test_every_operation_of_the_schema_is_documented(schema) -> None:
    missing = sorted(_operations(schema) - _documented())
    assert not missing, f"in the OpenAPI schema but not in docs/API.md: {missing}"


def test_every_api_route_the_page_names_exists(schema) -> None:
    named = {(method, path) for method, path in _documented() if path.startswith("/api/")}
    unknown = sorted(named - _operations(schema))
    assert not unknown, f"named in docs/API.md but not in the OpenAPI schema: {unknown}"


def test_the_schema_holds_the_json_api_and_no_pages(schema) -> None:
    paths = set(schema["paths"])
    assert "/api/conversations/{conversation_id}/messages" in paths
    assert all(path.startswith("/api/") or path in ("/healthz", "/readyz", "/metrics") for path in paths), paths


def test_the_schema_says_who_may_call(schema) -> None:
    """The API needs a token or a session (the document's default); only the probes are open."""
    assert schema["security"] == [{"apiToken": []}, {"session": []}]
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                override = item[method].get("security")
                assert (override is None) == path.startswith("/api/"), (method, path, override)
                assert override is None or {} in override, (method, path, override)


def test_every_query_parameter_is_documented(schema) -> None:
    for path, item in schema["paths"].items():
        for method in METHODS:
            for parameter in item.get(method, {}).get("parameters", []):
                if parameter["in"] == "query":
                    assert f"{parameter['name']}=" in API_MD, (method, path, parameter["name"])


def test_every_event_type_and_close_code_is_documented() -> None:
    for event in EVENT_TYPES:
        assert f"`{event.type}`" in API_MD, event.type
    for name in ("CLOSE_RESYNC", "CLOSE_BAD_REQUEST", "CLOSE_SIGNED_OUT", "CLOSE_FORBIDDEN"):
        assert f"| {getattr(realtime, name)} |" in API_MD, name


def _commands(parser, prefix: str = "inbox") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found += _commands(sub, f"{prefix} {name}")
    return found


def test_every_command_is_documented() -> None:
    commands = _commands(cli.build_parser())
    assert "inbox staff revoke-tokens" in commands
    for command in commands:
        assert f"`{command}" in API_MD, command


def test_the_schema_is_served_to_staff_only(serve, sqlite_url, schema) -> None:
    server = serve(sqlite_url)
    refused = httpx.get(server.url + "/schema/openapi.json")
    assert refused.status_code == 401 and refused.json()["error"] == "not_authenticated"
    create_staff(sqlite_url, "robin@example.com")
    token = issue_token(sqlite_url, "robin@example.com")
    served = httpx.get(server.url + "/schema/openapi.json", headers={"Authorization": f"Bearer {token}"})
    assert served.status_code == 200, served.text
    assert served.json()["paths"].keys() == schema["paths"].keys()
    elsewhere = httpx.get(server.url + "/schema/redoc", headers={"Authorization": f"Bearer {token}"})
    assert elsewhere.status_code == 404 and elsewhere.json()["error"] == "not_found"


OBJECTS = {
    "message": "MessageObject",
    "customer": "CustomerObject",
    "conversation": "ConversationObject",
    "note": "NoteObject",
    "consent record": "ConsentRecordObject",
}


def _documented_fields(name: str) -> list[str]:
    """The top-level keys of the `{"id", …}` line under **name** in docs/API.md's Objects."""
    found = re.search(r"\*\*" + re.escape(name) + r"\*\*[^\n]*\n\n((?:    [^\n]*\n)+)", API_MD)
    assert found, f"docs/API.md has no **{name}** object"
    text = " ".join(found.group(1).split())
    outer = text[text.index("{") + 1 : text.rindex("}")]
    top = re.sub(r"\{[^{}]*\}", "", outer)  # nested objects' own keys (consent's channels) are not fields
    return re.findall(r'"(\w+)"', top)


@pytest.mark.parametrize("name", OBJECTS)
def test_every_documented_object_has_the_fields_of_its_schema_in_order(schema, name) -> None:
    component = schema["components"]["schemas"][OBJECTS[name]]
    assert _documented_fields(name) == list(component["properties"])
    assert set(component["required"]) == set(component["properties"])  # always present, null included


# Answers that are not objects of their own: the keys docs/API.md gives in the operation's section.
ANSWERS = {
    "GET /api/me": ["Me", "Preferences"],
    "PATCH /api/me/preferences": ["Preferences"],
    "GET /api/conversations/counts": ["ViewCounts"],
    "POST /api/conversations/{conversation_id}/read": ["ReadMark"],
    "POST /api/conversations/{conversation_id}/unread": ["UnreadMark"],
    "POST /api/media": ["Upload"],
    "GET /api/phone-numbers/parse": ["NumberReading"],
    "GET /api/quick-replies": ["QuickReplyList", "QuickReplyObject", "Filled"],
    "DELETE /api/quick-replies/{reply_id}": ["Deleted"],
    "GET /api/export/audit": ["AuditPage", "AuditEntry"],
    "GET /healthz": ["Health"],
    "GET /readyz": ["Readiness"],
}


def _section(operation: str) -> str:
    start = API_MD.index(f"### `{operation}`")
    end = API_MD.find("\n#", start + 1)
    return " ".join(API_MD[start : end if end != -1 else None].split())


def _key_lists(text: str) -> list[list[str]]:
    """The keys of every `{…}` in the text, nested ones too, each without its nested objects' keys."""
    found, opened = [], []
    for at, char in enumerate(text):
        if char == "{":
            opened.append(at)
        elif char == "}" and opened:
            inner = text[opened.pop() + 1 : at]
            while re.search(r"\{[^{}]*\}|\[[^\[\]]*\]", inner):  # nested objects, and lists' values
                inner = re.sub(r"\{[^{}]*\}|\[[^\[\]]*\]", "", inner)
            found.append(re.findall(r'(?:^|[,\[]\s*)"(\w+)"', inner))  # a key, not a value after `:` or `|`
    return found


@pytest.mark.parametrize("operation", ANSWERS)
def test_every_documented_answer_has_the_fields_of_its_schema_in_order(schema, operation) -> None:
    """Keys always present are listed in order; a key present only sometimes is at least named."""
    text = _section(operation)
    for name in ANSWERS[operation]:
        component = schema["components"]["schemas"][name]
        always = [key for key in component["properties"] if key in component.get("required", ())]
        assert always in _key_lists(text), (operation, name, always, _key_lists(text))
        for sometimes in set(component["properties"]) - set(always):
            assert f'"{sometimes}"' in text, (operation, name, sometimes)
