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
A second machine (below) runs the outbox for real in an `inbox serve` process: scheduled sends,
cancels, opt-outs between scheduling and sending, and SIGKILLs with restarts.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from inbox.models import STATUS_RANK, MessageStatus
from tests.support.db import rows, scalar
from tests.support.live import open_socket, read_events
from tests.support.sandbox import start_sandbox, wait_for
from tests.support.servers import ProcessServer, free_port
from tests.support.staff import create_staff, issue_token
from tests.support.twilio import post_twilio
from tests.test_outbox_processes import inbox_env

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


def test_scheduled_sends_survive_kills_go_once_and_never_after_an_opt_out(postgres_url) -> None:
    """The outbox's side of the campaign, over a real `inbox serve` process and the sandbox.

    Staff reply at once or schedule a reply 3-4 s ahead, cancel scheduled ones, the customer
    texts STOP and START, and the process is SIGKILLed and restarted. Always: no reply reaches
    the sandbox twice, a canceled one never. When everything due has been handled: each reply sent
    at once went out; each scheduled one went out exactly when the customer had not opted out at
    its time, and otherwise failed with the reason. (A kill in the middle of a send is the lease's
    business: tests/test_replies.py's expired-lease test covers it, so kills wait for due sends.)
    On PostgreSQL, where several processes share the queue; tests/test_scheduled.py runs the same
    kill, opt-out and cancel cases on SQLite too (each example here costs seconds of real time).
    """
    database_url = postgres_url
    sandbox, sandbox_server = start_sandbox()
    port = free_port()
    env = inbox_env(database_url, port, int(sandbox_server.url.rsplit(":", 1)[1]))
    create_staff(database_url, "maria@example.com", role="manager")
    token = issue_token(database_url, "maria@example.com")
    inbox = {"process": ProcessServer(env, port=port).start()}
    url = inbox["process"].url
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    phones = (f"+1415666{n:04d}" for n in itertools.count(1000))
    sids = (f"SM{n:032x}" for n in itertools.count(5 * 10**9))
    numbers = itertools.count(1)

    class Outreach(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.phone = next(phones)
            self.conversation_id = 0
            self.opted_out = False
            self.transitions: list[tuple[float, float, bool]] = []  # (POST began, POST answered, opted out after)
            self.replies: dict[int, dict] = {}  # message id -> {"body", "due" (epoch s, None: at once), "canceled"}

        def _text(self, body: str) -> None:
            response = post_twilio(url, "inbound_sms", From=self.phone, MessageSid=next(sids), Body=body)
            assert response.status_code == 200, response.text

        @initialize(ahead=st.sampled_from([3.0, 4.0]), then=st.sampled_from(["STOP", "wait", "kill"]))
        def customer_writes_and_staff_schedules_an_answer(self, ahead: float, then: str) -> None:
            """Starts where the campaign is sharpest: a reply waiting, then an opt-out or a kill before its time."""
            self._text("Hello")
            self.conversation_id = scalar(
                database_url,
                "SELECT c.id FROM conversations c JOIN customers cu ON cu.id = c.customer_id WHERE cu.phone = :p",
                p=self.phone,
            )
            self.staff_schedules_a_reply(ahead)
            if then == "STOP":
                self.customer_opts_out_or_in("STOP")
            elif then == "kill":
                self.the_inbox_is_killed_and_restarted()

        def _statuses(self) -> dict[int, tuple[str, str | None, object]]:
            found = rows(
                database_url,
                "SELECT id, status, error_message, claimed_until FROM messages WHERE conversation_id = :c",
                c=self.conversation_id,
            )
            return {row[0]: (row[1], row[2], row[3]) for row in found}

        def _settle(self, ahead: float) -> None:
            """Waits until every reply due within `ahead` seconds has been handled by the outbox."""
            horizon = time.time() + ahead

            def handled() -> bool:
                statuses = self._statuses()
                return all(
                    reply["canceled"]
                    or (reply["due"] is not None and reply["due"] > horizon)
                    or (statuses[mid][0] not in ("scheduled", "queued") and statuses[mid][2] is None)
                    for mid, reply in self.replies.items()
                )

            wait_for(handled, timeout=45, interval=0.1, message="the outbox handled what was due")

        @rule(word=st.sampled_from(["STOP", "START"]))
        def customer_opts_out_or_in(self, word: str) -> None:
            self._settle(ahead=1.0)  # nothing due may straddle a consent change
            began = time.time()
            self._text(word)
            self.opted_out = word == "STOP"
            self.transitions.append((began, time.time(), self.opted_out))

        @rule()
        def staff_replies_at_once(self) -> None:
            body = f"Reply {next(numbers)} at once"
            response = api.post(f"/api/conversations/{self.conversation_id}/messages", json={"body": body})
            if self.opted_out:
                assert response.status_code == 409 and response.json()["error"] == "opted_out", response.text
                return
            assert response.status_code == 202, response.text
            self.replies[response.json()["id"]] = {"body": body, "due": None, "canceled": False}

        @rule(ahead=st.sampled_from([3.0, 4.0]))
        def staff_schedules_a_reply(self, ahead: float) -> None:
            body = f"Reply {next(numbers)} later"
            due = datetime.now(UTC) + timedelta(seconds=ahead)
            response = api.post(
                f"/api/conversations/{self.conversation_id}/messages", json={"body": body, "send_at": due.isoformat()}
            )
            assert response.status_code == 202 and response.json()["status"] == "scheduled", response.text
            self.replies[response.json()["id"]] = {"body": body, "due": due.timestamp(), "canceled": False}

        @precondition(lambda self: any(r["due"] and not r["canceled"] for r in self.replies.values()))
        @rule(data=st.data())
        def staff_cancels_one(self, data) -> None:
            mid = data.draw(
                st.sampled_from(sorted(m for m, r in self.replies.items() if r["due"] and not r["canceled"]))
            )
            asked = time.time()
            response = api.delete(f"/api/messages/{mid}")
            if response.status_code == 200:
                assert response.json()["status"] == "canceled"
                self.replies[mid]["canceled"] = True
            else:  # only once its time has come
                assert response.status_code == 409 and response.json()["error"] == "already_sent", response.text
                assert self.replies[mid]["due"] <= time.time(), (asked, self.replies[mid])

        @rule()
        def the_inbox_is_killed_and_restarted(self) -> None:
            self._settle(ahead=0.5)
            process = inbox["process"]
            process.process.send_signal(signal.SIGKILL)
            process.stop()
            inbox["process"] = ProcessServer(env, port=port).start()

        @invariant()
        def nothing_reaches_the_customer_twice_and_nothing_canceled_at_all(self) -> None:
            sent = Counter(m["body"] for m in sandbox.conversation_with(self.phone) if m["direction"] == "outbound-api")
            assert all(count == 1 for count in sent.values()), sent
            assert not [r["body"] for r in self.replies.values() if r["canceled"] and r["body"] in sent]

        def _opted_out_at(self, due: float) -> bool | None:
            """The customer's state at `due`; None when a consent change was in flight then."""
            state = False
            for began, answered, opted_out in self.transitions:
                if began - 0.1 <= due <= answered + 0.1:
                    return None
                if answered < due:
                    state = opted_out
            return state

        def teardown(self) -> None:
            self._settle(ahead=5)
            statuses = self._statuses()
            sent = Counter(m["body"] for m in sandbox.conversation_with(self.phone) if m["direction"] == "outbound-api")
            for mid, reply in self.replies.items():
                status, reason, _ = statuses[mid]
                if reply["canceled"]:
                    assert status == "canceled" and reply["body"] not in sent
                    continue
                blocked = False if reply["due"] is None else self._opted_out_at(reply["due"])
                if blocked is None:
                    continue
                if blocked:
                    assert status == "failed" and "opted out" in (reason or ""), (reply, status, reason)
                    assert reply["body"] not in sent
                else:
                    assert sent[reply["body"]] == 1, (reply, status, reason)

    try:
        run_state_machine_as_test(
            Outreach,
            settings=settings(
                max_examples=4,
                stateful_step_count=6,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    finally:
        api.close()
        inbox["process"].stop()
        sandbox_server.stop()
        asyncio.run(sandbox.aclose())
