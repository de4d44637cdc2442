"""Reading a running server's /metrics as Prometheus does."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def metric(base_url: str, name: str, **labels: str) -> float:
    """One sample of /metrics, parsed as Prometheus parses it (0 when the series does not exist yet)."""
    text = httpx.get(base_url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0
