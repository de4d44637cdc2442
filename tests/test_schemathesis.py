"""Schemathesis against the OpenAPI schema the app generates: for every operation in
/schema/openapi.json, generated requests (valid and invalid) to a live server on SQLite with some
seeded data never get a 5xx, and every answer's status code and body are the ones the schema
declares for that operation. Where this fails, the schema (or the handler) is wrong, not the check."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.support.media import png
from tests.support.staff import create_staff, issue_token
from tests.support.twilio import post_twilio

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 30


def test_every_operation_answers_as_its_schema_says(serve, sqlite_url) -> None:
    server = serve(sqlite_url, runtime_options={"run_outbox": False})
    create_staff(sqlite_url, "maria@example.com", role="manager")
    token = issue_token(sqlite_url, "maria@example.com")
    assert post_twilio(server.url, "inbound_sms").status_code == 200  # a customer and a conversation
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{server.url}/schema/openapi.json", headers=headers)
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) >= 10, [op.label for op in operations]
    failures: list[str] = []
    seen: dict[str, Counter[int]] = {op.label: Counter() for op in operations}
    # Generated ids rarely name the seeded conversation and customer: one valid request each first (the
    # reply before the opt-out that would refuse it), so their 2xx answers are checked against the schema too.
    by_label = {op.label: op for op in operations}
    upload = by_label["POST /api/media"].Case(body={"file": png()}, media_type="multipart/form-data")
    uploaded = upload.call(base_url=server.url, headers=headers)
    seen["POST /api/media"][uploaded.status_code] += 1
    upload.validate_response(uploaded, checks=CHECKS)
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    for label, ident, body in (
        ("POST /api/conversations/{conversation_id}/messages", {"conversation_id": 1}, {"body": "Ready at 3."}),
        (  # a reply with the file, so its attachment route answers 200 below
            "POST /api/conversations/{conversation_id}/messages",
            {"conversation_id": 1},
            {"body": "The photo", "media_ids": [uploaded.json()["id"]]},
        ),
        # two scheduled replies (messages 4 and 5): one to cancel, one to send now
        (
            "POST /api/conversations/{conversation_id}/messages",
            {"conversation_id": 1},
            {"body": "Later", "send_at": soon},
        ),
        (
            "POST /api/conversations/{conversation_id}/messages",
            {"conversation_id": 1},
            {"body": "Later", "send_at": soon},
        ),
        ("DELETE /api/messages/{message_id}", {"message_id": 4}, None),
        ("POST /api/messages/{message_id}/send-now", {"message_id": 5}, None),
        (
            "POST /api/customers/{customer_id}/consent",
            {"customer_id": 1},
            {"channel": "sms", "action": "opt_out", "note": "asked at the desk"},
        ),
        ("POST /api/conversations", {}, {"to": "(415) 555-0100", "body": "Your ring is ready."}),
        ("POST /api/quick-replies", {}, {"title": "Hours", "body": "Hi {first_name}, we open at 9."}),
        ("PUT /api/quick-replies/{reply_id}", {"reply_id": 1}, {"title": "Hours", "body": "We open at 9."}),
        ("DELETE /api/quick-replies/{reply_id}", {"reply_id": 1}, None),
    ):
        kwargs = {"body": body, "media_type": "application/json"} if body is not None else {}
        case = by_label[label].Case(path_parameters=ident, **kwargs)
        response = case.call(base_url=server.url, headers=headers)
        seen[label][response.status_code] += 1
        case.validate_response(response, checks=CHECKS)
    attachment = by_label["GET /api/messages/{message_id}/media/{index}"].Case(
        path_parameters={"message_id": 3, "index": 0}
    )
    response = attachment.call(base_url=server.url, headers=headers)
    seen[attachment.operation.label][response.status_code] += 1
    attachment.validate_response(response, checks=CHECKS)
    parse = by_label["GET /api/phone-numbers/parse"].Case(query={"number": "+44 7700 900123"})
    response = parse.call(base_url=server.url, headers=headers)
    seen[parse.operation.label][response.status_code] += 1
    parse.validate_response(response, checks=CHECKS)
    for operation in operations:
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def one_case(case) -> None:
            response = case.call(base_url=server.url, headers=headers)
            seen[case.operation.label][response.status_code] += 1
            case.validate_response(response, checks=CHECKS)

        try:
            one_case()
        except (AssertionError, BaseExceptionGroup) as error:  # every operation's failures, then all
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)
    # The seeded rows are found and the declared bodies are right: every operation answered a 2xx at least once.
    missed = {label: dict(counts) for label, counts in seen.items() if not any(200 <= s < 300 for s in counts)}
    assert not missed, missed
