"""The fields of the engine's log lines about a run, so a log reader can filter on them.

Passed as ``extra=``: they become attributes of the log record, and keys of the line in a JSON log
(the server's ``--log-format json`` form). The message text names them as well, for people.
"""

from __future__ import annotations


def about(workflow: str, run_id: str, step: str | None = None, attempt: int | None = None) -> dict[str, object]:
    """``extra=`` of a line about a run of ``workflow`` (and one of its steps, and that step's attempt)."""
    fields: dict[str, object] = {"workflow": workflow, "run_id": run_id}
    if step is not None:
        fields["step"] = step
    if attempt is not None:
        fields["attempt"] = attempt
    return fields
