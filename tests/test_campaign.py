"""The campaign that keeps the hardening so: a Hypothesis state machine over a live inbox.

A customer texts (plain words, STOP/START/HELP in any case), Twilio redelivers earlier webhooks,
staff reply, and status callbacks for the inbox's automatic answers arrive in any order. After
every step:
- every inbound message is stored exactly once, however often it was delivered;
- a staff reply is accepted exactly when the customer has not opted out (409 `opted_out` else);
- no message's status ever moves backwards, and a failure stays a failure.
- a socket that reconnects with `?after=<last id it saw>` receives every event since, in order,
  and nothing twice.
Each example is a new customer on one server (SQLite and PostgreSQL), so examples never mix.
Not covered here (see the README's changelog): process kills and restarts, scheduled sends, the
outbox's real sends.
"""

from __future__ import annotations

import itertools

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from inbox.models import STATUS_RANK, MessageStatus
from tests.support.db import rows, scalar
from tests.support.live import open_socket, read_events
from tests.support.staff import create_staff, issue_token
from tests.support.twilio import post_twilio

WORDS = ["Hello", "is it ready?", "STOP", "stop", "START", "start.", "HELP", "please stop texting me"]
OPT_OUT, OPT_IN = {"STOP", "stop"}, {"START", "start."}
CALLBACK_STATUSES = ["queued", "sending", "sent", "delivered", "undelivered", "failed", "read"]
FINAL_FAILURES = {"failed", "undelivered"}


def test_the_inbox_keeps_its_promises_whatever_the_order(serve, database_url) -> None:
    server = serve(database_url, runtime_options={"run_outbox": False})
    create_staff(database_url, "maria@example.com", role="manager")
    token = issue_token(database_url, "maria@example.com")
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    phones = (f"+1415555{n:04d}" for n in itertools.count(1000))
    sids = (f"SM{n:032x}" for n in itertools.count(1))
    callback_sids = (f"SM{n:032x}" for n in itertools.count(10**9))

    class Inbox(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.phone = next(phones)
            self.delivered: dict[str, str] = {}  # inbound SID -> body, as Twilio sent it
            self.opted_out = False
            self.conversation_id: int | None = None
            self.answer_sids: dict[int, str] = {}  # automatic answer id -> SID learned from its callback
            self.seen: dict[int, str] = {}  # message id -> last status seen
            self.last_event = scalar(database_url, "SELECT coalesce(max(id), 0) FROM events")

        def _post(self, sid: str, body: str) -> None:
            response = post_twilio(server.url, "inbound_sms", From=self.phone, MessageSid=sid, Body=body)
            assert response.status_code == 200, response.text

        @rule(body=st.sampled_from(WORDS))
        def customer_writes(self, body: str) -> None:
            sid = next(sids)
            self._post(sid, body)
            self.delivered[sid] = body
            if body in OPT_OUT:
                self.opted_out = True
            elif body in OPT_IN:
                self.opted_out = False
            if self.conversation_id is None:
                self.conversation_id = scalar(
                    database_url,
                    "SELECT c.id FROM conversations c JOIN customers cu ON cu.id = c.customer_id WHERE cu.phone = :p",
                    p=self.phone,
                )

        @precondition(lambda self: self.delivered)
        @rule(data=st.data())
        def twilio_redelivers(self, data) -> None:
            sid = data.draw(st.sampled_from(sorted(self.delivered)))
            self._post(sid, self.delivered[sid])  # same SID: nothing new may come of it

        @precondition(lambda self: self.conversation_id is not None)
        @rule(body=st.sampled_from(["On my way", "Your repair is ready."]))
        def staff_replies(self, body: str) -> None:
            response = api.post(f"/api/conversations/{self.conversation_id}/messages", json={"body": body})
            if self.opted_out:
                assert response.status_code == 409 and response.json()["error"] == "opted_out", response.text
            else:
                assert response.status_code == 202, response.text

        @precondition(lambda self: self.conversation_id is not None)
        @rule(data=st.data(), status=st.sampled_from(CALLBACK_STATUSES))
        def a_status_callback_arrives(self, data, status: str) -> None:
            answers = [m for m in self._messages() if m["direction"] == "outbound" and m.get("auto_reply")]
            if not answers:
                return
            answer = data.draw(st.sampled_from(answers))
            sid = self.answer_sids.setdefault(answer["id"], next(callback_sids))
            fields = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status}
            response = post_twilio(
                server.url, "status_callback", path=f"/webhooks/twilio/status?m={answer['id']}", **fields
            )
            assert response.status_code == 204, response.text

        @rule()
        def a_socket_reconnects(self) -> None:
            """It was away since the last id it saw: the replay brings exactly what it missed."""
            expected = [
                row[0]
                for row in rows(database_url, "SELECT id FROM events WHERE id > :a ORDER BY id", a=self.last_event)
            ]
            with open_socket(server.url, token=token, after=self.last_event) as socket:
                got = [event["id"] for event in read_events(socket, len(expected))]
            assert got == expected
            if expected:
                self.last_event = expected[-1]

        def _messages(self) -> list[dict]:
            if self.conversation_id is None:
                return []
            response = api.get(f"/api/conversations/{self.conversation_id}")
            assert response.status_code == 200, response.text
            return response.json()["messages"]

        @invariant()
        def each_inbound_is_stored_once_and_no_status_moves_back(self) -> None:
            messages = self._messages()
            inbound = sorted(m["sid"] for m in messages if m["direction"] == "inbound")
            assert inbound == sorted(self.delivered)
            for message in messages:
                if message["direction"] != "outbound":
                    continue
                before, now = self.seen.get(message["id"]), message["status"]
                if before is not None and before != now:
                    assert before not in FINAL_FAILURES, (before, now)
                    assert STATUS_RANK[MessageStatus(now)] > STATUS_RANK[MessageStatus(before)], (before, now)
                self.seen[message["id"]] = now

    try:
        run_state_machine_as_test(
            Inbox,
            settings=settings(
                max_examples=12,
                stateful_step_count=12,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        api.close()
