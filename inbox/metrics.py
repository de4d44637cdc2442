"""Prometheus metrics: what an operator watches. Labels never carry numbers or message text."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

webhooks = Counter(
    "inbox_webhooks_total", "Twilio webhooks by kind and outcome", ["kind", "outcome"], registry=REGISTRY
)  # outcome: stored | duplicate | rejected | invalid
inbound_messages = Counter(
    "inbox_inbound_messages_total",
    "Signed inbound webhooks by channel and outcome",
    ["channel", "outcome"],
    registry=REGISTRY,
)  # outcome: stored | duplicate
sends = Counter(
    "inbox_sends_total",
    "Outbox send attempts by outcome and Twilio error code",
    ["outcome", "error_code"],
    registry=REGISTRY,
)  # outcome: accepted | retry | ambiguous | permanent
open_sockets = Gauge("inbox_open_websockets", "Live /ws connections on this process", registry=REGISTRY)
socket_resyncs = Counter(
    "inbox_websocket_resyncs_total",
    "Sockets closed with 4000 because they fell 1,000 events behind (they reconnect and catch up)",
    registry=REGISTRY,
)
outbox_depth = Gauge("inbox_outbox_depth", "Replies waiting to be sent", registry=REGISTRY)
outbox_oldest = Gauge("inbox_outbox_oldest_seconds", "Age of the oldest reply waiting to be sent", registry=REGISTRY)
publish_seconds = Histogram(
    "inbox_event_publish_seconds",
    "Time to publish committed events to the bus",
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)


def exposition() -> bytes:
    return generate_latest(REGISTRY)
