"""What the fault tests read back through SQL: each step's attempts, in order, as PostgreSQL stored them."""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg


def attempts_by_step(db: psycopg.Connection, schema: str, step_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The rows of step_attempts of each step, by attempt number."""
    cursor = db.execute(
        f"SELECT step_id::text, attempt, status, result, error FROM {schema}.step_attempts"
        " WHERE step_id = ANY(%s::uuid[]) ORDER BY step_id, attempt",
        (step_ids,),
    )
    names = [column.name for column in cursor.description]
    history: dict[str, list[dict[str, Any]]] = {step_id: [] for step_id in step_ids}
    for row in cursor.fetchall():
        record = dict(zip(names, row, strict=True))
        history[record["step_id"]].append(record)
    return history


def history_problems(history: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every way a step's history breaks the rules of retries; empty when it is consistent.

    The rules: attempts numbered 1..n without gaps, every attempt but the last FAILED (with an
    error, no result), the last SUCCEEDED with a result and no error, so one accepted result per step.
    """
    problems = []
    for step_id, attempts in history.items():
        numbers = [attempt["attempt"] for attempt in attempts]
        if numbers != list(range(1, len(numbers) + 1)):
            problems.append(f"{step_id}: attempts {numbers}, not 1..n")
            continue
        *earlier, last = attempts
        for attempt in earlier:
            if attempt["status"] != "failed" or attempt["error"] is None or attempt["result"] is not None:
                problems.append(f"{step_id}: attempt {attempt['attempt']} is {attempt['status']} before the last one")
        if last["status"] != "succeeded" or last["result"] is None or last["error"] is not None:
            problems.append(f"{step_id}: last attempt {last['attempt']} is {last['status']}, not succeeded with a result")
    return problems


def status_events(db: psycopg.Connection, schema: str, step_ids: list[str]) -> Counter[tuple[str, int, str]]:
    """How many run events recorded each (step, attempt, status): a change applied twice shows as 2."""
    rows = db.execute(
        f"SELECT step_id::text, attempt, status, count(*) FROM {schema}.run_events"
        " WHERE step_id = ANY(%s::uuid[]) GROUP BY 1, 2, 3",
        (step_ids,),
    ).fetchall()
    return Counter({(step_id, attempt, status): count for step_id, attempt, status, count in rows})
