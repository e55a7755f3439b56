"""The reasons a refusal names on the wire: written once on the server (the outcome names, each error
class's REASON, the auth refusals), gathered by scripts/docs_reference/reasons.py, and listed, each with its
code, in the README's table."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import grpc
import pytest

from workflowstate.server.core import errors
from workflowstate.server.db.coalescer import _copy
from workflowstate.server.rpc.status import status_of
from workflowstate.server.state.outcomes import ERROR_CLASS, Op, Outcome, Write, refusal

REPO = Path(__file__).resolve().parents[2]
# The one list of the server's reasons, which the docs site's error page is generated from too.
sys.path.insert(0, str(REPO / "scripts"))
from docs_reference.reasons import server_reasons  # noqa: E402  (scripts/ is not a package)


def readme_reasons() -> dict[str, str]:
    """The README's table of reasons: reason to code."""
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("| reason | code | when | metadata |") :].split("\n\n", 1)[0]
    rows = [re.split(r"\s*\|\s*", line.strip("| ")) for line in table.splitlines()[2:]]
    return {row[0]: row[1] for row in rows}


def test_the_readme_lists_every_reason_with_its_code() -> None:
    assert readme_reasons() == server_reasons()


def readme_codes() -> set[str]:
    """The codes of the README's error table (code, when)."""
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("| code | when |") :].split("\n\n", 1)[0]
    return {re.split(r"\s*\|\s*", line.strip("| "))[0] for line in table.splitlines()[2:]}


def test_every_code_of_the_error_table_maps_to_named_reasons() -> None:
    """A program matches a reason, never a message: each code the README lists has reasons of its own,
    and each reason's code is one the table lists (INTERNAL, for bugs, is the sentence below it)."""
    reasons_of: dict[str, list[str]] = {}
    for reason, code in readme_reasons().items():
        reasons_of.setdefault(code, []).append(reason)
    assert {code for code in readme_codes() if code not in reasons_of} == set(), reasons_of
    assert set(reasons_of) - readme_codes() == {"INTERNAL"}


@pytest.mark.parametrize("outcome", [outcome for outcome, kind in ERROR_CLASS.items() if kind is not None])
def test_a_refused_outcome_names_itself(outcome: Outcome) -> None:
    error = refusal(outcome.value, Write(Op.MOVE_STEP, target="running", attempt=2), {"prior_status": "succeeded"})
    assert error is not None
    assert error.reason == outcome.name
    assert error.metadata["attempt"] == "2"
    assert error.metadata["prior_status"] == "SUCCEEDED"


def test_unavailable_says_whether_anything_was_written() -> None:
    away = errors.Unavailable("the database cannot be reached: gone; nothing was written")
    lost = errors.Unavailable("the connection to the database was lost while the statement ran (x); its outcome is unknown: read")
    assert (away.reason, away.metadata) == ("UNAVAILABLE", {"outcome": "nothing_written"})
    assert (lost.reason, lost.metadata) == ("UNAVAILABLE", {"outcome": "unknown"})


def test_a_bug_is_internal_with_its_reference_only() -> None:
    status = status_of(RuntimeError("a secret stack"), "GetRun", lambda err: None)
    assert (status.code, status.reason) == (grpc.StatusCode.INTERNAL, "INTERNAL")
    assert status.metadata["reference"] in status.message and "secret" not in status.message


def test_an_error_copied_for_each_member_of_a_group_keeps_its_reason_and_metadata() -> None:
    # A grouped statement's error goes to every member, each its own exception (db/coalescer.py).
    original = errors.Overloaded("every connection is busy", reason="OVERLOADED", metadata={"pool_size": 4})
    copied = _copy(original)
    assert copied is not original and type(copied) is errors.Overloaded
    assert (str(copied), copied.reason, copied.metadata) == ("every connection is busy", "OVERLOADED", {"pool_size": "4"})
