"""Read a server's Prometheus metrics: where it serves them, and every sample."""

from __future__ import annotations

import json
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def metrics_address(log_text: str) -> str:
    for line in log_text.splitlines():
        if line.startswith("{") and json.loads(line).get("msg") == "metrics served":
            return json.loads(line)["address"]
    raise AssertionError(f"no 'metrics served' line in the log:\n{log_text[-2000:]}")


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
