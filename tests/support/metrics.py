"""Read a server's Prometheus metrics: where it serves them, and every sample."""

from __future__ import annotations

import json
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

# Every sample of a scrape, keyed by (name, sorted labels).
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def metrics_address(log_text: str) -> str:
    for line in log_text.splitlines():
        if line.startswith("{") and json.loads(line).get("msg") == "metrics served":
            return json.loads(line)["address"]
    raise AssertionError(f"no 'metrics served' line in the log:\n{log_text[-2000:]}")


def scrape(address: str) -> Samples:
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def group_sizes(samples: Samples, statement: str, sizes: tuple[int, ...] = (2,)) -> dict[str, float]:
    """What `workflowstate_db_group_size` says of one grouped statement so far: the statements run, the
    operations in them, and for each of `sizes` the statements of at least that many operations (a
    size one more than a bucket's bound: 2, 3, 5, 9, ...)."""
    labels = (("statement", statement),)

    def up_to(bound: int) -> float:
        return samples.get(("workflowstate_db_group_size_bucket", (("le", f"{bound}.0"), ("statement", statement))), 0.0)

    statements = samples.get(("workflowstate_db_group_size_count", labels), 0.0)
    counts = {
        "statements": statements,
        "operations": samples.get(("workflowstate_db_group_size_sum", labels), 0.0),
    }
    return counts | {f"of {size} or more": statements - up_to(size - 1) for size in sizes}
